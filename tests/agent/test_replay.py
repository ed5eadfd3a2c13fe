"""Issue 13, item 5: an export is identified by what is signed, and its sequence is recorded only
once the import is decided.

The bundle file is malleable without touching the signature (line ends, indentation, a BOM,
UTF-16, extra DSSE signatures): a re-encoded copy of an imported export is the same export, not
a replay. A copy refused at check 3 must not record the sequence, or the genuine media would be
refused on that endpoint for good.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from airseal.agent import exit_codes
from airseal.agent.approval import RefuseUnapproved
from airseal.agent.errors import ReplayedMedia, StagedPayloadMismatch
from airseal.agent.journal import MIGRATIONS, Journal
from airseal.media import layout
from airseal.trustroot.bundle import parse_bundle

from .helpers import ActionBuild, resign_export, script, sign_action, tar_payload, write_media

STATEMENT = f"{layout.MEDIA_DIR}/{layout.STATEMENT_NAME}"


def _reindented(data: bytes) -> bytes:
    return json.dumps(json.loads(data), indent=7, sort_keys=True).encode()


def _extra_signature(data: bytes) -> bytes:
    bundle = json.loads(data)
    forged = {"sig": base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode(), "keyid": "x"}
    bundle["dsseEnvelope"]["signatures"].insert(0, forged)
    return json.dumps(bundle).encode()


REENCODINGS: dict[str, Callable[[bytes], bytes]] = {
    "crlf": lambda data: data.replace(b"\n", b"\r\n"),
    "reindented": _reindented,
    "extra-dsse-signature": _extra_signature,
}


@pytest.fixture
def actions(tmp_path: Path, distributor):
    payload = tmp_path / "tool.conf"
    payload.write_bytes(b"setting=1\n")
    marker = tmp_path / "ran"
    installer = tmp_path / "install.sh"
    installer.write_bytes(script(f"echo ran >> {marker}"))
    return [
        sign_action(
            ActionBuild("dl1", payload, dest=str(tmp_path / "dest/tool.conf")), distributor
        ),
        sign_action(ActionBuild("run1", installer, mode="execute"), distributor),
    ]


def _copy(mount: Path, to: Path, reencode: Callable[[bytes], bytes] | None = None) -> Path:
    shutil.copytree(mount, to, ignore=shutil.ignore_patterns("receipts"))
    if reencode is not None:
        statement = to / STATEMENT
        statement.write_bytes(reencode(statement.read_bytes()))
    return to


def _accepted(state) -> tuple[int, str | None, str | None]:
    with Journal.open(state.journal_path) as journal:
        (record,) = journal.distributors()
        return record.last_sequence, record.last_export_id, record.last_statement_sha256


def _signed_payload_sha256(mount: Path) -> str:
    envelope = parse_bundle((mount / STATEMENT).read_bytes()).dsse_envelope
    assert envelope is not None
    return hashlib.sha256(envelope.payload).hexdigest()


@pytest.mark.parametrize("encoding", sorted(REENCODINGS))
def test_a_reencoded_copy_of_an_imported_export_is_the_same_export(
    tmp_path, run_import, enrolled, distributor, actions, encoding
):
    mount = write_media(tmp_path / "usb", distributor, actions)
    first = run_import(mount)
    assert first.status == "completed"
    before = _accepted(enrolled)
    assert before == (1, "export-1", _signed_payload_sha256(mount))
    copy = _copy(mount, tmp_path / "copy", REENCODINGS[encoding])
    assert (copy / STATEMENT).read_bytes() != (mount / STATEMENT).read_bytes()

    again = run_import(copy, approver=RefuseUnapproved())

    assert again.error is None and again.status == "completed" and again.repeat
    assert {a.outcome for a in again.actions} == {"already-done"}
    assert (tmp_path / "ran").read_text() == "ran\n"  # ran once, not again
    assert _accepted(enrolled) == before


# Untrusted JSON is UTF-8 without a byte-order mark (RFC 8259 8.1): other encodings of a genuine
# export are refused by name, before any check of what is signed, never taken for a replay.
REFUSED_ENCODINGS: dict[str, Callable[[bytes], bytes]] = {
    "utf8-bom": lambda data: b"\xef\xbb\xbf" + data,
    "utf16": lambda data: data.decode("utf-8").encode("utf-16"),
    "utf8-behind-a-utf16-bom": lambda data: b"\xff\xfe" + data,
    "two-utf8-boms": lambda data: b"\xef\xbb\xbf\xef\xbb\xbf" + data,
    "latin1-byte-in-front": lambda data: b"\xe9" + data,
}


@pytest.mark.parametrize("encoding", sorted(REFUSED_ENCODINGS))
def test_an_encoding_the_bundle_parser_refuses_is_refused_by_name(
    tmp_path, run_import, enrolled, distributor, actions, encoding
):
    mount = write_media(tmp_path / "usb", distributor, actions)
    assert run_import(mount).status == "completed"
    before = _accepted(enrolled)
    copy = _copy(mount, tmp_path / "copy", REFUSED_ENCODINGS[encoding])

    report = run_import(copy)

    assert report.refused and report.error is not None
    assert report.error.subject == STATEMENT
    assert report.error.title == "Malformed bundle" and "not valid JSON" in report.error.detail
    assert _accepted(enrolled) == before


def test_the_cli_imports_a_reencoded_copy_as_already_imported(agent_cli, agent_state, tmp_path):
    from .helpers import new_distributor

    distributor = new_distributor(tmp_path / "keys")
    assert agent_cli("enroll", "--key", str(distributor.pub), "--approved").code == 0
    payload = tmp_path / "p.txt"
    payload.write_text("p")
    action = ActionBuild("dl1", payload, dest=str(tmp_path / "out/p.txt"))
    mount = write_media(tmp_path / "usb", distributor, [sign_action(action, distributor)])
    assert agent_cli("import", str(mount), "--non-interactive").code == exit_codes.OK
    copy = _copy(mount, tmp_path / "copy", REENCODINGS["crlf"])

    again = agent_cli("import", str(copy), "--non-interactive")

    assert again.code == exit_codes.OK, again.stderr
    assert "Export export-1 (sequence 1)" in again.stdout and "(again): completed" in again.stdout
    assert "replay" not in (again.stdout + again.stderr).lower()


def test_another_statement_under_the_same_export_id_and_sequence_is_refused(
    tmp_path, run_import, enrolled, distributor, actions
):
    mount = write_media(tmp_path / "usb", distributor, actions)
    assert run_import(mount).status == "completed"
    before = _accepted(enrolled)
    twin = _copy(mount, tmp_path / "twin")

    def other_appliance(predicate):
        predicate["applianceId"] = "appliance-other"

    resign_export(twin, distributor, edit_predicate=other_appliance)
    assert _signed_payload_sha256(twin) != _signed_payload_sha256(mount)

    report = run_import(twin)

    assert report.refused and isinstance(report.error, ReplayedMedia)
    assert report.error.subject == STATEMENT and report.error.check == "sequence"
    assert "different signed statement" in report.error.detail
    assert _accepted(enrolled) == before


def test_a_copy_refused_at_check_three_leaves_the_sequence_unrecorded(
    tmp_path, run_import, enrolled, distributor
):
    """The issue's scenario: a re-encoded copy whose payload is swapped after check 2 fails at
    check 3; the genuine stick then imports and runs on the same endpoint."""
    marker = tmp_path / "genuine-ran"
    tar = tar_payload(tmp_path / "tool.tar.gz", {"go.sh": script(f"touch {marker}")})
    config = tmp_path / "tool.conf"
    config.write_bytes(b"setting=1\n")
    dest = tmp_path / "dest/tool.conf"
    actions = [
        sign_action(ActionBuild("dl1", config, dest=str(dest)), distributor),
        sign_action(ActionBuild("tar1", tar, mode="execute", run="go.sh"), distributor),
    ]
    genuine = write_media(tmp_path / "usb", distributor, actions)
    tampered = _copy(genuine, tmp_path / "tampered", REENCODINGS["reindented"])
    payload = tampered / "airseal/actions/tar1/payload/tool.tar.gz"
    evil = tar_payload(tmp_path / "evil.tar.gz", {"go.sh": script(f"touch {tmp_path}/pwned")})

    def swap_after_check_two(stage, importer):
        if stage == "actions-verified":
            size = payload.stat().st_size
            payload.write_bytes(evil.read_bytes()[:size].ljust(size, b"\0"))

    refused = run_import(tampered, hook=swap_after_check_two)

    assert refused.refused and isinstance(refused.error, StagedPayloadMismatch)
    assert refused.error.subject == "airseal/actions/tar1/payload/tool.tar.gz"
    assert refused.error.check == "staging"
    assert _accepted(enrolled) == (0, None, None)  # the sequence was not recorded
    assert not (tmp_path / "pwned").exists() and not dest.exists() and not marker.exists()

    report = run_import(genuine)

    assert report.error is None and report.status == "completed" and not report.repeat
    assert {a.id: a.outcome for a in report.actions} == {"dl1": "succeeded", "tar1": "succeeded"}
    assert marker.exists() and dest.read_bytes() == b"setting=1\n"
    assert _accepted(enrolled) == (1, "export-1", _signed_payload_sha256(genuine))


def test_a_dry_run_records_no_sequence(tmp_path, run_import, enrolled, distributor, actions):
    mount = write_media(tmp_path / "usb", distributor, actions)
    assert run_import(mount, dry_run=True).status == "dry-run"
    assert _accepted(enrolled) == (0, None, None)


def test_a_journal_from_before_keeps_its_bundle_digest_and_learns_the_statement_digest(
    tmp_path, agent_state, agent_signer, distributor, actions
):
    """Migration 2 adds the statement digest; a record made before it still recognises the very
    bytes it accepted, and names a re-encoded copy's problem plainly."""
    from airseal._internal import migrations

    from .conftest import ImportRunner

    mount = write_media(tmp_path / "usb", distributor, actions)
    bundle_sha256 = hashlib.sha256((mount / STATEMENT).read_bytes()).hexdigest()
    for leftover in agent_state.journal_path.parent.glob(agent_state.journal_path.name + "*"):
        leftover.unlink()  # a journal as the previous release left it: schema 1
    conn = sqlite3.connect(agent_state.journal_path, isolation_level=None)
    assert migrations.migrate(conn, MIGRATIONS[:1]) == 1
    conn.execute(
        "INSERT INTO distributors (fingerprint, name, public_key_pem, may_sign, enrolled, "
        "approved, approved_how, last_sequence, last_export_id, last_export_sha256) "
        "VALUES (?, 'Old', ?, 'actions,exports', '2025-01-01', '2025-01-01', 'prompt', 1, "
        "'export-1', ?)",
        [distributor.fingerprint, distributor.pub.read_text(), bundle_sha256],
    )
    conn.close()
    run_import = ImportRunner(agent_state, agent_signer)

    copy = _copy(mount, tmp_path / "copy", REENCODINGS["crlf"])
    report = run_import(copy, approver=RefuseUnapproved())

    assert isinstance(report.error, ReplayedMedia) and report.error.subject == STATEMENT
    assert "earlier agent release" in report.error.detail
    with Journal.open(agent_state.journal_path) as journal:
        assert journal.schema_version() == len(MIGRATIONS) == 2
        assert journal.distributors()[0].last_statement_sha256 is None
    # the very bytes accepted then are the same export; importing them records the statement's
    # digest, and from then on any encoding of it is
    same = run_import(mount, approver=RefuseUnapproved())
    assert same.error is None and same.repeat
    again = run_import(copy, approver=RefuseUnapproved())
    assert again.error is None and again.repeat
