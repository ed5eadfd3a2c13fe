"""The import pipeline end to end, in-process, on real media written by the export writer."""

from __future__ import annotations

import json
import os
import pwd
from datetime import timedelta
from pathlib import Path

import pytest

from airseal.agent.approval import ApprovalRequest, ApproveAll, RefuseUnapproved
from airseal.agent.enrolment import enroll
from airseal.agent.errors import (
    ActionStatementMismatch,
    DistributorNotApproved,
    ExpiredMedia,
    ReplayedMedia,
    StagedPayloadMismatch,
    UnsafeArchive,
    UnsafeDestination,
    UntrustedDistributor,
)
from airseal.agent.journal import Journal
from airseal.agent.staging import memory_staging_parent
from airseal.media.errors import InvalidExportStatement
from airseal.media.receipt import read_receipt_statement
from airseal.trustroot.bundle import parse_bundle
from airseal.trustroot.keys import load_public_key
from airseal.trustroot.verify import verify_dsse_bundle

from .helpers import (
    ActionBuild,
    hostile_tar,
    new_distributor,
    resign_export,
    script,
    sign_action,
    tar_info,
    tar_payload,
    utcnow,
    write_media,
    zip_payload,
)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    dest = tmp_path / "dest"
    marker = tmp_path / "marker"
    payload = tmp_path / "tool.conf"
    payload.write_bytes(b"setting=1\n" * 300)
    tar = tar_payload(
        tmp_path / "tool.tar.gz",
        {
            "bin/install.sh": script(
                f'echo "tar ran $AIRSEAL_ACTION_ID with $1"; touch {marker}.tar'
            ),
            "share/data.txt": b"data\n",
        },
    )
    zipped = zip_payload(
        tmp_path / "tool.zip",
        {"run.sh": script(f'echo "zip ran as $(id -un)"; touch {marker}.zip')},
    )
    return {"dest": dest, "marker": marker, "payload": payload, "tar": tar, "zip": zipped}


def standard_actions(files, distributor):
    return [
        sign_action(
            ActionBuild(
                "dl1", files["payload"], dest=str(files["dest"] / "etc/tool.conf"), file_mode="0640"
            ),
            distributor,
        ),
        sign_action(
            ActionBuild(
                "tar1", files["tar"], mode="execute", run="bin/install.sh", args=("--now",)
            ),
            distributor,
        ),
        sign_action(ActionBuild("zip1", files["zip"], mode="execute", run="run.sh"), distributor),
    ]


def runs_of(state, import_id: int):
    with Journal.open(state.journal_path) as journal:
        return {r.action_id: r for r in journal.runs_for_import(import_id)}


def test_download_and_archives_end_to_end(tmp_path, run_import, distributor, files, enrolled):
    mount = write_media(
        tmp_path / "usb", distributor, standard_actions(files, distributor), split_threshold=700
    )
    assert len(list((mount / "airseal/actions/dl1/payload").iterdir())) > 1  # split in parts
    report = run_import(mount)
    assert report.status == "completed", report.error
    placed = files["dest"] / "etc/tool.conf"
    assert placed.read_bytes() == files["payload"].read_bytes()
    assert placed.stat().st_mode & 0o777 == 0o640
    assert Path(f"{files['marker']}.tar").exists() and Path(f"{files['marker']}.zip").exists()
    runs = runs_of(enrolled, report.import_id)
    assert runs["tar1"].outcome == "succeeded" and runs["tar1"].exit_code == 0
    assert runs["tar1"].output == "tar ran tar1 with --now\n"
    assert runs["zip1"].output == f"zip ran as {pwd.getpwuid(os.getuid()).pw_name}\n"
    assert runs["dl1"].outcome == "succeeded"
    assert report.approved_now and report.receipt_path is not None
    # nothing is left in staging
    assert list(enrolled.staging_dir.iterdir()) == []
    # the receipt is a DSSE bundle signed by the agent key it carries
    data = (mount / report.receipt_path).read_bytes()
    bundle = parse_bundle(data)
    claimed = json.loads(bundle.dsse_envelope.payload)["predicate"]
    key = load_public_key(claimed["agentKey"].encode())
    receipt = read_receipt_statement(verify_dsse_bundle(key, bundle))
    assert receipt.agent_id == enrolled.agent_id and receipt.status == "completed"
    assert {a.id: a.outcome for a in receipt.actions} == {
        "dl1": "succeeded",
        "tar1": "succeeded",
        "zip1": "succeeded",
    }


