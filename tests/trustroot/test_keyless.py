"""Offline keyless verification against a real public-good bundle (tests/fixtures/keyless)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import pytest

from airseal.trustroot.errors import (
    DigestMismatch,
    IdentityMismatch,
    MalformedBundle,
    VerificationError,
)
from airseal.trustroot.keyless import (
    MAX_BUNDLE_BYTES,
    KeylessResult,
    default_trusted_root_json,
    verify_keyless_bundle,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "keyless"
BUNDLE_PATH = FIXTURES / "new_bundle.txt.sigstore.json"
ARTIFACT_PATH = FIXTURES / "new_bundle.txt"
BUNDLE_NAME = BUNDLE_PATH.name

IDENTITY = "aryadeeptade@gmail.com"
ISSUER = "https://github.com/login/oauth"
ARTIFACT_SHA256 = "a7ddbbe3faad1e9646f07d92311ba950d10c2c4441e58ea9935da8dd701794da"


@pytest.fixture
def bundle_json() -> bytes:
    return BUNDLE_PATH.read_bytes()


@pytest.fixture
def artifact() -> bytes:
    return ARTIFACT_PATH.read_bytes()


@pytest.fixture
def digest(artifact: bytes) -> bytes:
    return hashlib.sha256(artifact).digest()


def _verify(bundle_json: bytes, digest: bytes, **overrides: object) -> KeylessResult:
    kwargs: dict[str, object] = {"identity": IDENTITY, "issuer": ISSUER, "subject": BUNDLE_NAME}
    kwargs.update(overrides)
    return verify_keyless_bundle(bundle_json, digest, **kwargs)  # type: ignore[arg-type]


def _edited_root(edit: str) -> bytes:
    root = json.loads(default_trusted_root_json())
    root[edit] = []
    return json.dumps(root).encode()


def test_fixture_artifact_is_what_the_bundle_signs(bundle_json: bytes, digest: bytes) -> None:
    # Guards the copy of the fixture: exact bytes, trailing newline included.
    stated = json.loads(bundle_json)["messageSignature"]["messageDigest"]["digest"]
    assert base64.b64decode(stated) == digest
    assert digest.hex() == ARTIFACT_SHA256


def test_default_trusted_root_is_public_good_production() -> None:
    root = json.loads(default_trusted_root_json())
    assert root["mediaType"] == "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
    assert {log["baseUrl"] for log in root["tlogs"]} >= {"https://rekor.sigstore.dev"}
    assert any(ca["uri"] == "https://fulcio.sigstore.dev" for ca in root["certificateAuthorities"])


def test_verifies_offline_with_identity_and_issuer(bundle_json: bytes, digest: bytes) -> None:
    result = _verify(bundle_json, digest)

    assert result == KeylessResult(
        identity=IDENTITY,
        issuer=ISSUER,
        sha256=ARTIFACT_SHA256,
        certificate_serial=217689525250135379462949543558325767734677604032,
        certificate_not_before=datetime(2026, 8, 23, 17, 1, 59, tzinfo=UTC),
        certificate_not_after=datetime(2026, 8, 23, 17, 11, 59, tzinfo=UTC),
        log_index=2574120827,
        integrated_time=datetime.fromtimestamp(1787504520, tz=UTC),
    )


def test_explicit_trusted_root_is_used(bundle_json: bytes, digest: bytes) -> None:
    result = _verify(bundle_json, digest, trusted_root_json=default_trusted_root_json())
    assert result.log_index == 2574120827


def test_wrong_identity_is_identity_mismatch(bundle_json: bytes, digest: bytes) -> None:
    with pytest.raises(IdentityMismatch) as caught:
        _verify(bundle_json, digest, identity="someone@example.com")

    error = caught.value
    assert error.subject == BUNDLE_NAME
    assert "'someone@example.com'" in error.detail
    assert IDENTITY in error.detail
    assert str(error).startswith(f"{BUNDLE_NAME}: identity mismatch: ")


def test_wrong_issuer_is_identity_mismatch(bundle_json: bytes, digest: bytes) -> None:
    with pytest.raises(IdentityMismatch) as caught:
        _verify(bundle_json, digest, issuer="https://accounts.google.com")

    assert (
        "expected identity 'aryadeeptade@gmail.com' from issuer 'https://accounts.google.com'"
        in (caught.value.detail)
    )
    assert f"from issuer {ISSUER!r}" in caught.value.detail


def test_identity_must_match_exactly(bundle_json: bytes, digest: bytes) -> None:
    with pytest.raises(IdentityMismatch):
        _verify(bundle_json, digest, identity=IDENTITY.upper())
    with pytest.raises(IdentityMismatch):
        _verify(bundle_json, digest, issuer=ISSUER + "/")


@pytest.mark.parametrize(("identity", "issuer"), [("", ISSUER), (IDENTITY, "")])
def test_empty_policy_is_refused(
    bundle_json: bytes, digest: bytes, identity: str, issuer: str
) -> None:
    with pytest.raises(ValueError, match="both required"):
        _verify(bundle_json, digest, identity=identity, issuer=issuer)


def test_digest_must_be_sha256_sized(bundle_json: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        _verify(bundle_json, hashlib.sha1(b"x").digest())


def test_tampered_artifact_is_digest_mismatch(bundle_json: bytes, artifact: bytes) -> None:
    tampered = bytearray(artifact)
    tampered[0] ^= 0x01
    tampered_digest = hashlib.sha256(tampered).digest()

    with pytest.raises(DigestMismatch) as caught:
        _verify(bundle_json, tampered_digest)

    assert caught.value.subject == BUNDLE_NAME
    assert tampered_digest.hex() in caught.value.detail
    assert ARTIFACT_SHA256 in caught.value.detail


def test_tampered_signature_fails(bundle_json: bytes, digest: bytes) -> None:
    document = json.loads(bundle_json)
    signature = bytearray(base64.b64decode(document["messageSignature"]["signature"]))
    signature[-1] ^= 0x01
    document["messageSignature"]["signature"] = base64.b64encode(signature).decode()

    with pytest.raises(VerificationError) as caught:
        _verify(json.dumps(document).encode(), digest)

    assert type(caught.value) is VerificationError
    assert caught.value.subject == BUNDLE_NAME


def test_truncated_json_is_malformed(bundle_json: bytes, digest: bytes) -> None:
    with pytest.raises(MalformedBundle, match="not JSON") as caught:
        _verify(bundle_json[: len(bundle_json) // 2], digest)
    assert caught.value.subject == BUNDLE_NAME


@pytest.mark.parametrize("junk", [b"\xff\xfe\x00garbage", b"-----BEGIN CERTIFICATE-----\n", b""])
def test_non_json_is_malformed(digest: bytes, junk: bytes) -> None:
    with pytest.raises(MalformedBundle):
        _verify(junk, digest)


@pytest.mark.parametrize("document", [b"[]", b"{}", b'{"mediaType": "text/plain"}'])
def test_json_that_is_not_a_bundle_is_malformed(digest: bytes, document: bytes) -> None:
    with pytest.raises(MalformedBundle) as caught:
        _verify(document, digest)
    assert "\n" not in caught.value.detail


def test_oversized_bundle_is_refused_before_parsing(digest: bytes) -> None:
    with pytest.raises(MalformedBundle, match="larger than"):
        _verify(b" " * (MAX_BUNDLE_BYTES + 1), digest)


def test_bundle_without_certificate_is_malformed(bundle_json: bytes, digest: bytes) -> None:
    document = json.loads(bundle_json)
    del document["verificationMaterial"]["certificate"]
    with pytest.raises(MalformedBundle):
        _verify(json.dumps(document).encode(), digest)


def test_dsse_bundle_is_refused(bundle_json: bytes, digest: bytes) -> None:
    document = json.loads(bundle_json)
    signature = document.pop("messageSignature")["signature"]
    document["dsseEnvelope"] = {
        "payload": base64.b64encode(b"{}").decode(),
        "payloadType": "application/vnd.in-toto+json",
        "signatures": [{"sig": signature, "keyid": ""}],
    }
    with pytest.raises(VerificationError, match="DSSE"):
        _verify(json.dumps(document).encode(), digest)


def test_trusted_root_without_fulcio_ca_fails(bundle_json: bytes, digest: bytes) -> None:
    with pytest.raises(VerificationError, match="Fulcio") as caught:
        _verify(bundle_json, digest, trusted_root_json=_edited_root("certificateAuthorities"))
    assert type(caught.value) is VerificationError
    assert caught.value.subject == BUNDLE_NAME


def test_trusted_root_of_another_instance_fails(bundle_json: bytes, digest: bytes) -> None:
    staging = (
        files("sigstore")
        .joinpath("_store", "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev", "trusted_root.json")
        .read_bytes()
    )
    with pytest.raises(VerificationError, match="chain") as caught:
        _verify(bundle_json, digest, trusted_root_json=staging)
    assert type(caught.value) is VerificationError
    assert "Sigstore instance" in caught.value.hint


@pytest.mark.parametrize("section", ["ctlogs", "tlogs"])
def test_trusted_root_without_log_keys_fails(
    bundle_json: bytes, digest: bytes, section: str
) -> None:
    with pytest.raises(VerificationError, match="trusted root") as caught:
        _verify(bundle_json, digest, trusted_root_json=_edited_root(section))
    assert type(caught.value) is VerificationError


def test_unparseable_trusted_root_fails(bundle_json: bytes, digest: bytes) -> None:
    with pytest.raises(VerificationError, match="unusable trusted root") as caught:
        _verify(bundle_json, digest, trusted_root_json=b"not json")
    assert type(caught.value) is VerificationError


_NO_NETWORK_PRELUDE = """
import socket, sys
ATTEMPTS = []
def _refuse(*args, **kwargs):
    ATTEMPTS.append(args)
    raise OSError("network disabled by the test")
