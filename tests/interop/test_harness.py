"""Tests of the sigstore-js harness itself, independent of Airseal's code.

Bundles here are built by hand with ``cryptography`` only, so that when an Airseal test later says
"sigstore-js accepts our bundle", we already know the harness accepts good bundles, refuses bad ones
for the right reason, and we know where @sigstore/verify 3.1.1 differs from what one might expect
(each such place is asserted as it actually behaves, with the reason in a comment).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from .sigstore_js import SigstoreJsResult, ensure_installed

MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO = "application/vnd.in-toto+json"
ARTIFACT = b"airseal interop harness artifact\n" * 64

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
Verify = Callable[..., SigstoreJsResult]
Json = dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class Signer:
    """A private key and how to sign with it; ``hash`` is ignored for Ed25519 (pure EdDSA)."""

    name: str
    key: PrivateKey

    def sign(self, data: bytes, hash: hashes.HashAlgorithm | None = None) -> bytes:
        """Sign ``data`` the way cosign does for this key type (SHA-256 unless told otherwise)."""
        h = hash or hashes.SHA256()
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return self.key.sign(data, ec.ECDSA(h))
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(data, padding.PKCS1v15(), h)
        return self.key.sign(data)

    @property
    def spki_der(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def hint(self) -> str:
        """cosign's key hint: base64 SHA-256 of the DER SPKI."""
        return _b64(hashlib.sha256(self.spki_der).digest())

    def write_pem(self, directory: Path) -> Path:
        path = directory / f"{self.name}.pub"
        path.write_bytes(
            self.key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return path


def _new_signer(name: str) -> Signer:
    keys: dict[str, Callable[[], PrivateKey]] = {
        "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
        "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
        "rsa2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ed25519": ed25519.Ed25519PrivateKey.generate,
    }
    return Signer(name, keys[name]())


KINDS = ("p256", "p384", "rsa2048", "ed25519")
# Ed25519 message signatures are refused by @sigstore/verify whatever we do (see
# test_ed25519_message_signature_is_refused), so tampering tests for them would prove nothing.
MESSAGE_KINDS = ("p256", "p384", "rsa2048")


@pytest.fixture(scope="module")
def signers() -> dict[str, Signer]:
    """One key per type, plus a second P-256 key as "someone else"."""
    made = {name: _new_signer(name) for name in KINDS}
    made["other"] = Signer("other", ec.generate_private_key(ec.SECP256R1()))
    return made


def message_bundle(
    signer: Signer,
    artifact: bytes,
    *,
    digest: hashes.HashAlgorithm | None = None,
    hint: str | None = None,
    with_tlog_key: bool = True,
) -> Json:
    """A v0.3 message-signature bundle, as cosign sign-blob --key --bundle writes (minus tlog)."""
    h = digest or hashes.SHA256()
    algorithm = {"sha256": "SHA2_256", "sha384": "SHA2_384", "sha512": "SHA2_512"}[h.name]
    material: Json = {"publicKey": {"hint": signer.hint if hint is None else hint}}
    if with_tlog_key:
        material["tlogEntries"] = []
    return {
        "mediaType": MEDIA_TYPE,
        "verificationMaterial": material,
        "messageSignature": {
            "messageDigest": {
                "algorithm": algorithm,
                "digest": _b64(hashlib.new(h.name, artifact).digest()),
            },
            "signature": _b64(signer.sign(artifact, h)),
        },
    }


def statement(artifact: bytes) -> bytes:
    """An in-toto v1 Statement naming ``artifact`` as its only subject."""
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [
                {"name": "artifact.bin", "digest": {"sha256": hashlib.sha256(artifact).hexdigest()}}
            ],
            "predicateType": "https://example.invalid/airseal-harness/v1",
            "predicate": {"note": "harness"},
        },
        separators=(",", ":"),
    ).encode()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def dsse_bundle(
    signer: Signer,
    payload: bytes,
    *,
    hash: hashes.HashAlgorithm | None = None,
    keyid: str = "",
    extra_signers: tuple[Signer, ...] = (),
) -> Json:
    """A v0.3 DSSE bundle over ``payload`` (an in-toto statement)."""
    sigs = [{"sig": _b64(signer.sign(pae(IN_TOTO, payload), hash)), "keyid": keyid}]
    sigs += [{"sig": _b64(s.sign(pae(IN_TOTO, payload))), "keyid": ""} for s in extra_signers]
    return {
        "mediaType": MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": signer.hint}, "tlogEntries": []},
        "dsseEnvelope": {"payload": _b64(payload), "payloadType": IN_TOTO, "signatures": sigs},
    }


