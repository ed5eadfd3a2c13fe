"""cosign's encrypted private key format, and the plain PEM keys ``cosign import-key-pair`` takes.

Format (sigstore/cosign ``pkg/cosign/keys.go``): PEM ``ENCRYPTED SIGSTORE PRIVATE KEY`` (older:
``ENCRYPTED COSIGN PRIVATE KEY``) whose body is JSON
``{"kdf": {"name": "scrypt", "params": {"N", "r", "p"}, "salt"}, "cipher": {"name":
"nacl/secretbox", "nonce"}, "ciphertext"}``; key = scrypt(password, salt, N, r=8, p=1, 32 bytes);
plaintext = PKCS#8 DER (cosign accepts SEC1 from very old versions; so do we).

The scrypt cost is bounded to the values cosign has ever written, so a hostile key file cannot ask
for gigabytes of memory. Passwords arrive as bytes and never enter a message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from typing import Any

import nacl.exceptions
import nacl.secret
from cryptography.exceptions import UnsupportedAlgorithm as _CryptoUnsupported
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from airseal.trustroot.errors import KeyFormatError, WrongPassword
from airseal.trustroot.keys import MAX_KEY_PEM_BYTES, PrivateKey, key_algorithm
from airseal.trustroot.untrusted_json import check_json_depth

SIGSTORE_LABEL = "ENCRYPTED SIGSTORE PRIVATE KEY"
COSIGN_LABEL = "ENCRYPTED COSIGN PRIVATE KEY"
ALLOWED_SCRYPT_N = frozenset({32768, 65536, 131072})
DEFAULT_SCRYPT_N = 65536
_SCRYPT_R = 8
_SCRYPT_P = 1


def _pem_body(pem: bytes, label: str) -> bytes:
    text = pem.decode("ascii", errors="strict")
    begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
    start = text.index(begin) + len(begin)
    stop = text.index(end, start)
    return base64.b64decode("".join(text[start:stop].split()), validate=True)


def pem_label(pem: bytes) -> str | None:
    """The label of the first PEM block, or None if there is none."""
    marker = b"-----BEGIN "
    at = pem.find(marker)
    if at < 0:
        return None
    end = pem.find(b"-----", at + len(marker))
    return pem[at + len(marker) : end].decode("ascii", errors="replace") if end > 0 else None


def _scrypt(password: bytes, salt: bytes, n: int) -> bytes:
    return hashlib.scrypt(
        password,
        salt=salt,
        n=n,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        dklen=32,
        maxmem=256 * _SCRYPT_R * n + 1024 * 1024,
    )


def decrypt_cosign_key(pem: bytes, password: bytes, *, subject: str | None = None) -> PrivateKey:
    """Decrypt a cosign encrypted key (either label, N in 32768/65536/131072)."""
    label = pem_label(pem)
    if label not in (SIGSTORE_LABEL, COSIGN_LABEL):
        raise KeyFormatError(f"PEM label {label!r} is not a cosign encrypted key", subject=subject)
    try:
        body = check_json_depth(_pem_body(pem, label), subject=subject, error=KeyFormatError)
        doc: Any = json.loads(body)
        kdf, cipher = doc["kdf"], doc["cipher"]
        params = kdf["params"]
        n, r, p = int(params["N"]), int(params["r"]), int(params["p"])
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(cipher["nonce"], validate=True)
        ciphertext = base64.b64decode(doc["ciphertext"], validate=True)
        kdf_name, cipher_name = kdf["name"], cipher["name"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise KeyFormatError("cosign key body is not the expected JSON", subject=subject) from None
    if kdf_name != "scrypt" or cipher_name != "nacl/secretbox":
        raise KeyFormatError(f"unsupported kdf/cipher {kdf_name}/{cipher_name}", subject=subject)
    if n not in ALLOWED_SCRYPT_N or r != _SCRYPT_R or p != _SCRYPT_P:
        raise KeyFormatError(
            f"scrypt parameters N={n} r={r} p={p} are not allowed", subject=subject
        )
    if len(nonce) != nacl.secret.SecretBox.NONCE_SIZE:
        raise KeyFormatError("secretbox nonce has the wrong length", subject=subject)
    box = nacl.secret.SecretBox(_scrypt(password, salt, n))
    try:
        der = box.decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError:
        raise WrongPassword("could not decrypt the key", subject=subject) from None
    return _load_der_private_key(der, subject)


def _load_der_private_key(der: bytes, subject: str | None) -> PrivateKey:
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, _CryptoUnsupported):
        raise KeyFormatError("decrypted key is not PKCS#8 or SEC1 DER", subject=subject) from None
    return _supported(key, subject)


def _supported(key: object, subject: str | None) -> PrivateKey:
    if not isinstance(
        key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)
    ):
        raise KeyFormatError(f"{type(key).__name__} keys are not supported", subject=subject)
    key_algorithm(key)  # raises UnsupportedAlgorithm for P-521, short RSA, ...
    return key


def encrypt_cosign_key(
    key: PrivateKey, password: bytes, *, n: int = DEFAULT_SCRYPT_N, label: str = SIGSTORE_LABEL
) -> bytes:
    """Encrypt as current cosign does: PKCS#8 DER in a secretbox, scrypt N=65536."""
    if n not in ALLOWED_SCRYPT_N:
        raise KeyFormatError(f"scrypt N={n} is not allowed")
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    salt = os.urandom(32)
    nonce = os.urandom(nacl.secret.SecretBox.NONCE_SIZE)
    ciphertext = nacl.secret.SecretBox(_scrypt(password, salt, n)).encrypt(der, nonce).ciphertext
    doc = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": n, "r": _SCRYPT_R, "p": _SCRYPT_P},
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    body = base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n").encode()


def load_private_key(
    pem: bytes, password: bytes | None, *, subject: str | None = None
) -> PrivateKey:
    """Any key ``cosign import-key-pair`` accepts, or a cosign encrypted key.

    Plain PEM: PKCS#1 (``RSA PRIVATE KEY``), SEC1 (``EC PRIVATE KEY``), PKCS#8 (``PRIVATE KEY``),
    and password-protected PKCS#8 (``ENCRYPTED PRIVATE KEY``).
    """
    if len(pem) > MAX_KEY_PEM_BYTES:
        raise KeyFormatError("key file is too large", subject=subject)
    label = pem_label(pem)
    if label in (SIGSTORE_LABEL, COSIGN_LABEL):
        if password is None:
            raise WrongPassword("this key is encrypted and needs a password", subject=subject)
        return decrypt_cosign_key(pem, password, subject=subject)
    if label is None:
        raise KeyFormatError("no PEM block found", subject=subject)
    needs_password = label == "ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in pem
    try:
        key = serialization.load_pem_private_key(pem, password=password if needs_password else None)
    except TypeError:
        raise WrongPassword("this key is encrypted and needs a password", subject=subject) from None
    except ValueError:
        if needs_password:
            raise WrongPassword("could not decrypt the key", subject=subject) from None
        raise KeyFormatError(f"could not parse the {label} block", subject=subject) from None
    except _CryptoUnsupported:
        raise KeyFormatError(f"unsupported key in the {label} block", subject=subject) from None
    return _supported(key, subject)
