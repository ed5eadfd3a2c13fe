"""`airseal key ...`, `sign-blob` and `verify-blob` end to end, as a user runs them."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

COSIGN = Path(__file__).parents[1] / "fixtures" / "cosign"
ALGORITHMS = ["ecdsa-p256", "ecdsa-p384", "rsa-3072", "ed25519"]


@pytest.fixture
def blob(tmp_path) -> Path:
    path = tmp_path / "installer.bin"
    path.write_bytes(os.urandom(300_000))
    return path


def _key(airseal, name="release", algorithm="ecdsa-p256"):
    result = airseal("key", "generate", name, "--algorithm", algorithm)
    assert result.code == 0, result.stderr
    return name


def test_help_is_available_everywhere(airseal):
    for command in (
        [],
        ["init"],
        ["key"],
        ["key", "generate"],
        ["key", "import"],
        ["key", "list"],
        ["key", "export-public"],
        ["sign-blob"],
        ["verify-blob"],
        ["audit", "verify"],
    ):
        result = airseal(*command, "--help")
        assert result.code == 0 and "Usage:" in result.stdout, command


def test_no_secret_is_ever_an_argument(airseal):
    for command in (["key", "generate"], ["key", "import"], ["sign-blob"]):
        text = airseal(*command, "--help").stdout.lower()
        assert "--password" not in text and "--pin" not in text


def test_commands_before_init_say_to_run_init(airseal):
    result = airseal("key", "list")
    assert result.code == 3
    assert "airseal init" in result.stderr


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_sign_and_verify_round_trip_both_outputs(
    airseal, appliance_home, blob, tmp_path, algorithm
):
    _key(airseal, "k", algorithm)
    sig, bundle = tmp_path / "b.sig", tmp_path / "b.sigstore.json"
    signed = airseal(
        "sign-blob",
        str(blob),
        "--key",
        "k",
        "--output-signature",
        str(sig),
        "--bundle",
        str(bundle),
    )
    assert signed.code == 0, signed.stderr
    assert not sig.read_bytes().endswith(b"\n")
    base64.b64decode(sig.read_bytes(), validate=True)
    pub = tmp_path / "k.pub"
    pub.write_text(airseal("key", "export-public", "k").stdout)
    for key_arg in ("k", str(pub)):
        for flag, path in (("--signature", sig), ("--bundle", bundle)):
            result = airseal("verify-blob", str(blob), "--key", key_arg, flag, str(path))
            assert (result.code, result.stdout.strip()) == (0, "Verified OK"), result.stderr


def test_tampered_file_wrong_key_and_tampered_signature_exit_1_and_say_why(
    airseal, appliance_home, blob, tmp_path
):
    _key(airseal, "k")
    _key(airseal, "other")
    bundle = tmp_path / "b.sigstore.json"
    sig = tmp_path / "b.sig"
    assert (
        airseal(
            "sign-blob",
            str(blob),
            "--key",
            "k",
            "--bundle",
            str(bundle),
            "--output-signature",
            str(sig),
        ).code
        == 0
    )
    changed = tmp_path / "changed.bin"
    changed.write_bytes(blob.read_bytes()[:-1] + b"\0")
    result = airseal("verify-blob", str(changed), "--key", "k", "--bundle", str(bundle))
    assert result.code == 1 and "digest mismatch" in result.stderr and str(bundle) in result.stderr
    result = airseal("verify-blob", str(blob), "--key", "other", "--bundle", str(bundle))
    assert result.code == 1 and "wrong key" in result.stderr
    document = json.loads(bundle.read_text())
    raw = bytearray(base64.b64decode(document["messageSignature"]["signature"]))
    raw[10] ^= 0xFF
    document["messageSignature"]["signature"] = base64.b64encode(bytes(raw)).decode()
    bundle.write_text(json.dumps(document))
    result = airseal("verify-blob", str(blob), "--key", "k", "--bundle", str(bundle))
    assert result.code == 1 and "invalid signature" in result.stderr
    result = airseal("verify-blob", str(changed), "--key", "k", "--signature", str(sig))
    assert result.code == 1 and "invalid signature" in result.stderr and "hint:" in result.stderr
    bundle.write_text(bundle.read_text()[:40])
    result = airseal("verify-blob", str(blob), "--key", "k", "--bundle", str(bundle))
    assert result.code == 1 and "malformed bundle" in result.stderr


def test_verify_json_output(airseal, appliance_home, blob, tmp_path):
    _key(airseal, "k")
    bundle = tmp_path / "b.json"
    assert airseal("sign-blob", str(blob), "--key", "k", "--bundle", str(bundle)).code == 0
    result = airseal("verify-blob", str(blob), "--key", "k", "--bundle", str(bundle), "--json")
    data = json.loads(result.stdout)
    assert data["verified"] is True and data["algorithm"] == "ecdsa-p256"
    import hashlib

    assert data["sha256"] == hashlib.sha256(blob.read_bytes()).hexdigest()


def test_key_file_is_encrypted_private_and_cosign_shaped(airseal, appliance_home):
    _key(airseal, "k")
    path = appliance_home / "keys" / "k.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
    listed = json.loads(airseal("key", "list", "--json").stdout)["items"]
    assert [(k["name"], k["backend"], k["algorithm"]) for k in listed] == [
        ("k", "file", "ecdsa-p256")
    ]


def test_the_password_never_reaches_output_database_audit_or_key_file(
    airseal, appliance_home, blob, tmp_path
):
    secret = "Zebra-Unique-Passphrase-71"
    outputs = [airseal("key", "generate", "k", password=secret)]
    outputs.append(airseal("sign-blob", str(blob), "--key", "k", password=secret))
    outputs.append(airseal("sign-blob", str(blob), "--key", "k", password="wrong-" + secret))
    assert outputs[2].code == 3 and "wrong password" in outputs[2].stderr
    outputs.append(airseal("audit", "list", "--json"))
    for result in outputs:
        assert secret not in result.stdout and secret not in result.stderr
    for path in appliance_home.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_empty_password_is_refused(airseal, appliance_home):
    result = airseal("key", "generate", "k", password="")
    assert result.code == 3 and "unprotected" in result.stderr


def test_no_terminal_and_no_password_is_a_clear_error(airseal, appliance_home):
    result = airseal("key", "generate", "k", password=None, stdin="")
    assert result.code == 3 and "COSIGN_PASSWORD" in result.stderr


def test_duplicate_key_names_are_refused(airseal, appliance_home):
    _key(airseal, "k")
    result = airseal("key", "generate", "k")
    assert result.code == 3 and "exists" in result.stderr


@pytest.mark.parametrize("name", sorted(p.stem for p in COSIGN.glob("*.key")))
def test_real_cosign_keys_import_sign_and_verify_against_their_pub(
    airseal, appliance_home, blob, tmp_path, name
):
    imported = airseal("key", "import", "ck", str(COSIGN / f"{name}.key"), password="hello")
    assert imported.code == 0, imported.stderr
    stored = (appliance_home / "keys" / "ck.key").read_bytes()
    assert stored.startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
    sig, bundle = tmp_path / "s.sig", tmp_path / "s.json"
    assert (
        airseal(
            "sign-blob",
            str(blob),
            "--key",
            "ck",
            "--output-signature",
            str(sig),
            "--bundle",
            str(bundle),
            password="hello",
        ).code
        == 0
    )
    pub = COSIGN / f"{name}.pub"
    for flag, path in (("--signature", sig), ("--bundle", bundle)):
        result = airseal("verify-blob", str(blob), "--key", str(pub), flag, str(path))
        assert result.code == 0, result.stderr


def _pem(key, fmt):
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


@pytest.mark.parametrize(
    ("make", "fmt"),
    [
        (
            lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
            serialization.PrivateFormat.TraditionalOpenSSL,
        ),
        (
            lambda: ec.generate_private_key(ec.SECP384R1()),
            serialization.PrivateFormat.TraditionalOpenSSL,
        ),
        (ed25519.Ed25519PrivateKey.generate, serialization.PrivateFormat.PKCS8),
    ],
    ids=["rsa-pkcs1", "p384-sec1", "ed25519-pkcs8"],
)
def test_plain_pem_import_is_reencrypted(airseal, appliance_home, blob, tmp_path, make, fmt):
    source = tmp_path / "plain.pem"
    source.write_bytes(_pem(make(), fmt))
    assert airseal("key", "import", "p", str(source)).code == 0
    assert b"ENCRYPTED SIGSTORE PRIVATE KEY" in (appliance_home / "keys" / "p.key").read_bytes()
    sig = tmp_path / "p.sig"
    assert airseal("sign-blob", str(blob), "--key", "p", "--output-signature", str(sig)).code == 0
    assert airseal("verify-blob", str(blob), "--key", "p", "--signature", str(sig)).code == 0


def test_every_operation_is_audited_and_the_chain_verifies(airseal, appliance_home, blob):
    _key(airseal, "k")
    assert airseal("sign-blob", str(blob), "--key", "k").code == 0
    entries = json.loads(airseal("audit", "list", "--json").stdout)["items"]
    assert [e["action"] for e in reversed(entries)] == ["init", "key.generate", "sign-blob"]
    assert airseal("audit", "verify").code == 0


def _offline(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run in a new network namespace that has only a (down) loopback: no route anywhere."""
    assert shutil.which("unshare"), "util-linux unshare is required (Debian: util-linux)"
    return subprocess.run(
        ["unshare", "--net", "--", *argv], capture_output=True, text=True, check=False, timeout=120
    )