# Creating a socket is allowed (urllib3 probes IPv6 support at import by binding ::1); every way
# of reaching a peer or resolving a name is refused and counted.
for _name in ("connect", "connect_ex", "sendto", "sendmsg"):
    setattr(socket.socket, _name, _refuse)
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
socket.gethostbyname = _refuse
try:
    socket.create_connection(("127.0.0.1", 9))
except OSError:
    pass
else:
    raise SystemExit("the prelude did not disable the network")
with socket.socket() as _probe:
    try:
        _probe.connect(("127.0.0.1", 9))
    except OSError:
        pass
    else:
        raise SystemExit("the prelude did not disable connect()")
ATTEMPTS.clear()
"""

_VERIFY_SCRIPT = """
import hashlib, pathlib
from airseal.trustroot.keyless import verify_keyless_bundle
bundle = pathlib.Path(sys.argv[1]).read_bytes()
digest = hashlib.sha256(pathlib.Path(sys.argv[2]).read_bytes()).digest()
result = verify_keyless_bundle(bundle, digest, identity=sys.argv[3], issuer=sys.argv[4])
print("verified", result.identity, result.log_index, "attempts", len(ATTEMPTS))
"""


def test_verification_makes_no_network_connection() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            _NO_NETWORK_PRELUDE + _VERIFY_SCRIPT,
            str(BUNDLE_PATH),
            str(ARTIFACT_PATH),
            IDENTITY,
            ISSUER,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == f"verified {IDENTITY} 2574120827 attempts 0"