def write(directory: Path, name: str, bundle: Json) -> Path:
    path = directory / name
    path.write_text(json.dumps(bundle, indent=2))
    return path


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "artifact.bin"
    path.write_bytes(ARTIFACT)
    return path


def _flip_last_byte(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 0x01
    return _b64(bytes(raw))


# --- message signatures -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", MESSAGE_KINDS)
def test_message_signature_accepted(
    kind: str, signers: dict[str, Signer], artifact: Path, tmp_path: Path, sigstore_js: Verify
) -> None:
    """Good cosign-style bundles (signature over SHA-256 of the blob) verify, P-384 included.

    @sigstore/verify hashes with messageDigest.algorithm, not with the key's curve, so a P-384 key
    signing SHA-256 (what cosign sign-blob writes, PKIX_ECDSA_P384_SHA_256) is accepted.
    """
    s = signers[kind]
    bundle = write(tmp_path, "b.json", message_bundle(s, ARTIFACT))
    assert sigstore_js(bundle, s.write_pem(tmp_path), artifact) == SigstoreJsResult(ok=True)


def test_p384_message_signature_over_sha384_accepted(
    signers: dict[str, Signer], artifact: Path, tmp_path: Path, sigstore_js: Verify
) -> None:
    """P-384 with a SHA2_384 digest and a SHA-384 signature verifies too (hash from bundle)."""
    s = signers["p384"]
    bundle = write(tmp_path, "b.json", message_bundle(s, ARTIFACT, digest=hashes.SHA384()))
    assert sigstore_js(bundle, s.write_pem(tmp_path), artifact).ok


def test_p384_message_signature_hash_mismatch_refused(
    signers: dict[str, Signer], artifact: Path, tmp_path: Path, sigstore_js: Verify
) -> None:
    """A SHA-384 signature under a SHA2_256 messageDigest: the library verifies with SHA-256."""
    s = signers["p384"]
    b = message_bundle(s, ARTIFACT)
    b["messageSignature"]["signature"] = _b64(s.sign(ARTIFACT, hashes.SHA384()))
    result = sigstore_js(write(tmp_path, "b.json", b), s.write_pem(tmp_path), artifact)
    assert not result.ok
    assert "SIGNATURE_ERROR" in result.error


def test_ed25519_message_signature_is_refused(
    signers: dict[str, Signer], artifact: Path, tmp_path: Path, sigstore_js: Verify
) -> None:
    """@sigstore/verify 3.1.1 cannot verify Ed25519 message signatures (a library limitation).

    MessageSignatureContent.verifySignature calls ``crypto.verify('sha256', ...)`` (every
    HashAlgorithm, UNSPECIFIED included, maps to a digest name); OpenSSL refuses a digest for pure
    Ed25519 ("invalid digest") and the library turns that into a plain signature failure. So a
    correct bundle is refused; Ed25519 can only be cross-checked through DSSE bundles.
    """
    s = signers["ed25519"]
    bundle = write(tmp_path, "b.json", message_bundle(s, ARTIFACT))
    result = sigstore_js(bundle, s.write_pem(tmp_path), artifact)
    assert not result.ok
    assert "SIGNATURE_ERROR" in result.error


@pytest.mark.parametrize("kind", MESSAGE_KINDS)
def test_message_tampered_artifact_refused(
    kind: str, signers: dict[str, Signer], tmp_path: Path, sigstore_js: Verify
) -> None:
    s = signers[kind]
    bundle = write(tmp_path, "b.json", message_bundle(s, ARTIFACT))
    tampered = tmp_path / "tampered.bin"
    tampered.write_bytes(ARTIFACT[:-1] + b"?")
    result = sigstore_js(bundle, s.write_pem(tmp_path), tampered)
    assert not result.ok
    assert "SIGNATURE_ERROR" in result.error


@pytest.mark.parametrize("kind", MESSAGE_KINDS)
def test_message_tampered_signature_refused(
    kind: str, signers: dict[str, Signer], artifact: Path, tmp_path: Path, sigstore_js: Verify
) -> None:
    s = signers[kind]
    b = message_bundle(s, ARTIFACT)
    b["messageSignature"]["signature"] = _flip_last_byte(b["messageSignature"]["signature"])
    result = sigstore_js(write(tmp_path, "b.json", b), s.write_pem(tmp_path), artifact)
    assert not result.ok
    assert "SIGNATURE_ERROR" in result.error


@pytest.mark.parametrize("kind", MESSAGE_KINDS)
def test_message_wrong_key_refused(
    kind: str, signers: dict[str, Signer], artifact: Path, tmp_path: Path, sigstore_js: Verify
) -> None:
    """Another key: refused by hint lookup, since trust holds only the given key's hint."""
    bundle = write(tmp_path, "b.json", message_bundle(signers[kind], ARTIFACT))
    result = sigstore_js(bundle, signers["other"].write_pem(tmp_path), artifact)
    assert not result.ok
    assert "PUBLIC_KEY_ERROR" in result.error


@pytest.mark.parametrize("kind", MESSAGE_KINDS)
def test_message_wrong_key_with_its_hint_refused(
    kind: str, signers: dict[str, Signer], artifact: Path, tmp_path: Path, sigstore_js: Verify
) -> None:
    """Another key whose hint the bundle claims: the lookup passes, the signature check fails."""
    other = signers["other"]
    bundle = write(tmp_path, "b.json", message_bundle(signers[kind], ARTIFACT, hint=other.hint))
    result = sigstore_js(bundle, other.write_pem(tmp_path), artifact)
    assert not result.ok
    assert "SIGNATURE_ERROR" in result.error


def test_message_digest_is_checked_by_harness_not_library(
    signers: dict[str, Signer], artifact: Path, tmp_path: Path, sigstore_js: Verify
) -> None:
    """@sigstore/verify never compares messageDigest with the artifact; the harness does.

    The library uses messageDigest only against a tlog entry's body, so with no tlog a wrong
    messageDigest passes it (the same gap sigstore-python fixed in #1652). The script therefore
    adds that comparison unless ``library_only`` is set.
    """
    s = signers["p256"]
    b = message_bundle(s, ARTIFACT)
    b["messageSignature"]["messageDigest"]["digest"] = _b64(hashlib.sha256(b"other").digest())
    bundle, pem = write(tmp_path, "b.json", b), s.write_pem(tmp_path)
    assert sigstore_js(bundle, pem, artifact, library_only=True).ok
    result = sigstore_js(bundle, pem, artifact)
    assert not result.ok
    assert result.error.startswith("harness:")


def test_bundle_without_tlog_entries_key_accepted(
    signers: dict[str, Signer], artifact: Path, tmp_path: Path, sigstore_js: Verify
) -> None:
    """A bundle with no ``tlogEntries`` key at all (as cosign writes) is accepted.

    protobuf-specs' VerificationMaterial.fromJSON turns a missing repeated field into ``[]`` before
    @sigstore/bundle's validation (which would refuse ``undefined``) ever sees it.
    """
    s = signers["p256"]
    bundle = write(tmp_path, "b.json", message_bundle(s, ARTIFACT, with_tlog_key=False))
    assert "tlogEntries" not in json.loads(bundle.read_text())["verificationMaterial"]
    assert sigstore_js(bundle, s.write_pem(tmp_path), artifact).ok


# --- DSSE ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_dsse_accepted(
    kind: str, signers: dict[str, Signer], artifact: Path, tmp_path: Path, sigstore_js: Verify
) -> None:
    """DSSE bundles verify for every key type, with or without the artifact.

    DSSE signatures are checked with ``crypto.verify(undefined, PAE, key, sig)``: no digest for
    Ed25519 (so it works here, unlike message signatures) and OpenSSL's default, SHA-256, for ECDSA
    and RSA, P-384 included.
    """
    s = signers[kind]
    bundle = write(tmp_path, "b.json", dsse_bundle(s, statement(ARTIFACT)))
    pem = s.write_pem(tmp_path)
    assert sigstore_js(bundle, pem).ok
    assert sigstore_js(bundle, pem, artifact).ok


