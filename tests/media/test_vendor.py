"""The vendor evidence document carried on media: strict shape, checked from the digest alone."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from airseal.media.errors import InvalidExportStatement
from airseal.media.vendor import VendorEvidence, VendorEvidenceInvalid, verify_vendor_evidence
from airseal.trustroot.keyless import default_trusted_root_json
from airseal.trustroot.keys import spki_pem
from airseal.trustroot.signer import PrivateKeySigner

KEYLESS = Path(__file__).parents[1] / "fixtures" / "keyless"


def _cosign_evidence(private, content: bytes) -> VendorEvidence:
    signer = PrivateKeySigner(private)
    digest = hashlib.sha256(content).digest()
    signature = (
        signer.sign_digest(digest) if signer.algorithm.prehashed else signer.sign_message(content)
    )
    return VendorEvidence(
        method="cosign-signature",
        signature=base64.b64encode(signature).decode(),
        public_key=spki_pem(signer.public_key).decode(),
    )


def test_key_based_evidence_round_trips_and_holds_only_for_its_content() -> None:
    content = b"vendor tool\n"
    evidence = _cosign_evidence(ec.generate_private_key(ec.SECP256R1()), content)
    again = VendorEvidence.from_json_bytes(evidence.to_json_bytes(), subject="vendor.json")
    check = verify_vendor_evidence(again, hashlib.sha256(content).digest(), subject="vendor.json")
    assert check.method == "cosign-signature" and check.signer.startswith("key ")
    with pytest.raises(VendorEvidenceInvalid) as caught:
        verify_vendor_evidence(again, hashlib.sha256(b"other").digest(), subject="vendor.json")
    assert caught.value.subject == "vendor.json" and caught.value.check == "vendor signature"


def test_ed25519_message_signature_cannot_be_checked_from_a_digest() -> None:
    content = b"vendor tool\n"
    evidence = _cosign_evidence(ed25519.Ed25519PrivateKey.generate(), content)
    with pytest.raises(VendorEvidenceInvalid):
        verify_vendor_evidence(evidence, hashlib.sha256(content).digest(), subject="vendor.json")


def test_keyless_evidence_is_checked_against_its_carried_trusted_root() -> None:
    content = (KEYLESS / "new_bundle.txt").read_bytes()
    evidence = VendorEvidence(
        method="keyless",
        bundle=(KEYLESS / "new_bundle.txt.sigstore.json").read_text(),
        identity="aryadeeptade@gmail.com",
        issuer="https://github.com/login/oauth",
        trusted_root=default_trusted_root_json().decode(),
    )
    check = verify_vendor_evidence(evidence, hashlib.sha256(content).digest(), subject="v")
    assert check.signer == "aryadeeptade@gmail.com (https://github.com/login/oauth)"
    other = evidence.model_copy(update={"identity": "mallory@example.com"})
    with pytest.raises(VendorEvidenceInvalid, match="identity mismatch"):
        verify_vendor_evidence(other, hashlib.sha256(content).digest(), subject="v")


@pytest.mark.parametrize(
    "document",
    [
        {"schemaVersion": 1, "method": "cosign-signature", "signature": "AA=="},
        {"schemaVersion": 1, "method": "keyless", "bundle": "{}", "identity": "a", "issuer": "b"},
        {"schemaVersion": 2, "method": "bundle-key", "bundle": "{}", "publicKey": "x"},
        {"schemaVersion": 1, "method": "bundle-key", "bundle": "{}", "publicKey": "x", "extra": 1},
        {"schemaVersion": 1, "method": "gpg", "signature": "AA=="},
    ],
)
def test_malformed_evidence_is_refused_by_name(document: dict[str, object]) -> None:
    with pytest.raises(InvalidExportStatement) as caught:
        VendorEvidence.from_json_bytes(json.dumps(document).encode(), subject="a/vendor.json")
    assert caught.value.subject == "a/vendor.json"