def test_reimport_is_idempotent(tmp_path, run_import, distributor, files):
    mount = write_media(tmp_path / "usb", distributor, standard_actions(files, distributor))
    assert run_import(mount).status == "completed"
    for suffix in (".tar", ".zip"):
        Path(f"{files['marker']}{suffix}").unlink()
    (files["dest"] / "etc/tool.conf").write_bytes(b"changed locally")
    again = run_import(mount, approver=RefuseUnapproved())
    assert again.status == "completed" and again.repeat and not again.approved_now
    assert {a.outcome for a in again.actions} == {"already-done"}
    assert not Path(f"{files['marker']}.tar").exists()
    assert (files["dest"] / "etc/tool.conf").read_bytes() == b"changed locally"
    # a newer export carrying the same action versions does not run them either
    newer = write_media(
        tmp_path / "usb2",
        distributor,
        standard_actions(files, distributor),
        export_id="export-2",
        sequence=2,
    )
    report = run_import(newer)
    assert {a.outcome for a in report.actions} == {"already-done"} and not report.repeat


def test_dry_run_changes_nothing(tmp_path, run_import, distributor, files, enrolled):
    mount = write_media(tmp_path / "usb", distributor, standard_actions(files, distributor))
    report = run_import(mount, approver=RefuseUnapproved(), dry_run=True)
    assert report.status == "dry-run" and report.receipt_path is None
    assert {a.outcome for a in report.actions} == {"would-run"}
    assert any("not approved yet" in w for w in report.warnings)
    assert not files["dest"].exists() and not (mount / "airseal/receipts").exists()
    with Journal.open(enrolled.journal_path) as journal:
        (record,) = journal.distributors()
        assert record.approved is None and record.last_sequence == 0


def test_replayed_and_equivocating_media_are_refused(tmp_path, run_import, distributor, files):
    actions = standard_actions(files, distributor)[:1]
    old = write_media(tmp_path / "old", distributor, actions, export_id="export-1", sequence=1)
    new = write_media(tmp_path / "new", distributor, actions, export_id="export-2", sequence=2)
    assert run_import(new).status == "completed"
    report = run_import(old)
    assert report.refused and isinstance(report.error, ReplayedMedia)
    assert report.error.subject == "airseal/export.sigstore.json"
    twin = write_media(tmp_path / "twin", distributor, actions, export_id="export-3", sequence=2)
    report = run_import(twin)
    assert isinstance(report.error, ReplayedMedia) and "already used" in report.error.detail


def test_expired_media_is_refused(tmp_path, run_import, distributor, files):
    mount = write_media(tmp_path / "usb", distributor, standard_actions(files, distributor))
    report = run_import(mount, now=utcnow() + timedelta(days=20))
    assert isinstance(report.error, ExpiredMedia)
    assert not files["dest"].exists() and not Path(f"{files['marker']}.tar").exists()


def test_unknown_distributor_is_refused(tmp_path, run_import, files):
    stranger = new_distributor(tmp_path / "stranger")
    mount = write_media(tmp_path / "usb", stranger, standard_actions(files, stranger))
    report = run_import(mount)
    assert isinstance(report.error, UntrustedDistributor)
    assert report.error.subject == "airseal/export.sigstore.json"
    assert stranger.fingerprint in report.error.detail
    assert report.receipt_path is None  # unauthenticated media gets no receipt
    assert not files["dest"].exists()


def test_approval_is_asked_once_and_non_interactive_refuses(
    tmp_path, run_import, distributor, files, enrolled
):
    mount = write_media(tmp_path / "usb", distributor, standard_actions(files, distributor))
    report = run_import(mount, approver=RefuseUnapproved())
    assert isinstance(report.error, DistributorNotApproved)
    assert not files["dest"].exists() and not Path(f"{files['marker']}.tar").exists()
    assert report.receipt_path is not None  # authentic media: the refusal is reported back
    seen: list[ApprovalRequest] = []

    class Recording(ApproveAll):
        def __call__(self, request: ApprovalRequest) -> bool:
            seen.append(request)
            return True

    report = run_import(mount, approver=Recording())
    assert report.status == "completed" and report.approved_now
    (request,) = seen
    assert request.fingerprint == distributor.fingerprint
    assert request.distributor_name == "Test distributor"
    text = request.describe()
    assert "Test distributor" in text and distributor.fingerprint[:4] in text
    assert "run bin/install.sh --now" in text and "write " in text
    with Journal.open(enrolled.journal_path) as journal:
        assert journal.distributors()[0].approved_how == "yes-flag"