def test_dsse_p384_over_sha384_is_refused(
    signers: dict[str, Signer], tmp_path: Path, sigstore_js: Verify
) -> None:
    """A P-384 DSSE signature over SHA-384 (PKIX_ECDSA_P384_SHA_384) is refused by the library.

    @sigstore/verify passes no digest for DSSE, so OpenSSL verifies with SHA-256 whatever the curve
    and whatever keyDetails the trust material says (keyLocator ignores keyDetails). Bundles that
    must pass sigstore-js therefore sign DSSE with SHA-256, even with P-384 keys.
    """
    s = signers["p384"]
    bundle = write(tmp_path, "b.json", dsse_bundle(s, statement(ARTIFACT), hash=hashes.SHA384()))
    result = sigstore_js(bundle, s.write_pem(tmp_path))
    assert not result.ok
    assert "SIGNATURE_ERROR" in result.error


@pytest.mark.parametrize("kind", KINDS)
def test_dsse_tampered_payload_refused(
    kind: str, signers: dict[str, Signer], tmp_path: Path, sigstore_js: Verify
) -> None:
    s = signers[kind]
    b = dsse_bundle(s, statement(ARTIFACT))
    b["dsseEnvelope"]["payload"] = _b64(statement(b"a different artifact"))
    result = sigstore_js(write(tmp_path, "b.json", b), s.write_pem(tmp_path))
    assert not result.ok
    assert "SIGNATURE_ERROR" in result.error


