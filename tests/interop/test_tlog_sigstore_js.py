"""Bundles from our transparency log, checked by sigstore-js with our trusted_root.json.

@sigstore/verify with a transparency-log threshold of 1 must accept a key-based bundle whose
log entry comes from `airseal log` (SET, inclusion proof, signed checkpoint), and refuse it when
any of those is altered: the log is what stock Sigstore verifiers already know how to check.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest


@pytest.fixture
def logged(airseal, appliance_home, tmp_path) -> tuple[Path, Path, Path, Path]:
    """A sign-blob bundle from an appliance with a log, its key, artifact and trusted root."""
    for name in ("signer", "logkey"):
        assert airseal("key", "generate", name).code == 0
    made = airseal("log", "init", "--key", "logkey", "--origin", "log.site.example", "--json")
    assert made.code == 0, made.stderr
    assert json.loads(made.stdout)["origin"] == "log.site.example"
    artifact = tmp_path / "payload.bin"
    artifact.write_bytes(os.urandom(10_000))
    # A few entries first, so the proof has hashes on both sides.
    for i in range(3):
        other = tmp_path / f"o{i}"
        other.write_bytes(os.urandom(100))
        assert airseal("sign-blob", str(other), "--key", "signer").code == 0
    bundle = tmp_path / "b.sigstore.json"
    signed = airseal("sign-blob", str(artifact), "--key", "signer", "--bundle", str(bundle))
    assert signed.code == 0, signed.stderr
    pub = tmp_path / "signer.pub"
    pub.write_text(airseal("key", "export-public", "signer").stdout)
    root = tmp_path / "trusted_root.json"
    assert airseal("log", "trusted-root", "--output", str(root)).code == 0
    return bundle, pub, artifact, root


def test_logged_bundle_verifies_with_tlog_threshold_1(logged, sigstore_js, airseal) -> None:
    bundle, pub, artifact, root = logged
    entry = json.loads(bundle.read_text())["verificationMaterial"]["tlogEntries"][0]
    assert entry["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.1"}
    assert entry["logIndex"] == "3" and entry["inclusionProof"]["treeSize"] == "4"
    assert entry["inclusionProof"]["checkpoint"]["envelope"].startswith("log.site.example\n4\n")
    result = sigstore_js(bundle, pub, artifact, trusted_root=root, tlog_threshold=1)
    assert result.ok, result.error
    # Our own verifier agrees, and so does the log's self-check.
    assert (
        airseal("verify-blob", str(artifact), "--key", str(pub), "--bundle", str(bundle)).code == 0
    )
    assert airseal("log", "verify").code == 0


def _b64_flip(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _alter(entry: dict, what: str) -> None:
    proof = entry["inclusionProof"]
    if what == "set":
        entry["inclusionPromise"]["signedEntryTimestamp"] = _b64_flip(
            entry["inclusionPromise"]["signedEntryTimestamp"]
        )
    elif what == "proof-hash":
        proof["hashes"][0] = _b64_flip(proof["hashes"][0])
    elif what == "checkpoint-signature":
        body, sig = proof["checkpoint"]["envelope"].rsplit(" ", 1)
        proof["checkpoint"]["envelope"] = f"{body} {_b64_flip(sig.strip())}\n"
    elif what == "checkpoint-root":
        envelope = proof["checkpoint"]["envelope"]
        lines = envelope.split("\n")
        lines[2] = _b64_flip(lines[2])
        proof["checkpoint"]["envelope"] = "\n".join(lines)
    elif what == "root-hash":
        proof["rootHash"] = _b64_flip(proof["rootHash"])
    elif what == "log-index":
        entry["logIndex"] = str(int(entry["logIndex"]) + 1)
    elif what == "body":
        body = json.loads(base64.b64decode(entry["canonicalizedBody"]))
        body["spec"]["data"]["hash"]["value"] = "00" * 32
        entry["canonicalizedBody"] = base64.b64encode(json.dumps(body).encode()).decode()
    elif what == "integrated-time":
        entry["integratedTime"] = str(int(entry["integratedTime"]) + 1)


ALTERATIONS = (
    "set",
    "proof-hash",
    "checkpoint-signature",
    "checkpoint-root",
    "log-index",
    "body",
    "integrated-time",
)


def test_stripped_or_altered_entries_and_a_foreign_root_are_refused(
    logged, sigstore_js, tmp_path
) -> None:
    """One appliance, every alteration (building the appliance dominates the time)."""
    bundle, pub, artifact, root = logged
    document = json.loads(bundle.read_text())
    document["verificationMaterial"]["tlogEntries"] = []
    stripped = tmp_path / "stripped.json"
    stripped.write_text(json.dumps(document))
    assert not sigstore_js(stripped, pub, artifact, trusted_root=root, tlog_threshold=1).ok

    for what in ALTERATIONS:
        document = json.loads(bundle.read_text())
        _alter(document["verificationMaterial"]["tlogEntries"][0], what)
        altered = tmp_path / f"altered-{what}.json"
        altered.write_text(json.dumps(document))
        result = sigstore_js(altered, pub, artifact, trusted_root=root, tlog_threshold=1)
        assert not result.ok, what
        assert "TLOG" in result.error, (what, result.error)

    # A trusted root naming another log (same key, other host) does not vouch for this one.
    other_root = json.loads(root.read_text())
    other_root["tlogs"][0]["baseUrl"] = "https://other.example"
    other = tmp_path / "other_root.json"
    other.write_text(json.dumps(other_root))
    assert not sigstore_js(bundle, pub, artifact, trusted_root=other, tlog_threshold=1).ok


def test_our_verifier_also_refuses_a_proof_root_unlike_its_checkpoint(logged) -> None:
    """sigstore-js 3.1.1 proves inclusion against the checkpoint's root and ignores
    ``inclusionProof.rootHash``; ours requires the two to agree."""
    from airseal.trustroot.errors import LogProofError
    from airseal.trustroot.tlog.entries import TlogEntry, verify_tlog_entry

    bundle, _, _, root = logged
    tlog = json.loads(root.read_text())["tlogs"][0]
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    key = load_der_public_key(base64.b64decode(tlog["publicKey"]["rawBytes"]))
    entry = json.loads(bundle.read_text())["verificationMaterial"]["tlogEntries"][0]
    verify_tlog_entry(
        TlogEntry.from_json(entry),
        log_key=key,
        name="log.site.example",
        origin="log.site.example",
        signed=None,
    )
    _alter(entry, "root-hash")
    with pytest.raises(LogProofError, match="another root"):
        verify_tlog_entry(
            TlogEntry.from_json(entry),
            log_key=key,
            name="log.site.example",
            origin="log.site.example",
            signed=None,
        )
