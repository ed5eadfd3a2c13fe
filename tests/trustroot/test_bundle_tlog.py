"""Log entries in key-based bundles, proven against a trusted root that lists the log.

The log here is a real one-leaf Rekor-shaped log made in the test: a P-256 log key, a
`hashedrekord` 0.0.1 body naming the bundle's signature, the RFC 6962 leaf hash as the root, a
signed-note checkpoint and a SET over the RFC 8785 canonical entry, and a `trusted_root.json` that
lists the log's key. sigstore-python's proof code checks them (inclusion, checkpoint, SET)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
import rfc8785
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from airseal.trustroot.bundle import bundle_to_json, message_signature_bundle, parse_bundle
from airseal.trustroot.bundle_tlog import TlogEntryInvalid, check_tlog_entries
from airseal.trustroot.keyless import default_trusted_root_json
from airseal.trustroot.signer import PrivateKeySigner

ORIGIN = "log.airseal.test"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _log() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, der


def _trusted_root(log_der: bytes) -> bytes:
    root = json.loads(default_trusted_root_json())
    root["tlogs"].append(
        {
            "baseUrl": f"https://{ORIGIN}",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": _b64(log_der),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            },
            "logId": {"keyId": _b64(hashlib.sha256(log_der).digest())},
        }
    )
    return json.dumps(root).encode()


def _logged_bundle(
    log_key: ec.EllipticCurvePrivateKey, log_der: bytes, *, body_sig: str | None = None
):
    signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    digest = hashlib.sha256(b"vendor artifact").digest()
    signature = signer.sign_digest(digest)
    data = json.loads(
        bundle_to_json(message_signature_bundle(signer.public_key, digest, signature))
    )
    body = json.dumps(
        {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
                "signature": {"content": body_sig or _b64(signature)},
            },
        },
        separators=(",", ":"),
    ).encode()
    root_hash = hashlib.sha256(b"\x00" + body).digest()
    log_id = hashlib.sha256(log_der).digest()
    note = f"{ORIGIN}\n1\n{_b64(root_hash)}\n"
    note_sig = log_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
    checkpoint = f"{note}\n\u2014 {ORIGIN} {_b64(log_id[:4] + note_sig)}\n"
    integrated = 1_700_000_000
    canonical = rfc8785.dumps(
        {"body": _b64(body), "integratedTime": integrated, "logID": log_id.hex(), "logIndex": 0}
    )
    data["verificationMaterial"]["tlogEntries"] = [
        {
            "logIndex": "0",
            "logId": {"keyId": _b64(log_id)},
            "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
            "integratedTime": str(integrated),
            "inclusionPromise": {
                "signedEntryTimestamp": _b64(log_key.sign(canonical, ec.ECDSA(hashes.SHA256())))
            },
            "inclusionProof": {
                "logIndex": "0",
                "rootHash": _b64(root_hash),
                "treeSize": "1",
                "hashes": [],
                "checkpoint": {"envelope": checkpoint},
            },
            "canonicalizedBody": _b64(body),
        }
    ]
    return parse_bundle(json.dumps(data).encode())


def test_a_logged_entry_verifies_against_a_root_that_lists_the_log() -> None:
    log_key, log_der = _log()
    outcome = check_tlog_entries(_logged_bundle(log_key, log_der), _trusted_root(log_der))
    assert (outcome.entries, outcome.verified, outcome.unchecked) == (1, 1, 0)


def test_without_a_root_the_entry_is_reported_unchecked_with_the_reason() -> None:
    log_key, log_der = _log()
    outcome = check_tlog_entries(_logged_bundle(log_key, log_der), None)
    assert outcome.unchecked == 1 and "--trusted-root" in (outcome.reason or "")


def test_a_root_without_the_log_refuses_it() -> None:
    log_key, log_der = _log()
    with pytest.raises(TlogEntryInvalid, match="log index 0"):
        check_tlog_entries(_logged_bundle(log_key, log_der), default_trusted_root_json())


def test_an_entry_about_another_signature_is_refused() -> None:
    log_key, log_der = _log()
    bundle = _logged_bundle(log_key, log_der, body_sig=_b64(b"another signature"))
    with pytest.raises(TlogEntryInvalid, match="another signature"):
        check_tlog_entries(bundle, _trusted_root(log_der))


def test_a_forged_checkpoint_is_refused() -> None:
    _, log_der = _log()
    forger, _ = _log()
    bundle = _logged_bundle(forger, log_der)  # signed by a key that is not the log's
    with pytest.raises(TlogEntryInvalid):
        check_tlog_entries(bundle, _trusted_root(log_der))
