"""The base every hardware signer shares (airseal.appliance.signers.hardware), without a device."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)

from airseal.appliance.errors import PinError, TokenError
from airseal.appliance.signers.hardware import (
    HardwareSigner,
    ecdsa_der_from_raw,
    keystore_reference,
    piv_reference,
    pkcs11_reference,
    required_pin,
)
from airseal.trustroot.errors import UnsupportedAlgorithm
from airseal.trustroot.keys import KeyAlgorithm, PublicKey, verify_digest
from airseal.trustroot.signer import Signer


class _SoftwareSigner(HardwareSigner[str]):
    """A stand-in device: an in-memory key that records when it is closed."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        super().__init__("soft slot", key.public_key())
        self._key = key
        self.closes = 0

    def sign_digest(self, sha256_digest: bytes) -> bytes:
        with self._lock:
            return self._key.sign(sha256_digest, ec.ECDSA(Prehashed(hashes.SHA256())))

    def close(self) -> None:
        self.closes += 1


def _raw(der: bytes, coordinate_bytes: int) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(coordinate_bytes, "big") + s.to_bytes(coordinate_bytes, "big")


@pytest.mark.parametrize(("curve", "size"), [(ec.SECP256R1(), 32), (ec.SECP384R1(), 48)])
def test_raw_ecdsa_becomes_the_der_cosign_verifies(curve: ec.EllipticCurve, size: int) -> None:
    key = ec.generate_private_key(curve)
    digest = hashlib.sha256(b"payload").digest()
    der = key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    converted = ecdsa_der_from_raw(_raw(der, size), size, subject="token 't'")
    assert converted == encode_dss_signature(*decode_dss_signature(der))
    verify_digest(key.public_key(), converted, digest)


def test_raw_ecdsa_of_another_length_is_refused_naming_the_device() -> None:
    with pytest.raises(TokenError, match="65-byte ECDSA signature, not raw r\\|\\|s of 64") as info:
        ecdsa_der_from_raw(bytes(65), 32, subject="token 'alpha' (serial 1, slot 0)")
    assert info.value.subject == "token 'alpha' (serial 1, slot 0)"


@pytest.mark.parametrize("given", ["", None, 123456])
def test_a_missing_pin_is_refused_before_any_device_sees_it(given: object) -> None:
    provider: Callable[[], Any] = lambda: given  # noqa: E731
    with pytest.raises(PinError, match="no PIN was given") as info:
        required_pin(provider)
    assert "AIRSEAL_PIN" in (info.value.hint or "")


def test_a_given_pin_is_passed_through() -> None:
    assert required_pin(lambda: "123456") == "123456"


def test_the_base_is_a_signer_whose_key_and_algorithm_are_the_registered_ones() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signer = _SoftwareSigner(key)
    assert isinstance(signer, Signer)
    assert signer.ref == "soft slot"
    public: PublicKey = signer.public_key
    assert public.public_numbers() == key.public_key().public_numbers()
    assert signer.algorithm is KeyAlgorithm.ECDSA_P256


def test_messages_are_signed_through_their_sha256_digest() -> None:
    signer = _SoftwareSigner(ec.generate_private_key(ec.SECP256R1()))
    message = b"DSSEv1 28 application/vnd.in-toto+json 2 {}"
    with signer:
        signature = signer.sign_message(message)
    verify_digest(signer.public_key, signature, hashlib.sha256(message).digest())


def test_leaving_the_with_block_closes_on_every_path() -> None:
    signer = _SoftwareSigner(ec.generate_private_key(ec.SECP256R1()))
    with signer as entered:
        assert entered is signer
    assert signer.closes == 1
    with pytest.raises(RuntimeError), signer:
        raise RuntimeError("interrupted export")
    assert signer.closes == 2


def test_a_key_that_cannot_sign_digests_is_refused_for_messages() -> None:
    class _Ed25519Device(HardwareSigner[None]):
        def sign_digest(self, sha256_digest: bytes) -> bytes:
            raise AssertionError("never reached")

        def close(self) -> None:
            pass

    device = _Ed25519Device(None, ed25519.Ed25519PrivateKey.generate().public_key())
    with pytest.raises(UnsupportedAlgorithm):
        device.sign_message(b"message")


def test_the_keystore_keeps_a_reference_without_the_public_key() -> None:
    class _Ref:
        def __init__(self) -> None:
            self.record = {"serial": 7, "slot": "9c", "public_key_pem": "PEM"}

        def to_record(self) -> dict[str, Any]:
            return self.record

    ref = _Ref()
    assert keystore_reference(ref) == {"serial": 7, "slot": "9c"}
    assert piv_reference(ref) == pkcs11_reference(ref) == {"serial": 7, "slot": "9c"}
    assert ref.record["public_key_pem"] == "PEM"  # the reference itself is left alone


def test_both_device_signers_share_the_base() -> None:
    from airseal.appliance.signers.piv import PivSigner
    from airseal.appliance.signers.pkcs11 import Pkcs11Signer

    assert issubclass(Pkcs11Signer, HardwareSigner)
    assert issubclass(PivSigner, HardwareSigner)


def test_the_base_loads_neither_device_library() -> None:
    probe = (
        "import sys, airseal.appliance.signers.hardware\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pkcs11', 'yubikit', 'ykman'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
