"""Public keys: loading, identifying and checking signatures with them.

A key is identified two ways, both over the DER SubjectPublicKeyInfo:
- the *hint*: base64 SHA-256, what cosign and Sigstore bundles put in ``publicKey.hint``;
- the *fingerprint*: hex SHA-256, what operators compare on screen.

Blob signatures are over SHA-256 of the content for ECDSA and RSA (PKCS#1 v1.5), as
``cosign sign-blob --key`` makes them; Ed25519 is PureEdDSA over the content itself.
"""

from __future__ import annotations

import base64
import enum
import hashlib

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm as _CryptoUnsupported
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from airseal.trustroot.errors import InvalidSignature, KeyFormatError, UnsupportedAlgorithm

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

MIN_RSA_BITS = 2048
MAX_KEY_PEM_BYTES = 64 * 1024
_PREHASH = Prehashed(hashes.SHA256())


class KeyAlgorithm(enum.Enum):
    """Supported key types, named as Sigstore's algorithm registry names them."""

    ECDSA_P256 = "PKIX_ECDSA_P256_SHA_256"
    ECDSA_P384 = "PKIX_ECDSA_P384_SHA_384"
    RSA_2048 = "PKIX_RSA_PKCS1V15_2048_SHA256"
    RSA_3072 = "PKIX_RSA_PKCS1V15_3072_SHA256"
    RSA_4096 = "PKIX_RSA_PKCS1V15_4096_SHA256"
    ED25519 = "PKIX_ED25519"

    @property
    def prehashed(self) -> bool:
        """True when a signature covers the SHA-256 digest (so content can be streamed)."""
        return self is not KeyAlgorithm.ED25519

    @property
    def label(self) -> str:
        return {
            KeyAlgorithm.ECDSA_P256: "ecdsa-p256",
            KeyAlgorithm.ECDSA_P384: "ecdsa-p384",
            KeyAlgorithm.RSA_2048: "rsa-2048",
            KeyAlgorithm.RSA_3072: "rsa-3072",
            KeyAlgorithm.RSA_4096: "rsa-4096",
            KeyAlgorithm.ED25519: "ed25519",
        }[self]


def key_algorithm(key: PublicKey | PrivateKey) -> KeyAlgorithm:
    """The algorithm of a key, or :class:`UnsupportedAlgorithm` (e.g. P-521, RSA-1024, DSA)."""
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        if isinstance(key.curve, ec.SECP256R1):
            return KeyAlgorithm.ECDSA_P256
        if isinstance(key.curve, ec.SECP384R1):
            return KeyAlgorithm.ECDSA_P384
        raise UnsupportedAlgorithm(f"ECDSA curve {key.curve.name} is not supported")
    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        if key.key_size < MIN_RSA_BITS:
            raise UnsupportedAlgorithm(f"RSA-{key.key_size} is too short (minimum {MIN_RSA_BITS})")
        return {3072: KeyAlgorithm.RSA_3072, 4096: KeyAlgorithm.RSA_4096}.get(
            key.key_size, KeyAlgorithm.RSA_2048
        )
    if isinstance(key, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)):
        return KeyAlgorithm.ED25519
    raise UnsupportedAlgorithm(f"{type(key).__name__} keys are not supported")


def spki_der(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def spki_pem(key: PublicKey) -> bytes:
    """PEM SubjectPublicKeyInfo, byte-for-byte the shape of cosign's ``cosign.pub``."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_hint(key: PublicKey) -> str:
    """Base64 SHA-256 of the DER SPKI: the ``publicKey.hint`` cosign writes into bundles."""
    return base64.b64encode(hashlib.sha256(spki_der(key)).digest()).decode("ascii")


def fingerprint(key: PublicKey) -> str:
    """Hex SHA-256 of the DER SPKI, for people to compare."""
    return hashlib.sha256(spki_der(key)).hexdigest()


def load_public_key(pem: bytes, *, subject: str | None = None) -> PublicKey:
    """Parse a PEM public key (SPKI) and check it is of a supported algorithm."""
    if len(pem) > MAX_KEY_PEM_BYTES:
        raise KeyFormatError("public key file is too large", subject=subject)
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, _CryptoUnsupported):
        raise KeyFormatError(
            "not a PEM public key: no readable -----BEGIN PUBLIC KEY----- block",
            subject=subject
        ) from None
    if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey, ed25519.Ed25519PublicKey)):
        raise UnsupportedAlgorithm(f"{type(key).__name__} keys are not supported", subject=subject)
    key_algorithm(key)
    return key


def verify_digest(
    key: PublicKey, signature: bytes, sha256_digest: bytes, *, subject: str | None = None
) -> None:
    """Check a signature over a SHA-256 digest (ECDSA or RSA PKCS#1 v1.5). Raises on failure."""
    algorithm = key_algorithm(key)
    if not algorithm.prehashed:
        raise UnsupportedAlgorithm(
            "Ed25519 signs the content itself, not a digest", subject=subject
        )
    if len(sha256_digest) != 32:
        raise InvalidSignature("digest is not a SHA-256 digest", subject=subject)
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, sha256_digest, ec.ECDSA(_PREHASH))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, sha256_digest, padding.PKCS1v15(), _PREHASH)
    except _CryptoInvalidSignature:
        raise InvalidSignature(
            f"{algorithm.label} signature does not verify with key {fingerprint(key)[:16]}",
            subject=subject,
        ) from None


def verify_message(
    key: PublicKey, signature: bytes, message: bytes | memoryview, *, subject: str | None = None
) -> None:
    """Check a signature over a whole message (any algorithm; SHA-256 for ECDSA/RSA)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        try:
            key.verify(signature, message)
        except _CryptoInvalidSignature:
            raise InvalidSignature(
                f"ed25519 signature does not verify with key {fingerprint(key)[:16]}",
                subject=subject,
            ) from None
        return
    verify_digest(key, signature, hashlib.sha256(message).digest(), subject=subject)
