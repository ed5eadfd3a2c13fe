"""The one signing interface every key backend implements.

The rest of Airseal (blob signing, DSSE statements for actions and exports) sees only
:class:`Signer`: a file key, a PKCS#11 token and a YubiKey PIV slot are interchangeable. A backend
signs a SHA-256 digest (so multi-gigabyte content is streamed, never held in memory); Ed25519 cannot
sign a digest and signs the message instead, which is why both methods exist.
"""

from __future__ import annotations

import hashlib
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from airseal.trustroot.errors import UnsupportedAlgorithm
from airseal.trustroot.keys import KeyAlgorithm, PrivateKey, PublicKey, key_algorithm


@runtime_checkable
class Signer(Protocol):
    """A key that can sign. Implementations must never expose private key material."""

    @property
    def public_key(self) -> PublicKey: ...

    @property
    def algorithm(self) -> KeyAlgorithm: ...

    def sign_digest(self, sha256_digest: bytes) -> bytes:
        """DER ECDSA or PKCS#1 v1.5 signature over a SHA-256 digest. Ed25519 raises."""
        ...

    def sign_message(self, message: bytes) -> bytes:
        """Signature over a (small) message, e.g. a DSSE pre-authentication encoding."""
        ...


def sign_message_via_digest(signer: Signer, message: bytes) -> bytes:
    """`sign_message` for backends that can only sign digests (tokens, PIV)."""
    if not signer.algorithm.prehashed:
        raise UnsupportedAlgorithm("this backend cannot sign Ed25519 messages")
    return signer.sign_digest(hashlib.sha256(message).digest())


class PrivateKeySigner:
    """A signer over an in-memory `cryptography` private key (the file-key backend)."""

    def __init__(self, private_key: PrivateKey) -> None:
        self._key = private_key
        self._algorithm = key_algorithm(private_key)
        self._public_key = private_key.public_key()  # derived once: the key never changes
        self._ecdsa_sha256 = ec.ECDSA(hashes.SHA256())
        self._ec_key = private_key if isinstance(private_key, ec.EllipticCurvePrivateKey) else None

    @property
    def public_key(self) -> PublicKey:
        return self._public_key

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self._algorithm

    def sign_digest(self, sha256_digest: bytes) -> bytes:
        prehashed = Prehashed(hashes.SHA256())
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(sha256_digest, ec.ECDSA(prehashed))
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(sha256_digest, padding.PKCS1v15(), prehashed)
        raise UnsupportedAlgorithm("Ed25519 signs the content itself, not a digest")

    def sign_message(self, message: bytes) -> bytes:
        if self._ec_key is not None:
            # the same ECDSA-SHA256 signature as sign_digest(sha256(message)), hashed by OpenSSL
            # in one call (the log signs one SET per entry: this is most of an append)
            return self._ec_key.sign(message, self._ecdsa_sha256)
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(message)
        return self.sign_digest(hashlib.sha256(message).digest())
