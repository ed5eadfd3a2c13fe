"""cosign's encrypted key format and the plain PEM keys `cosign import-key-pair` accepts."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

from airseal.trustroot.cosign_keys import (
    COSIGN_LABEL,
    SIGSTORE_LABEL,
    decrypt_cosign_key,
    encrypt_cosign_key,
    load_private_key,
    pem_label,
)
from airseal.trustroot.errors import KeyFormatError, UnsupportedAlgorithm, WrongPassword
from airseal.trustroot.keys import load_public_key, spki_pem, verify_digest
from airseal.trustroot.signer import PrivateKeySigner

FIXTURES = Path(__file__).parents[1] / "fixtures" / "cosign"
COSIGN_KEYS = sorted(FIXTURES.glob("*.key"))


def test_the_three_cosign_fixtures_are_present():
    assert [p.name for p in COSIGN_KEYS] == [
        "cosign_pemcosigneckey.key",
        "cosign_pemcosignkey.key",
        "cosign_pemsigstorekey.key",
    ]


@pytest.mark.parametrize("path", COSIGN_KEYS, ids=lambda p: p.stem)
def test_real_cosign_keys_decrypt_sign_and_verify_against_their_pub(path):
    key = decrypt_cosign_key(path.read_bytes(), b"hello", subject=path.name)
    published = load_public_key(path.with_suffix(".pub").read_bytes())
    assert spki_pem(key.public_key()) == spki_pem(published)
    digest = hashlib.sha256(b"payload").digest()
    verify_digest(published, PrivateKeySigner(key).sign_digest(digest), digest)


@pytest.mark.parametrize("path", COSIGN_KEYS, ids=lambda p: p.stem)
def test_wrong_password_is_named_and_not_echoed(path):
    with pytest.raises(WrongPassword) as caught:
        decrypt_cosign_key(path.read_bytes(), b"hunter2-secret", subject=path.name)
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(caught.value)
    assert caught.value.subject == path.name


@pytest.mark.parametrize("n", [32768, 65536, 131072])
@pytest.mark.parametrize("label", [SIGSTORE_LABEL, COSIGN_LABEL])
def test_encrypt_decrypt_round_trip(n, label):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = encrypt_cosign_key(key, b"pw", n=n, label=label)
    assert pem_label(pem) == label
    body = json.loads(base64.b64decode("".join(pem.decode().splitlines()[1:-1])))
    assert body["kdf"]["params"] == {"N": n, "r": 8, "p": 1}
    assert body["cipher"]["name"] == "nacl/secretbox"
    assert spki_pem(decrypt_cosign_key(pem, b"pw").public_key()) == spki_pem(key.public_key())


def test_generated_keys_default_to_current_cosign_format():
    pem = encrypt_cosign_key(ed25519.Ed25519PrivateKey.generate(), b"pw")
    body = json.loads(base64.b64decode("".join(pem.decode().splitlines()[1:-1])))
    assert pem_label(pem) == SIGSTORE_LABEL
    assert body["kdf"]["params"]["N"] == 65536


def _with_params(pem: bytes, **params: int) -> bytes:
    lines = pem.decode().splitlines()
    body = json.loads(base64.b64decode("".join(lines[1:-1])))
    body["kdf"]["params"].update(params)
    encoded = base64.b64encode(json.dumps(body).encode()).decode()
    return f"{lines[0]}\n{encoded}\n{lines[-1]}\n".encode()


@pytest.mark.parametrize("params", [{"N": 2**30}, {"N": 1024}, {"r": 16}, {"p": 4}])
def test_hostile_scrypt_parameters_are_refused_before_any_work(params):
    pem = _with_params(encrypt_cosign_key(ec.generate_private_key(ec.SECP256R1()), b"pw"), **params)
    with pytest.raises(KeyFormatError, match="not allowed"):
        decrypt_cosign_key(pem, b"pw")


def test_garbage_cosign_body():
    pem = (
        b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nbm90IGpzb24=\n"
        b"-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    )
    with pytest.raises(KeyFormatError, match="expected JSON"):
        decrypt_cosign_key(pem, b"pw")


def _plain(key, fmt, encoding=serialization.Encoding.PEM, password=None):
    algorithm = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(encoding, fmt, algorithm)


PKCS1 = serialization.PrivateFormat.TraditionalOpenSSL  # RSA PRIVATE KEY / EC PRIVATE KEY (SEC1)
PKCS8 = serialization.PrivateFormat.PKCS8


@pytest.mark.parametrize(
    ("make", "fmt", "label"),
    [
        (
            lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
            PKCS1,
            "RSA PRIVATE KEY",
        ),
        (
            lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
            PKCS8,
            "PRIVATE KEY",
        ),
        (lambda: ec.generate_private_key(ec.SECP256R1()), PKCS1, "EC PRIVATE KEY"),
        (lambda: ec.generate_private_key(ec.SECP256R1()), PKCS8, "PRIVATE KEY"),
        (lambda: ec.generate_private_key(ec.SECP384R1()), PKCS1, "EC PRIVATE KEY"),
        (lambda: ec.generate_private_key(ec.SECP384R1()), PKCS8, "PRIVATE KEY"),
        (ed25519.Ed25519PrivateKey.generate, PKCS8, "PRIVATE KEY"),
    ],
    ids=[
        "rsa-pkcs1",
        "rsa-pkcs8",
        "p256-sec1",
        "p256-pkcs8",
        "p384-sec1",
        "p384-pkcs8",
        "ed25519-pkcs8",
    ],
)
def test_plain_pem_imports(make, fmt, label):
    key = make()
    pem = _plain(key, fmt)
    assert pem_label(pem) == label
    loaded = load_private_key(pem, None)
    assert spki_pem(loaded.public_key()) == spki_pem(key.public_key())


def test_password_protected_pkcs8_needs_the_password():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = _plain(key, PKCS8, password=b"secret-pw")
    with pytest.raises(WrongPassword):
        load_private_key(pem, None)
    with pytest.raises(WrongPassword) as caught:
        load_private_key(pem, b"wrong")
    assert "secret-pw" not in str(caught.value)
    assert spki_pem(load_private_key(pem, b"secret-pw").public_key()) == spki_pem(key.public_key())


def test_unsupported_private_keys_are_refused():
    with pytest.raises(KeyFormatError, match="DSAPrivateKey"):
        load_private_key(_plain(dsa.generate_private_key(2048), PKCS8), None)
    with pytest.raises(UnsupportedAlgorithm, match="secp521r1"):
        load_private_key(_plain(ec.generate_private_key(ec.SECP521R1()), PKCS8), None)
    with pytest.raises(KeyFormatError, match="no PEM block"):
        load_private_key(b"just text", None)
    with pytest.raises(KeyFormatError, match="could not parse"):
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", None)