def test_enrolment_approval_needs_no_prompt(tmp_path, agent_state, agent_signer, files):
    from .conftest import ImportRunner

    other = new_distributor(tmp_path / "k2")
    with Journal.open(agent_state.journal_path) as journal:
        enroll(
            journal,
            other.pub.read_bytes(),
            name="Pre-approved",
            purposes=("exports", "actions"),
            now=utcnow(),
            approved=True,
        )
    mount = write_media(tmp_path / "usb", other, standard_actions(files, other))
    report = ImportRunner(agent_state, agent_signer)(mount, approver=RefuseUnapproved())
    assert report.status == "completed"


def test_skips_are_journalled_with_reasons(tmp_path, run_import, distributor, files, enrolled):
    now = utcnow()
    payload = files["payload"]
    actions = [
        sign_action(ActionBuild("win", payload, os="windows", dest="C:\\App\\x.conf"), distributor),
        sign_action(
            ActionBuild(
                "missing", payload, dest=str(files["dest"] / "a"), conditions={"if_missing": ("/",)}
            ),
            distributor,
        ),
        sign_action(
            ActionBuild(
                "group", payload, dest=str(files["dest"] / "b"), conditions={"group": "lab"}
            ),
            distributor,
        ),
        sign_action(
            ActionBuild(
                "later",
                payload,
                dest=str(files["dest"] / "c"),
                valid_from=now + timedelta(days=1),
                valid_until=now + timedelta(days=2),
            ),
            distributor,
        ),
    ]
    mount = write_media(tmp_path / "usb", distributor, actions)
    report = run_import(mount)
    assert report.status == "completed"
    reasons = {a.id: (a.outcome, a.reason) for a in report.actions}
    assert reasons["win"] == ("skipped", "the action is for windows; this endpoint runs linux")
    assert "exists" in reasons["missing"][1] and "group 'lab'" in reasons["group"][1]
    assert "valid only from" in reasons["later"][1]
    assert not files["dest"].exists()
    runs = runs_of(enrolled, report.import_id)
    assert {r.outcome for r in runs.values()} == {"skipped"} and runs["win"].reason


def test_failures_timeouts_and_run_as(tmp_path, run_import, distributor):
    fail = tmp_path / "fail.sh"
    fail.write_bytes(script("echo about to fail; exit 3"))
    slow = tmp_path / "slow.sh"
    slow.write_bytes(script("echo start; sleep 30"))
    who = tmp_path / "who.sh"
    who.write_bytes(script("id -un"))
    actions = [
        sign_action(ActionBuild("fail", fail, mode="execute"), distributor),
        sign_action(ActionBuild("slow", slow, mode="execute", timeout=1), distributor),
        sign_action(ActionBuild("who", who, mode="execute", run_as="nobody"), distributor),
    ]
    mount = write_media(tmp_path / "usb", distributor, actions)
    report = run_import(mount)
    by_id = {a.id: a for a in report.actions}
    assert report.status == "partial"
    assert by_id["fail"].outcome == "failed" and by_id["fail"].exit_code == 3
    assert by_id["fail"].output == "about to fail\n"
    assert by_id["slow"].outcome == "failed" and "timed out after 1 s" in by_id["slow"].reason
    assert by_id["slow"].output.startswith("start")
    assert by_id["who"].outcome == "succeeded" and by_id["who"].output == "nobody\n"


def test_reboot_options(tmp_path, run_import, distributor, reboot_log):
    reboots: Path = reboot_log
    asks = tmp_path / "asks.sh"
    asks.write_bytes(script('touch "$AIRSEAL_REBOOT_FILE"'))
    quiet = tmp_path / "quiet.sh"
    quiet.write_bytes(script("true"))
    never = write_media(
        tmp_path / "m1",
        distributor,
        [sign_action(ActionBuild("n", asks, mode="execute", reboot="never"), distributor)],
        export_id="e1",
        sequence=1,
    )
    report = run_import(never)
    assert report.reboot == "none" and report.actions[0].reboot_requested
    assert not reboots.exists()
    requested = write_media(
        tmp_path / "m2",
        distributor,
        [
            sign_action(
                ActionBuild("q", quiet, mode="execute", reboot="if-requested"), distributor
            ),
            sign_action(ActionBuild("r", asks, mode="execute", reboot="if-requested"), distributor),
        ],
        export_id="e2",
        sequence=2,
    )
    report = run_import(requested)
    assert report.reboot == "started" and reboots.read_text() == "reboot\n"
    always = write_media(
        tmp_path / "m3",
        distributor,
        [sign_action(ActionBuild("a", quiet, mode="execute", reboot="always"), distributor)],
        export_id="e3",
        sequence=3,
    )
    report = run_import(always, allow_reboot=False)
    assert report.reboot == "pending" and reboots.read_text() == "reboot\n"


