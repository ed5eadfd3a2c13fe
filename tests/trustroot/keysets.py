"""Key material for trustroot tests: one signer per supported algorithm."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from airseal.trustroot.signer import PrivateKeySigner

_KEYS = {
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ecdsa-p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "rsa-2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "rsa-3072": lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}
ALGORITHMS = tuple(_KEYS)


def make_signer(algorithm: str) -> PrivateKeySigner:
    return PrivateKeySigner(_KEYS[algorithm]())
