"""Issue 13, items 1 and 2, at the appliance and for the courier: hostile JSON and out-of-range
values are refused by `airseal media check`, `airseal verify-blob` and `airseal receipts import`
(exit 1, the file and the check named), never a crash (exit 70); a hostile receipt is skipped and
the genuine receipts beside it are still imported."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from airseal.media import layout
from airseal.media.receipt import (
    RECEIPT_PREDICATE_TYPE,
    ActionResult,
    ReceiptPredicate,
    receipt_media_path,
)
from airseal.trustroot.bundle import bundle_to_json, sign_statement
from airseal.trustroot.dsse import Statement, Subject
from airseal.trustroot.keys import spki_pem
from airseal.trustroot.signer import PrivateKeySigner

NESTED = b"[" * 1000 + b"]" * 1000
STATEMENT = "airseal/export.sigstore.json"


def assert_refused(result, subject: str, check: str) -> None:
    assert result.code == 1, result.stderr
    assert subject in result.stderr and check in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr.lower()


@pytest.fixture
def exported(airseal, appliance_home, tmp_path) -> tuple[Path, dict[str, Any]]:
    """A real export of one download action on a plain folder, and its summary."""
    assert airseal("key", "generate", "ops").code == 0
    payload = tmp_path / "tool.conf"
    payload.write_bytes(b"x=1\n")
    assert airseal("file", "add", str(payload)).code == 0
    created = airseal(
        "action", "create", "--name", "(Config)Tool", "--file", str(payload), "--os", "linux",
        "--mode", "download", "--dest", "/opt/tool.conf", "--key", "ops", "--json",
    )  # fmt: skip
    assert created.code == 0, created.stderr
    media = tmp_path / "media"
    media.mkdir()
    result = airseal("export", "--to", str(media), "--key", "ops", "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    summary["action_id"] = json.loads(created.stdout)["id"]
    return media, summary


# -- the courier's check ---------------------------------------------------------------------


def test_media_check_refuses_a_deeply_nested_statement_bundle(airseal, tmp_path):
    media = tmp_path / "media"
    (media / layout.MEDIA_DIR).mkdir(parents=True)
    (media / layout.MEDIA_DIR / layout.STATEMENT_NAME).write_bytes(NESTED)
    result = airseal("media", "check", str(media))
    assert_refused(result, STATEMENT, "json-depth")
    report = json.loads(airseal("media", "check", str(media), "--json").stdout)
    assert report["status"] == "damaged"
    assert [(f["path"], f["check"]) for f in report["damaged"]] == [(STATEMENT, "json-depth")]


def _rewrite_unverified_statement(media: Path, edit) -> None:
    """Edit the statement inside the bundle (its signature no longer matches: the courier's
    check does not look at signatures, so only the parser stands in the way)."""
    path = media / layout.MEDIA_DIR / layout.STATEMENT_NAME
    bundle = json.loads(path.read_bytes())
    envelope = bundle["dsseEnvelope"]
    statement = json.loads(base64.b64decode(envelope["payload"]))
    edit(statement)
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(bundle))


def test_media_check_refuses_a_deeply_nested_statement(airseal, exported):
    media, _ = exported
    path = media / layout.MEDIA_DIR / layout.STATEMENT_NAME
    bundle = json.loads(path.read_bytes())
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(NESTED).decode()
    path.write_text(json.dumps(bundle))
    assert_refused(airseal("media", "check", str(media)), STATEMENT, "json-depth")


@pytest.mark.parametrize(
    ("field", "value"),
    [("created", "0001-01-01T00:00:00+23:59"), ("expires", "9999-12-31T23:59:59-23:59")],
)
def test_media_check_refuses_timestamps_outside_the_utc_years(airseal, exported, field, value):
    media, _ = exported
    _rewrite_unverified_statement(media, lambda s: s["predicate"].update({field: value}))
    result = airseal("media", "check", str(media))
    assert_refused(result, STATEMENT, "statement")
    assert f"{field}: is outside years 1 to 9999 once converted to UTC" in result.stderr


def test_media_check_refuses_a_sequence_beyond_sqlite_integer(airseal, exported):
    media, _ = exported
    _rewrite_unverified_statement(media, lambda s: s["predicate"].update(sequence=2**63))
    result = airseal("media", "check", str(media))
    assert_refused(result, STATEMENT, "statement")
    assert "sequence: " in result.stderr


# -- verify-blob -----------------------------------------------------------------------------


def test_verify_blob_refuses_a_deeply_nested_bundle(airseal, appliance_home, tmp_path):
    assert airseal("key", "generate", "k").code == 0
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(1000))
    bundle = tmp_path / "blob.sigstore.json"
    bundle.write_bytes(NESTED)
    result = airseal("verify-blob", str(blob), "--key", "k", "--bundle", str(bundle))
    assert_refused(result, str(bundle), "json-depth")


# -- receipts import -------------------------------------------------------------------------


def _predicate(summary: dict[str, Any], signer: PrivateKeySigner, agent_id: str) -> dict:
    now = datetime.now(UTC).replace(microsecond=0)
    return ReceiptPredicate(
        agent_id=agent_id,
        agent_key=spki_pem(signer.public_key).decode(),
        hostname="ws-1",
        os="linux",
        export_id=summary["exportId"],
        sequence=summary["sequence"],
        distributor=summary["fingerprint"],
        status="completed",
        started=now - timedelta(minutes=1),
        finished=now,
        actions=(ActionResult(id=summary["action_id"], version=1, outcome="succeeded"),),
    ).to_json_dict()


def _signed_receipt(signer: PrivateKeySigner, predicate: dict) -> bytes:
    """Signed as an agent signs, over whatever ``predicate`` holds (the model would refuse it)."""
    statement = Statement(
        subject=(Subject(name=layout.STATEMENT_NAME, digest={"sha256": "ab" * 32}),),
        predicateType=RECEIPT_PREDICATE_TYPE,
        predicate=predicate,
    )
    return bundle_to_json(sign_statement(signer, statement))


def _put(media: Path, agent_id: str, export_id: str, data: bytes) -> str:
    relative = receipt_media_path(agent_id, export_id)
    path = media / layout.MEDIA_DIR / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return layout.on_mount(relative)


def test_receipts_import_skips_hostile_receipts_and_keeps_the_genuine(airseal, exported, tmp_path):
    media, summary = exported
    export_id = summary["exportId"]
    genuine_key = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    genuine_pub = tmp_path / "agent-good.pub"
    genuine_pub.write_bytes(spki_pem(genuine_key.public_key))
    enrolled = airseal("agents", "enroll", "--id", "agent-good", "--key", str(genuine_pub))
    assert enrolled.code == 0, enrolled.stderr
    genuine = _put(
        media,
        "agent-good",
        export_id,
        _signed_receipt(genuine_key, _predicate(summary, genuine_key, "agent-good")),
    )
    hostile: dict[str, str] = {}
    hostile[_put(media, "agent-nested", export_id, NESTED)] = "json-depth"
    # the same signature, the bundle re-encoded as UTF-16: verified, then unstorable as text
    other_key = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    utf16 = _signed_receipt(other_key, _predicate(summary, other_key, "agent-utf16"))
    hostile[_put(media, "agent-utf16", export_id, utf16.decode().encode("utf-16"))] = "json"
    for agent_id, edit in (
        ("agent-late", lambda p: p.update(finished="9999-12-31T23:59:59-23:59")),
        ("agent-early", lambda p: p.update(started="0001-01-01T00:00:00+23:59")),
        ("agent-exit", lambda p: p["actions"][0].update(exitCode=2**63)),
        ("agent-version", lambda p: p["actions"][0].update(version=2**63)),
        ("agent-sequence", lambda p: p.update(sequence=2**63)),
        ("agent-badkey", lambda p: p.update(agentKey="-----BEGIN PUBLIC KEY-----\nAAAA\n")),
    ):
        key = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
        predicate = _predicate(summary, key, agent_id)
        edit(predicate)
        hostile[_put(media, agent_id, export_id, _signed_receipt(key, predicate))] = ""

    result = airseal("receipts", "import", str(media), "--json")
    assert result.code == 1, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    statuses = {r["path"]: r["status"] for r in report["receipts"]}
    assert statuses == {genuine: "imported", **dict.fromkeys(hostile, "refused")}
    for r in report["receipts"]:
        if r["path"] in hostile:
            assert r["error"]["check"], r
            assert r["error"]["message"].startswith(r["path"] + ": "), r
            assert hostile[r["path"]] in r["error"]["check"], r
    errors = {r["path"]: r["error"]["message"] for r in report["receipts"] if r["error"]}
    assert "finished: is outside years 1 to 9999" in errors[_path("agent-late", export_id)]
    assert "started: is outside years 1 to 9999" in errors[_path("agent-early", export_id)]
    assert "actions[0].exitCode: " in errors[_path("agent-exit", export_id)]
    assert "actions[0].version: " in errors[_path("agent-version", export_id)]
    assert "sequence: " in errors[_path("agent-sequence", export_id)]

    human = airseal("receipts", "import", str(media))
    assert human.code == 1 and "Traceback" not in human.stderr
    assert "[json-depth]" in human.stderr and "agent-nested" in human.stderr
    listing = json.loads(airseal("receipts", "list", "--json").stdout)
    assert [a["id"] for a in listing["agents"]] == ["agent-good"]
    assert len(listing["receipts"]) == 1


def _path(agent_id: str, export_id: str) -> str:
    return layout.on_mount(receipt_media_path(agent_id, export_id))
