"""The evidence builder and writer on their own: bytes in, files and claims out (no appliance)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from airseal.appliance.evidence.build import build_evidence
from airseal.appliance.evidence.collect import _since
from airseal.appliance.evidence.model import (
    ActionSource,
    AuditRowSource,
    Evidence,
    EvidenceSource,
    KeySource,
    Scope,
    VendorSource,
)
from airseal.appliance.evidence.write import write_evidence
from airseal.errors import UsageError
from airseal.trustroot.bundle import (
    add_statement_signature,
    bundle_to_json,
    parse_bundle,
    sign_statement,
)
from airseal.trustroot.dsse import Statement, Subject
from airseal.trustroot.keys import fingerprint, spki_pem
from airseal.trustroot.signer import PrivateKeySigner

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
DIGEST = "ab" * 32


def _signer() -> PrivateKeySigner:
    return PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))


def _key(signer: PrivateKeySigner, name: str) -> KeySource:
    return KeySource(fingerprint(signer.public_key), spki_pem(signer.public_key).decode(),
                     (name,), ("appliance key",))


def _source(name: str = "(Config)Tool") -> tuple[EvidenceSource, PrivateKeySigner, KeySource]:
    dist, bystander = _signer(), _signer()
    statement = Statement(
        subject=[Subject(name="tool.conf", digest={"sha256": DIGEST})],
        predicate_type="https://airseal.dev/action/v1", predicate={"name": name},
    )
    bundle = bundle_to_json(sign_statement(dist, statement))
    key = _key(dist, "dist")
    body = json.dumps([1, "2026-12-02T11:00:00+00:00", "root", "action.create", "a1", "{}"],
                      separators=(",", ":"))
    row_hash = hashlib.sha256(("0" * 64 + body).encode()).hexdigest()
    source = EvidenceSource(
        scope=Scope("action", "a1"), generated=NOW, appliance_id="appliance-1",
        actions=(ActionSource(
            id="a1", version=1, name=name, os="linux", mode="download",
            payload_name="tool.conf", payload_sha256=DIGEST, payload_size=4, key_name="dist",
            key_fingerprint=key.fingerprint, created="2026-12-02T11:00:00+00:00",
            valid_until="2027-01-01T00:00:00+00:00", revoked=None, bundle=bundle,
            vendor=VendorSource("none", False, None, "2026-12-02T10:00:00+00:00", None)),),
        exports=(), receipts=(), keys=(key, _key(bystander, "unrelated")),
        audit=(AuditRowSource(1, "2026-12-02T11:00:00+00:00", "root", "action.create", "a1",
                              "{}", "0" * 64, row_hash, relevant=True),),
        audit_head=(1, row_hash),
    )
    return source, dist, key


def test_builder_names_the_signer_lists_every_file_and_shows_only_keys_that_signed() -> None:
    source, _dist, key = _source()
    evidence = build_evidence(source)
    document = json.loads(evidence.files["evidence.json"])
    assert document["schemaVersion"] == 1 and document["generated"] == "2026-12-02T12:00:00Z"
    assert document["actions"][0]["signers"] == [key.fingerprint]
    assert [k["fingerprint"] for k in document["keys"]] == [key.fingerprint]  # not the bystander
    listed = dict(line.split("  ", 1)[::-1] for line in
                  evidence.files["MANIFEST"].decode().splitlines())
    assert set(listed) == set(evidence.files) - {"MANIFEST"}
    for path, digest in listed.items():
        assert hashlib.sha256(evidence.files[path]).hexdigest() == digest
    verify = evidence.files["VERIFY.md"].decode()
    assert f"openssl dgst -sha256 -verify keys/{key.fingerprint}.pem" in verify
    assert "sha256sum -c --quiet --strict MANIFEST" in verify
    assert "## What this evidence does not contain" not in verify  # no notes given


def test_an_unknown_signer_gets_no_signature_claim() -> None:
    source, *_ = _source()
    stranger = _key(_signer(), "stranger")
    evidence = build_evidence(EvidenceSource(**{**source.__dict__, "keys": (stranger,)}))
    ids = {claim.id for claim in evidence.claims}
    assert "action-a1-v1-statement" in ids and "action-a1-v1-signature-1" not in ids
    assert json.loads(evidence.files["evidence.json"])["actions"][0]["signers"] == []


def test_an_approval_is_a_second_signature_with_its_own_claim() -> None:
    source, _dist, key = _source()
    second = _signer()
    approved = add_statement_signature(second, parse_bundle(source.actions[0].bundle))
    action = replace(source.actions[0], bundle=bundle_to_json(approved))
    evidence = build_evidence(replace(source, actions=(action,),
                                      keys=(*source.keys, _key(second, "approver"))))
    ids = {claim.id for claim in evidence.claims}
    assert {"action-a1-v1-signature-1", "action-a1-v1-signature-2"} <= ids
    signers = json.loads(evidence.files["evidence.json"])["actions"][0]["signers"]
    assert signers == [key.fingerprint, fingerprint(second.public_key)]


def test_the_report_escapes_what_operators_and_agents_wrote() -> None:
    source, *_ = _source(name="<script>alert(1)</script>")
    html = build_evidence(source).files["report.html"].decode()
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_paths_that_a_shell_would_split_are_refused() -> None:
    for bad in ("receipts/a b/x.json", "../x", "a/../../x", "a/$(id)", "-rf"):
        with pytest.raises(ValueError, match="unsafe evidence path"):
            Evidence().add(bad, b"")


def test_writing_is_all_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "evidence"
    assert write_evidence(target, {"a/b.txt": b"hello", "MANIFEST": b"x"}) == 6
    assert (target / "a" / "b.txt").read_bytes() == b"hello"
    with pytest.raises(UsageError, match="not an empty folder"):
        write_evidence(target, {"c.txt": b"x"})
    broken = tmp_path / "broken"
    with pytest.raises(ValueError, match="unsafe"):
        write_evidence(broken, {"a.txt": b"x", "../escape.txt": b"x"})
    assert not broken.exists() and not (tmp_path / "escape.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["evidence"]  # no staging folder left


def test_since_takes_a_date_or_a_time() -> None:
    assert _since("2026-01-01") == datetime(2026, 1, 1, tzinfo=UTC)
    assert _since("2026-01-01T10:00:00Z") == datetime(2026, 1, 1, 10, tzinfo=UTC)
    with pytest.raises(UsageError, match="not a date"):
        _since("yesterday")