def test_verify_blob_works_with_networking_blocked(airseal, appliance_home, blob, tmp_path):
    _key(airseal, "k")
    bundle, pub = tmp_path / "b.json", tmp_path / "k.pub"
    assert airseal("sign-blob", str(blob), "--key", "k", "--bundle", str(bundle)).code == 0
    pub.write_text(airseal("key", "export-public", "k").stdout)
    probe = _offline(
        sys.executable,
        "-c",
        "import socket; socket.create_connection(('192.0.2.1', 443), timeout=3)",
    )
    assert probe.returncode != 0 and "unreachable" in probe.stderr.lower()
    result = _offline(
        sys.executable,
        "-m",
        "airseal.appliance.cli",
        "verify-blob",
        str(blob),
        "--key",
        str(pub),
        "--bundle",
        str(bundle),
    )
    assert (result.returncode, result.stdout.strip()) == (0, "Verified OK"), result.stderr
    keyless = Path(__file__).parents[1] / "fixtures" / "keyless"
    result = _offline(
        sys.executable,
        "-m",
        "airseal.appliance.cli",
        "verify-blob",
        str(keyless / "new_bundle.txt"),
        "--bundle",
        str(keyless / "new_bundle.txt.sigstore.json"),
        "--certificate-identity",
        "aryadeeptade@gmail.com",
        "--certificate-oidc-issuer",
        "https://github.com/login/oauth",
    )
    assert (result.returncode, result.stdout.strip()) == (0, "Verified OK"), result.stderr


def test_keyless_wrong_identity_exit_1(airseal):
    keyless = Path(__file__).parents[1] / "fixtures" / "keyless"
    result = airseal(
        "verify-blob",
        str(keyless / "new_bundle.txt"),
        "--bundle",
        str(keyless / "new_bundle.txt.sigstore.json"),
        "--certificate-identity",
        "someone@example.com",
        "--certificate-oidc-issuer",
        "https://github.com/login/oauth",
    )
    assert result.code == 1 and "identity mismatch" in result.stderr


def test_keyless_options_must_come_together(airseal, tmp_path):
    target = tmp_path / "f"
    target.write_text("x")
    result = airseal(
        "verify-blob", str(target), "--bundle", str(target), "--certificate-identity", "a@b"
    )
    assert result.code == 2 and "--certificate-oidc-issuer" in result.stderr