@pytest.mark.parametrize("kind", KINDS)
def test_dsse_tampered_signature_refused(
    kind: str, signers: dict[str, Signer], tmp_path: Path, sigstore_js: Verify
) -> None:
    s = signers[kind]
    b = dsse_bundle(s, statement(ARTIFACT))
    sig = b["dsseEnvelope"]["signatures"][0]
    sig["sig"] = _flip_last_byte(sig["sig"])
    result = sigstore_js(write(tmp_path, "b.json", b), s.write_pem(tmp_path))
    assert not result.ok
    assert "SIGNATURE_ERROR" in result.error


@pytest.mark.parametrize("kind", KINDS)
def test_dsse_wrong_key_refused(
    kind: str, signers: dict[str, Signer], tmp_path: Path, sigstore_js: Verify
) -> None:
    bundle = write(tmp_path, "b.json", dsse_bundle(signers[kind], statement(ARTIFACT)))
    result = sigstore_js(bundle, signers["other"].write_pem(tmp_path))
    assert not result.ok
    assert "PUBLIC_KEY_ERROR" in result.error


def test_dsse_tampered_artifact_refused_by_harness(
    signers: dict[str, Signer], tmp_path: Path, sigstore_js: Verify
) -> None:
    """An artifact the statement does not name: the library never looks, the harness refuses."""
    s = signers["p256"]
    bundle = write(tmp_path, "b.json", dsse_bundle(s, statement(ARTIFACT)))
    pem = s.write_pem(tmp_path)
    tampered = tmp_path / "tampered.bin"
    tampered.write_bytes(ARTIFACT + b"!")
    assert sigstore_js(bundle, pem, tampered, library_only=True).ok
    result = sigstore_js(bundle, pem, tampered)
    assert not result.ok
    assert result.error.startswith("harness:")


@pytest.mark.parametrize("keyid", ["", "some-key-id", "not the hint at all"])
def test_dsse_keyid_is_ignored(
    keyid: str, signers: dict[str, Signer], tmp_path: Path, sigstore_js: Verify
) -> None:
    """The DSSE signature's ``keyid`` plays no part: the key comes from publicKey.hint only."""
    s = signers["p256"]
    bundle = write(tmp_path, "b.json", dsse_bundle(s, statement(ARTIFACT), keyid=keyid))
    assert sigstore_js(bundle, s.write_pem(tmp_path)).ok


def test_dsse_with_two_signatures_is_invalid(
    signers: dict[str, Signer], tmp_path: Path, sigstore_js: Verify
) -> None:
    """@sigstore/bundle requires exactly one DSSE signature in a bundle; two are a shape error."""
    s = signers["p256"]
    b = dsse_bundle(s, statement(ARTIFACT), extra_signers=(signers["other"],))
    result = sigstore_js(write(tmp_path, "b.json", b), s.write_pem(tmp_path))
    assert not result.ok
    assert "content.dsseEnvelope.signatures" in result.error


# --- the wrapper --------------------------------------------------------------------------------


def test_message_bundle_without_artifact_is_a_usage_error(
    signers: dict[str, Signer], tmp_path: Path, sigstore_js: Verify
) -> None:
    """A usage error is a broken test, so the wrapper raises instead of returning ``ok=False``."""
    s = signers["p256"]
    bundle = write(tmp_path, "b.json", message_bundle(s, ARTIFACT))
    with pytest.raises(RuntimeError, match="needs --artifact"):
        sigstore_js(bundle, s.write_pem(tmp_path))


def test_missing_node_modules_names_the_fix(tmp_path: Path) -> None:
    """Without ``npm ci`` the harness fails loudly with the command to run, never skips."""
    with pytest.raises(RuntimeError, match=r"npm ci --prefix tests/interop/node"):
        ensure_installed(tmp_path)
