"""Check 2, step 5, as a pure step: the vendor's signature carried with an action is checked
again against the payload's signed digest; older media without vendor data still verify."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from airseal.agent.approval import approval_request
from airseal.agent.trust import PinnedKeyTrust, TrustedKey
from airseal.agent.verification import MediaVerifier, verify_media
from airseal.media.reader import DirectorySource
from airseal.media.vendor import VendorEvidence, VendorEvidenceInvalid, VendorSignatureMissing
from airseal.trustroot.keys import fingerprint, spki_pem
from airseal.trustroot.signer import PrivateKeySigner

from .helpers import ActionBuild, sign_action, utcnow, write_media


@pytest.fixture
def trust(distributor) -> PinnedKeyTrust:
    key = TrustedKey(
        distributor.fingerprint,
        "Test distributor",
        distributor.signer.public_key,
        frozenset({"exports", "actions"}),
        "test",
    )
    return PinnedKeyTrust([key])


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "tool.conf"
    path.write_bytes(b"setting=1\n" * 100)
    return path


def _evidence(payload: Path, *, corrupt: bool = False) -> tuple[bytes, str]:
    vendor = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    signature = vendor.sign_digest(hashlib.sha256(payload.read_bytes()).digest())
    if corrupt:
        signature = signature[:-1] + bytes([signature[-1] ^ 1])
    evidence = VendorEvidence(
        method="cosign-signature",
        signature=base64.b64encode(signature).decode(),
        public_key=spki_pem(vendor.public_key).decode(),
    )
    return evidence.to_json_bytes(), fingerprint(vendor.public_key)


def _required(predicate: dict) -> None:
    predicate["requireVendorSignature"] = True


def test_older_media_without_vendor_data_still_verifies(tmp_path, payload, distributor, trust):
    action = sign_action(ActionBuild("plain", payload), distributor)
    mount = write_media(tmp_path / "usb", distributor, [action])
    media = verify_media(DirectorySource(mount), trust, {}, now=utcnow())
    assert media.actions[0].vendor is None
    assert approval_request(media.export, media.actions).actions[0].vendor is None


def test_carried_vendor_signature_is_checked_and_shown(tmp_path, payload, distributor, trust):
    evidence, vendor_fp = _evidence(payload)
    action = sign_action(ActionBuild("signed", payload, raw_predicate_edit=_required), distributor)
    mount = write_media(
        tmp_path / "usb", distributor, [dataclasses.replace(action, vendor=evidence)]
    )
    media = verify_media(DirectorySource(mount), trust, {}, now=utcnow())
    assert media.actions[0].vendor is not None
    assert media.actions[0].vendor.signer == f"key {vendor_fp}"
    request = approval_request(media.export, media.actions)
    assert f"vendor signature: key {vendor_fp} (verified here)" in request.describe()


def test_invalid_vendor_signature_is_refused_by_name(tmp_path, payload, distributor, trust):
    evidence, _ = _evidence(payload, corrupt=True)
    action = sign_action(ActionBuild("bad", payload), distributor)
    mount = write_media(
        tmp_path / "usb", distributor, [dataclasses.replace(action, vendor=evidence)]
    )
    with pytest.raises(VendorEvidenceInvalid) as caught:
        verify_media(DirectorySource(mount), trust, {}, now=utcnow())
    assert caught.value.subject == "airseal/actions/bad/vendor.json"


def test_required_but_absent_is_refused(tmp_path, payload, distributor, trust):
    action = sign_action(ActionBuild("needy", payload, raw_predicate_edit=_required), distributor)
    mount = write_media(tmp_path / "usb", distributor, [action])
    with pytest.raises(VendorSignatureMissing) as caught:
        verify_media(DirectorySource(mount), trust, {}, now=utcnow())
    assert caught.value.subject == "airseal/actions/needy/action.sigstore.json"


def test_the_vendor_step_needs_the_action_step_first(tmp_path, payload, distributor, trust):
    mount = write_media(
        tmp_path / "usb", distributor, [sign_action(ActionBuild("a", payload), distributor)]
    )
    verifier = MediaVerifier(DirectorySource(mount), trust, {}, now=utcnow())
    with pytest.raises(RuntimeError, match="verify_actions"):
        verifier.verify_vendor_signatures()
