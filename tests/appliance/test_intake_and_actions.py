"""Intake (integrity check 1 of 3) and signed, versioned actions, through the services."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest

from airseal.appliance import actions, intake, settings
from airseal.appliance.db import open_database
from airseal.appliance.errors import UsageError
from airseal.appliance.home import init_home
from airseal.appliance.keystore import generate_file_key, get_key
from airseal.media.statement import read_action_statement
from airseal.trustroot.bundle import parse_bundle
from airseal.trustroot.errors import InvalidSignature, MalformedSignature
from airseal.trustroot.keys import load_public_key
from airseal.trustroot.verify import verify_dsse_bundle


class FixedPrompter:
    def __init__(self, secret: str = "pw-for-tests") -> None:
        self.value, self.notices = secret, []

    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        return self.value

    def notice(self, message: str) -> None:
        self.notices.append(message)


@pytest.fixture
def appliance(tmp_path):
    home, _ = init_home(tmp_path / "home")
    db = open_database(home)
    generate_file_key(home, db, "ops", FixedPrompter())
    generate_file_key(home, db, "vendor", FixedPrompter())
    return home, db


@pytest.fixture
def payload(tmp_path):
    path = tmp_path / "agent-installer.tar"
    path.write_bytes(os.urandom(200_000))
    return path


def _vendor_signature(home, db, path, tmp_path):
    from airseal.appliance.blobs import sign_blob

    signed = sign_blob(home, db, path, "vendor", FixedPrompter())
    sig = tmp_path / "vendor.sig"
    sig.write_bytes(signed.signature_b64)
    return sig, get_key(db, "vendor").public_key


def _store_listing(home):
    return sorted(p.name for p in home.store_dir.iterdir())


def test_signed_file_enters_the_store_by_digest(appliance, payload, tmp_path):
    home, db = appliance
    sig, key = _vendor_signature(home, db, payload, tmp_path)
    stored = intake.add_file(home, db, payload, intake.VendorSignature(signature=sig, key=key))
    digest = hashlib.sha256(payload.read_bytes()).hexdigest()
    assert stored.sha256 == digest and stored.verified and stored.method == "cosign-signature"
    assert (home.store_dir / digest).read_bytes() == payload.read_bytes()
    assert _store_listing(home) == [digest]
    assert intake.find_file(db, digest[:10]) == intake.find_file(db, str(payload))


def test_refused_files_leave_nothing_behind(appliance, payload, tmp_path):
    home, db = appliance
    sig, key = _vendor_signature(home, db, payload, tmp_path)
    payload.write_bytes(payload.read_bytes() + b"trojan")
    with pytest.raises(InvalidSignature):
        intake.add_file(home, db, payload, intake.VendorSignature(signature=sig, key=key))
    sig.write_text("%%% not base64")
    with pytest.raises(MalformedSignature):
        intake.add_file(home, db, payload, intake.VendorSignature(signature=sig, key=key))
    assert _store_listing(home) == []
    assert intake.list_files(db) == []
    refused = [r["action"] for r in db["audit"].rows_where("action = 'file.refused'")]
    assert refused == ["file.refused", "file.refused"]


def test_site_policy_can_require_a_signature(appliance, payload):
    home, db = appliance
    assert intake.add_file(home, db, payload, intake.VendorSignature()).verified is False
    settings.set_value(home, db, "intake.require-signature", "true")
    other = payload.with_name("other.bin")
    other.write_bytes(b"unsigned")
    with pytest.raises(intake.IntakeRefused, match="requires a vendor signature"):
        intake.add_file(home, db, other, intake.VendorSignature())
    assert len(_store_listing(home)) == 1


def test_keyless_intake_with_the_real_public_good_bundle(appliance):
    from pathlib import Path

    home, db = appliance
    fixtures = Path(__file__).parents[1] / "fixtures" / "keyless"
    vendor = intake.VendorSignature(
        bundle=fixtures / "new_bundle.txt.sigstore.json",
        identity="aryadeeptade@gmail.com",
        issuer="https://github.com/login/oauth",
    )
    stored = intake.add_file(home, db, fixtures / "new_bundle.txt", vendor)
    assert stored.method == "keyless" and stored.signer.startswith("aryadeeptade@gmail.com")


@pytest.mark.parametrize("bad", ["CON", "a:b", "trailing.", "x" * 300])
def test_names_unsafe_on_fat_are_refused_at_intake(appliance, payload, bad):
    home, db = appliance
    with pytest.raises(UsageError, match="file name"):
        intake.add_file(home, db, payload, intake.VendorSignature(), name=bad)


def _create(home, db, payload, **fields):
    intake.add_file(home, db, payload, intake.VendorSignature())
    spec = actions.ActionSpec(
        **{
            "name": "(Install)Agent",
            "os": "linux",
            "mode": "download",
            "file": str(payload),
            "dest": "/opt/agent/agent.tar",
            **fields,
        }
    )
    return actions.create_action(home, db, spec, "ops", FixedPrompter())


def test_an_action_is_a_signed_statement_naming_its_payload(appliance, payload):
    home, db = appliance
    record = _create(home, db, payload, if_missing=("/opt/agent",), host="web-*")
    key = load_public_key(get_key(db, "ops").public_key_pem.encode())
    statement = verify_dsse_bundle(key, parse_bundle(record.bundle.encode()))
    predicate = read_action_statement(statement)
    assert statement.subject[0].name == "agent-installer.tar"
    assert statement.subject[0].sha256 == hashlib.sha256(payload.read_bytes()).hexdigest()
    assert predicate.download.dest == "/opt/agent/agent.tar"
    assert predicate.conditions.if_missing == ("/opt/agent",)
    assert predicate.intake.verified is False and predicate.intake.method == "none"


def test_editing_signs_a_new_version_and_keeps_the_old(appliance, payload):
    home, db = appliance
    first = _create(home, db, payload)
    second = actions.edit_action(
        home, db, first.id, actions.ActionSpec(description="v2 notes"), None, FixedPrompter()
    )
    assert (second.id, second.version) == (first.id, 2)
    assert second.predicate.to_json_dict()["description"] == "v2 notes"
    assert second.predicate.to_json_dict()["download"] == first.predicate.to_json_dict()["download"]
    assert actions.get_action(db, first.id, 1).bundle == first.bundle
    assert [r.version for r in actions.list_actions(db)] == [2]
    assert [r.version for r in actions.list_actions(db, all_versions=True)] == [1, 2]


def test_revoked_actions_disappear_and_cannot_be_edited(appliance, payload):
    home, db = appliance
    record = _create(home, db, payload)
    assert actions.revoke_action(home, db, record.id, "superseded") == 1
    assert actions.list_actions(db) == []
    assert actions.list_actions(db, include_revoked=True)[0].revoked
    with pytest.raises(UsageError, match="revoked"):
        actions.edit_action(
            home, db, record.id, actions.ActionSpec(label="x"), None, FixedPrompter()
        )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "no purpose"}, r"\(Purpose\)Name"),
        ({"dest": "relative/path"}, "dest"),
        ({"mode": "execute", "dest": None, "timeout": 0}, "timeout"),
        ({"os": "windows", "dest": "/unix/style"}, "dest"),
        ({"dest": None}, "--dest"),
    ],
)
def test_invalid_actions_are_refused_with_the_field_named(appliance, payload, fields, message):
    home, db = appliance
    with pytest.raises(UsageError, match=message):
        _create(home, db, payload, **fields)
    assert actions.list_actions(db) == []


def test_an_action_needs_a_stored_payload(appliance, tmp_path):
    home, db = appliance
    stray = tmp_path / "never-added.bin"
    stray.write_bytes(b"x")
    spec = actions.ActionSpec(
        name="(X)Y", os="linux", mode="download", file=str(stray), dest="/tmp/y"
    )
    with pytest.raises(intake.FileNotInStore, match="never added"):
        actions.create_action(home, db, spec, "ops", FixedPrompter())


def test_action_bundle_is_cosign_shaped(appliance, payload):
    home, db = appliance
    document = json.loads(_create(home, db, payload).bundle)
    assert document["verificationMaterial"]["tlogEntries"] == []
    envelope = document["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["predicateType"] == "https://airseal.dev/action/v1"
