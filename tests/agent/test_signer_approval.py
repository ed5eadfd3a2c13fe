"""Issue 13, item 8: approval holds for every signer whose signature an import counts.

An approved distributor's export carried an action signed by an enrolled but unapproved key, and
it ran. Now that key is asked about like a first-time distributor, and refused (naming the
action file and the key) when nobody approves it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airseal.agent import exit_codes
from airseal.agent.approval import ApprovalRequest, ApproveAll, RefuseUnapproved
from airseal.agent.enrolment import enroll
from airseal.agent.errors import DistributorNotApproved
from airseal.agent.journal import Journal

from .helpers import ActionBuild, Distributor, new_distributor, sign_action, utcnow, write_media

SIGNED_BY_OTHER = "airseal/actions/other1/action.sigstore.json"


class Recording(ApproveAll):
    def __init__(self) -> None:
        self.seen: list[ApprovalRequest] = []

    def __call__(self, request: ApprovalRequest) -> bool:
        self.seen.append(request)
        return True


@pytest.fixture
def action_signer(tmp_path: Path, agent_state) -> Distributor:
    """A second key, enrolled to sign actions only, never approved on this endpoint."""
    other = new_distributor(tmp_path / "other-keys", "other")
    with Journal.open(agent_state.journal_path) as journal:
        enroll(
            journal,
            other.pub.read_bytes(),
            name="Other team",
            purposes=("actions",),
            now=utcnow(),
        )
    return other


def _media(tmp_path: Path, distributor: Distributor, action_signer: Distributor) -> Path:
    own = tmp_path / "own.txt"
    own.write_text("own")
    theirs = tmp_path / "theirs.txt"
    theirs.write_text("theirs")
    return write_media(
        tmp_path / "usb",
        distributor,
        [
            sign_action(ActionBuild("own1", own, dest=str(tmp_path / "out/own.txt")), distributor),
            sign_action(
                ActionBuild(
                    "other1",
                    theirs,
                    dest=str(tmp_path / "out/theirs.txt"),
                    signer=action_signer.signer,
                ),
                distributor,
            ),
        ],
    )


def _state(agent_state) -> dict[str, tuple[str | None, int]]:
    with Journal.open(agent_state.journal_path) as journal:
        return {d.name: (d.approved, d.last_sequence) for d in journal.distributors()}


def _approve(agent_state, distributor: Distributor) -> None:
    with Journal.open(agent_state.journal_path) as journal:
        journal.approve(distributor.fingerprint, "enrolment", now=utcnow())


def test_an_unapproved_action_signer_in_an_approved_export_is_refused(
    tmp_path, run_import, enrolled, distributor, action_signer
):
    _approve(enrolled, distributor)
    mount = _media(tmp_path, distributor, action_signer)
    before = _state(enrolled)

    report = run_import(mount, approver=RefuseUnapproved())

    assert report.refused and isinstance(report.error, DistributorNotApproved)
    assert report.error.subject == SIGNED_BY_OTHER and report.error.check == "approval"
    assert "Other team" in report.error.detail and action_signer.fingerprint in report.error.detail
    assert {a.outcome for a in report.actions} == {"not-run"}
    assert not (tmp_path / "out").exists()
    assert _state(enrolled) == before  # no approval, no sequence


def test_the_cli_refuses_it_with_exit_1_naming_the_action_file(
    tmp_path, agent_cli, agent_state, action_signer
):
    distributor = new_distributor(tmp_path / "keys")
    assert agent_cli("enroll", "--key", str(distributor.pub), "--approved").code == 0
    mount = _media(tmp_path, distributor, action_signer)

    result = agent_cli("import", str(mount), "--non-interactive")

    assert result.code == exit_codes.REFUSED, result.stderr
    assert f"{SIGNED_BY_OTHER}: distributor not approved [approval]" in result.stderr
    assert "Other team" in result.stderr and action_signer.fingerprint in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_every_unapproved_signer_is_asked_about_once(
    tmp_path, run_import, enrolled, distributor, action_signer
):
    mount = _media(tmp_path, distributor, action_signer)
    approver = Recording()

    report = run_import(mount, approver=approver)

    assert report.status == "completed" and report.approved_now
    first, second = approver.seen
    assert first.fingerprint == distributor.fingerprint and first.carried_by is None
    assert [a.id for a in first.actions] == ["own1", "other1"]
    assert second.fingerprint == action_signer.fingerprint
    assert second.carried_by == "Test distributor"
    assert [a.id for a in second.actions] == ["other1"]
    assert "export from Test distributor" in second.describe()
    assert (tmp_path / "out/theirs.txt").read_text() == "theirs"
    approved = _state(enrolled)
    assert approved["Other team"][0] is not None and approved["Test distributor"][1] == 1
    # approved for good: the next import asks nobody
    assert run_import(mount, approver=RefuseUnapproved()).status == "completed"


def test_a_dry_run_warns_about_each_unapproved_signer(
    tmp_path, run_import, enrolled, distributor, action_signer
):
    _approve(enrolled, distributor)
    mount = _media(tmp_path, distributor, action_signer)
    report = run_import(mount, approver=RefuseUnapproved(), dry_run=True)
    assert report.status == "dry-run"
    assert any("action signer" in w and "Other team" in w for w in report.warnings)
