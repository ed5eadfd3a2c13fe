"""Attestations verified offline: real public-good keyless DSSE bundles, and our own key-based
ones cross-checked with @sigstore/verify."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from airseal.errors import UsageError
from airseal.trustroot.attestation import (
    PREDICATE_TYPES,
    resolve_predicate_type,
    verify_key_attestation,
    verify_keyless_attestation,
)
from airseal.trustroot.bundle import bundle_to_json, parse_bundle, sign_statement
from airseal.trustroot.dsse import Statement, Subject
from airseal.trustroot.errors import (
    DigestMismatch,
    IdentityMismatch,
    InvalidSignature,
    PredicateTypeMismatch,
    VerificationError,
    WrongKey,
)
from airseal.trustroot.identity import CertificatePolicy
from airseal.trustroot.keys import spki_pem
from airseal.trustroot.signer import PrivateKeySigner
from tests.interop.sigstore_js import verify_with_sigstore_js

KEYLESS = Path(__file__).parents[1] / "fixtures" / "keyless"
CONDA = KEYLESS / "conda-package.dsse.sigstore.json"
CONDA_SHA256 = bytes.fromhex("59ed81ee7a2485c47588ebdbad14764bf722c93438b43fe953a651747bc62ad7")
CONDA_IDENTITY = (
    "https://github.com/wolfv/sigstore-test/.github/workflows/action.yaml@refs/heads/main"
)
GITHUB = "https://token.actions.githubusercontent.com"
SLSA_SPEC = "https://slsa.dev/spec/v1.0/provenance"


def _policy(**kw: str) -> CertificatePolicy:
    return CertificatePolicy(**kw)


@pytest.mark.parametrize(
    "policy",
    [
        {"identity": CONDA_IDENTITY, "issuer": GITHUB},
        {"identity_regexp": r"^https://github\.com/wolfv/sigstore-test/", "issuer": GITHUB},
        {"identity": CONDA_IDENTITY, "issuer_regexp": r"^https://token\.actions\."},
        {"identity_regexp": "wolfv", "issuer_regexp": "githubusercontent"},  # unanchored, as cosign
    ],
)
def test_real_keyless_dsse_attestation_verifies_offline(policy: dict[str, str]) -> None:
    result = verify_keyless_attestation(
        CONDA.read_bytes(), CONDA_SHA256, policy=_policy(**policy), predicate_type=SLSA_SPEC
    )
    assert result.identity == CONDA_IDENTITY and result.issuer == GITHUB
    assert result.subject_name == "signed-package-1.2.0-hb0f4dca_0.conda"
    assert result.log_index == 166143216
    assert result.integrated_time is not None and result.integrated_time.year == 2025


@pytest.mark.parametrize(
    "policy",
    [
        {"identity": CONDA_IDENTITY + "x", "issuer": GITHUB},
        {"identity": CONDA_IDENTITY, "issuer": "https://accounts.google.com"},
        {"identity_regexp": r"^https://github\.com/wolfv/other/", "issuer": GITHUB},
        {"identity": CONDA_IDENTITY, "issuer_regexp": r"^https://accounts\."},
        {"identity_regexp": r"^wolfv", "issuer": GITHUB},  # anchored: the SAN starts with https
    ],
)
def test_wrong_identity_or_issuer_is_refused(policy: dict[str, str]) -> None:
    with pytest.raises(IdentityMismatch) as caught:
        verify_keyless_attestation(CONDA.read_bytes(), CONDA_SHA256, policy=_policy(**policy))
    assert CONDA_IDENTITY in caught.value.detail  # says who actually signed


def test_other_artifact_and_other_predicate_type_are_refused() -> None:
    with pytest.raises(DigestMismatch, match="not the digest of any subject"):
        verify_keyless_attestation(
            CONDA.read_bytes(), bytes(32), policy=_policy(identity=CONDA_IDENTITY, issuer=GITHUB)
        )
    with pytest.raises(PredicateTypeMismatch, match=r"slsa\.dev/provenance/v1"):
        verify_keyless_attestation(
            CONDA.read_bytes(),
            CONDA_SHA256,
            policy=_policy(identity=CONDA_IDENTITY, issuer=GITHUB),
            predicate_type=resolve_predicate_type("slsaprovenance1"),
        )


def test_altered_statement_is_refused() -> None:
    bundle = json.loads(CONDA.read_bytes())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "00" * 32
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(VerificationError) as caught:
        verify_keyless_attestation(
            json.dumps(bundle).encode(),
            bytes(32),
            policy=_policy(identity=CONDA_IDENTITY, issuer=GITHUB),
        )
    assert not isinstance(caught.value, IdentityMismatch)


def test_npm_intoto_entry_is_refused_not_waved_through() -> None:
    with pytest.raises(VerificationError, match=r"intoto|Integrated time"):
        verify_keyless_attestation(
            (KEYLESS / "sigstore-3.1.0.sigstore.json").read_bytes(),
            bytes(32),
            policy=_policy(identity_regexp="sigstore/sigstore-js", issuer=GITHUB),
        )


def test_message_signature_bundle_is_not_an_attestation() -> None:
    with pytest.raises(VerificationError, match="message-signature") as caught:
        verify_keyless_attestation(
            (KEYLESS / "new_bundle.txt.sigstore.json").read_bytes(),
            bytes(32),
            policy=_policy(
                identity="aryadeeptade@gmail.com", issuer="https://github.com/login/oauth"
            ),
        )
    assert "airseal verify-blob" in caught.value.hint


def test_cosign_short_names() -> None:
    assert resolve_predicate_type("slsaprovenance") == "https://slsa.dev/provenance/v0.2"
    assert resolve_predicate_type("spdxjson") == "https://spdx.dev/Document"
    assert resolve_predicate_type("cyclonedx") == "https://cyclonedx.org/bom"
    assert resolve_predicate_type("custom") == "https://cosign.sigstore.dev/attestation/v1"
    assert resolve_predicate_type("vuln") == "https://cosign.sigstore.dev/attestation/vuln/v1"
    assert resolve_predicate_type("https://example.com/p/v1") == "https://example.com/p/v1"
    with pytest.raises(UsageError, match="--type 'sbom'"):
        resolve_predicate_type("sbom")
    assert len(PREDICATE_TYPES) == 10


def test_policy_needs_one_of_each_pair_and_valid_patterns() -> None:
    with pytest.raises(UsageError, match="--certificate-identity"):
        CertificatePolicy(issuer=GITHUB)
    with pytest.raises(UsageError, match="--certificate-oidc-issuer"):
        CertificatePolicy(identity="a")
    with pytest.raises(UsageError, match="exactly one of --certificate-identity"):
        CertificatePolicy(identity="a", identity_regexp="b", issuer=GITHUB)
    with pytest.raises(UsageError, match="--certificate-identity-regexp '\\('"):
        CertificatePolicy(identity_regexp="(", issuer=GITHUB)


# -- key-based, from our own signer -------------------------------------------------------------


def _own_attestation(tmp_path: Path, artifact: bytes) -> tuple[Path, Path, PrivateKeySigner]:
    import hashlib

    signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    statement = Statement(
        subject=(Subject(name="app.bin", digest={"sha256": hashlib.sha256(artifact).hexdigest()}),),
        predicateType=PREDICATE_TYPES["slsaprovenance1"],
        predicate={"buildDefinition": {"buildType": "https://example.com/build/v1"}},
    )
    bundle = tmp_path / "app.bin.intoto.sigstore.json"
    bundle.write_bytes(bundle_to_json(sign_statement(signer, statement)))
    pub = tmp_path / "vendor.pub"
    pub.write_bytes(spki_pem(signer.public_key))
    return bundle, pub, signer


def test_own_key_attestation_verifies_here_and_with_sigstore_js(tmp_path: Path) -> None:
    import hashlib

    artifact = tmp_path / "app.bin"
    artifact.write_bytes(b"vendor build\n" * 1000)
    bundle, pub, signer = _own_attestation(tmp_path, artifact.read_bytes())
    digest = hashlib.sha256(artifact.read_bytes()).digest()
    parsed = parse_bundle(bundle.read_bytes())
    result = verify_key_attestation(
        signer.public_key, parsed, digest, predicate_type=PREDICATE_TYPES["slsaprovenance1"]
    )
    assert result.subject_name == "app.bin" and result.key_fingerprint
    assert verify_with_sigstore_js(bundle, pub, artifact).ok

    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(WrongKey):
        verify_key_attestation(other, parsed, digest)
    with pytest.raises(DigestMismatch):
        verify_key_attestation(signer.public_key, parsed, bytes(32))

    tampered = json.loads(bundle.read_bytes())
    payload = json.loads(base64.b64decode(tampered["dsseEnvelope"]["payload"]))
    payload["predicate"]["buildDefinition"]["buildType"] = "https://evil.example/"
    tampered["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps(tampered))
    with pytest.raises(InvalidSignature):
        verify_key_attestation(signer.public_key, parse_bundle(altered.read_bytes()), digest)
    assert not verify_with_sigstore_js(altered, pub, artifact).ok