def test_traversal_in_action_destinations_is_refused(tmp_path, run_import, distributor, files):
    good = ActionBuild("dl1", files["payload"], dest=str(files["dest"] / "ok.conf"))
    mount = write_media(tmp_path / "usb", distributor, [sign_action(good, distributor)])
    for dest in ("/tmp/../etc/airseal-evil", "relative/evil.conf", str(files["dest"]) + "/"):
        hostile = ActionBuild(
            "dl1",
            files["payload"],
            dest=str(files["dest"] / "ok.conf"),
            raw_predicate_edit=lambda p, d=dest: p["download"].update(dest=d),
        )
        resign_export(
            mount,
            distributor,
            replace_files={
                "actions/dl1/action.sigstore.json": sign_action(hostile, distributor).bundle
            },
        )
        report = run_import(mount)
        assert isinstance(report.error, (InvalidExportStatement, UnsafeDestination)), dest
        assert report.error.subject == "airseal/actions/dl1/action.sigstore.json"
        assert "dest" in report.error.detail
        assert not files["dest"].exists() and not Path("/etc/airseal-evil").exists()


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_traversal_in_archives_refuses_the_whole_import(
    tmp_path, run_import, distributor, files, kind
):
    escape = tmp_path / "escaped.sh"
    if kind == "tar":
        evil = hostile_tar(
            tmp_path / "evil.tar",
            [
                (tar_info("run.sh", mode=0o755), script("echo ran")),
                (tar_info("../escaped.sh"), b"x"),
            ],
        )
    else:
        import zipfile

        evil = tmp_path / "evil.zip"
        with zipfile.ZipFile(evil, "w") as archive:
            archive.writestr("run.sh", script("echo ran"))
            archive.writestr(zipfile.ZipInfo("../escaped.sh"), b"x")
    actions = [
        *standard_actions(files, distributor)[:1],
        sign_action(ActionBuild("evil", evil, mode="execute", run="run.sh"), distributor),
    ]
    mount = write_media(tmp_path / "usb", distributor, actions)
    report = run_import(mount)
    assert isinstance(report.error, UnsafeArchive)
    assert report.error.subject == f"airseal/actions/evil/payload/{evil.name}!../escaped.sh"
    assert not escape.exists() and not files["dest"].exists()  # the download did not run either
    assert {a.outcome for a in report.actions} == {"not-run"}


def test_action_signed_by_an_untrusted_key(tmp_path, run_import, distributor, files):
    rogue = new_distributor(tmp_path / "rogue")
    build = ActionBuild("dl1", files["payload"], dest=str(files["dest"] / "x"), signer=rogue.signer)
    mount = write_media(tmp_path / "usb", distributor, [sign_action(build, distributor)])
    report = run_import(mount)
    assert isinstance(report.error, UntrustedDistributor)
    assert report.error.subject == "airseal/actions/dl1/action.sigstore.json"


def test_action_that_disagrees_with_the_listing(tmp_path, run_import, distributor, files):
    build = ActionBuild("dl1", files["payload"], dest=str(files["dest"] / "x"))
    mount = write_media(tmp_path / "usb", distributor, [sign_action(build, distributor)])
    build.version = 2
    resign_export(
        mount,
        distributor,
        replace_files={"actions/dl1/action.sigstore.json": sign_action(build, distributor).bundle},
    )
    report = run_import(mount)
    assert isinstance(report.error, ActionStatementMismatch) and "version 2" in report.error.detail


def test_payload_swapped_after_check_two_is_refused_at_check_three(
    tmp_path, run_import, distributor, files
):
    mount = write_media(tmp_path / "usb", distributor, standard_actions(files, distributor))
    payload = mount / "airseal/actions/tar1/payload/tool.tar.gz"
    evil = tar_payload(
        tmp_path / "evil.tar.gz", {"bin/install.sh": script(f"touch {tmp_path}/pwned")}
    )

    def swap(stage, importer):
        if stage == "actions-verified":
            payload.write_bytes(
                evil.read_bytes()[: payload.stat().st_size].ljust(payload.stat().st_size, b"\0")
            )

    report = run_import(mount, hook=swap)
    assert isinstance(report.error, StagedPayloadMismatch) and report.error.check == "staging"
    assert report.error.subject == "airseal/actions/tar1/payload/tool.tar.gz"
    assert not (tmp_path / "pwned").exists() and not files["dest"].exists()
    assert not Path(f"{files['marker']}.tar").exists()


def test_staged_copy_changed_before_use_is_refused(
    tmp_path, run_import, distributor, files, enrolled
):
    mount = write_media(tmp_path / "usb", distributor, standard_actions(files, distributor))

    def tamper(stage, importer):
        if stage == "before-run:tar1":
            staged = importer.staged["tar1"].path
            staged.write_bytes(b"\0" * staged.stat().st_size)

    report = run_import(mount, hook=tamper)
    assert isinstance(report.error, StagedPayloadMismatch)
    assert "changed before use" in report.error.detail
    outcomes = {a.id: a.outcome for a in report.actions}
    assert outcomes == {"dl1": "succeeded", "tar1": "refused", "zip1": "not-run"}
    assert (
        not Path(f"{files['marker']}.tar").exists() and not Path(f"{files['marker']}.zip").exists()
    )
    runs = runs_of(enrolled, report.import_id)
    assert runs["tar1"].outcome == "refused" and "zip1" not in runs


def test_download_owner_mode_and_atomic_replacement(tmp_path, run_import, distributor, files):
    folder = files["dest"]
    folder.mkdir()
    owned = folder / "owned.conf"
    owned.write_text("the old file")
    (folder / "is-a-folder").mkdir()
    actions = [
        sign_action(
            ActionBuild("own", files["payload"], dest=str(owned), file_mode="0600", owner="nobody"),
            distributor,
        ),
        sign_action(
            ActionBuild("dir", files["payload"], dest=str(folder / "is-a-folder")), distributor
        ),
    ]
    report = run_import(write_media(tmp_path / "usb", distributor, actions))
    outcomes = {a.id: (a.outcome, a.reason) for a in report.actions}
    assert report.status == "partial" and outcomes["own"] == ("succeeded", None)
    assert outcomes["dir"][0] == "failed" and "is a folder" in outcomes["dir"][1]
    assert owned.read_bytes() == files["payload"].read_bytes()
    st = owned.stat()
    assert st.st_uid == pwd.getpwnam("nobody").pw_uid and st.st_mode & 0o777 == 0o600
    assert sorted(p.name for p in folder.iterdir()) == ["is-a-folder", "owned.conf"]  # no temp left


def test_small_payloads_are_staged_in_ram_and_nothing_is_left(
    tmp_path, run_import, distributor, files, enrolled
):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1024 * 1024 + 1))
    actions = [
        *standard_actions(files, distributor),
        sign_action(ActionBuild("big", big, dest=str(files["dest"] / "big.bin")), distributor),
    ]
    memory = memory_staging_parent("linux")
    assert memory == Path("/dev/shm")
    prefix = f"airseal-agent-{enrolled.agent_id[:16]}-"
    crashed = memory / f"{prefix}leftover"
    crashed.mkdir()
    (enrolled.staging_dir / "import-0-dead").mkdir()
    where: dict[str, Path] = {}

    def look(stage, importer):
        if stage == "staged":
            where.update({k: v.path for k, v in importer.staged.items()})
            assert all(oct(p.parent.stat().st_mode & 0o777) == "0o700" for p in where.values())

    report = run_import(write_media(tmp_path / "usb", distributor, actions), hook=look)
    assert report.status == "completed", report.error
    assert where["dl1"].is_relative_to(memory) and where["tar1"].is_relative_to(memory)
    assert where["big"].is_relative_to(enrolled.staging_dir)
    assert (files["dest"] / "big.bin").read_bytes() == big.read_bytes()
    assert not crashed.exists() and list(memory.glob(prefix + "*")) == []
    assert list(enrolled.staging_dir.iterdir()) == []
