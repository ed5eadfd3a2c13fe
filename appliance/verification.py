"""Verifying what others signed, as ``cosign verify-blob`` and ``verify-blob-attestation`` do.

The artifact is named as cosign names it: a file, ``-`` (standard input, streamed through SHA-256
and never stored), or ``sha256:HEX`` (the digest alone, for an artifact that is not here). Keyless
policies are cosign's four identity flags (:class:`airseal.trustroot.identity.CertificatePolicy`).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from airseal._internal.atomic import read_capped
from airseal.appliance.errors import UsageError
from airseal.trustroot.errors import VerificationError

if TYPE_CHECKING:
    from airseal.trustroot.attestation import VerifiedAttestation
    from airseal.trustroot.digest import ProgressCallback
    from airseal.trustroot.identity import CertificatePolicy
    from airseal.trustroot.keyless import KeylessResult
    from airseal.trustroot.keys import PublicKey
    from airseal.trustroot.verify import VerifiedBlob

# The bundle models, sigstore and the attestation code load in the functions that use them: a
# detached signature over a file verifies without them (tests/appliance/test_cli_startup.py).
MAX_TRUSTED_ROOT_BYTES = 8 * 1024 * 1024
_DIGEST = re.compile(r"^sha256:([0-9a-fA-F]{64})$")


@dataclass(frozen=True)
class Artifact:
    """The thing whose signature is checked: its SHA-256, and its file when there is one (a file
    is hashed when its digest is first asked for: verify-blob hashes it once, while verifying)."""

    label: str
    digest: bytes | None = field(repr=False)
    path: Path | None

    @cached_property
    def sha256(self) -> bytes:
        if self.digest is not None:
            return self.digest
        from airseal.appliance.blobs import hash_file

        assert self.path is not None
        return hash_file(self.path)[0]


def resolve_artifact(value: str, stdin: BinaryIO | None = None) -> Artifact:
    """``FILE``, ``-`` or ``sha256:HEX`` (cosign's three ways to name an artifact)."""
    if value == "-":
        from airseal.trustroot.digest import sha256_stream

        source = stdin if stdin is not None else sys.stdin.buffer
        digest, _ = sha256_stream(source)
        return Artifact("(standard input)", digest, None)
    match = _DIGEST.match(value)
    if match is not None:
        return Artifact(value.lower(), bytes.fromhex(match.group(1)), None)
    if value.startswith("sha256:"):
        raise UsageError(
            f"{value!r} is not a SHA-256 digest (sha256: and 64 hex digits)",
            hint="name the artifact as a file, '-' for standard input, or sha256:HEX",
        )
    path = Path(value)
    if not path.is_file():
        raise UsageError(
            f"{value} is not a file",
            subject=value,
            hint="name the artifact as a file, '-' for standard input, or sha256:HEX",
        )
    return Artifact(str(path), None, path)


def certificate_policy(
    identity: str | None,
    issuer: str | None,
    identity_regexp: str | None,
    issuer_regexp: str | None,
) -> CertificatePolicy | None:
    from airseal.trustroot.identity import CertificatePolicy

    return CertificatePolicy.from_options(identity, issuer, identity_regexp, issuer_regexp)


def verify_attestation(
    artifact: Artifact,
    bundle_path: Path,
    *,
    key: PublicKey | None,
    policy: CertificatePolicy | None,
    predicate_type: str | None,
    trusted_root_json: bytes | None,
) -> VerifiedAttestation:
    """Verify a DSSE attestation bundle about ``artifact``; raises on any failure."""
    from airseal.trustroot.attestation import (
        resolve_predicate_type,
        verify_key_attestation,
        verify_keyless_attestation,
    )
    from airseal.trustroot.bundle import MAX_BUNDLE_BYTES, parse_bundle

    if (key is None) == (policy is None):
        raise UsageError(
            "give --key, or the keyless identity options "
            "(--certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]), not both"
        )
    wanted = resolve_predicate_type(predicate_type) if predicate_type is not None else None
    raw = read_capped(bundle_path, MAX_BUNDLE_BYTES)
    if key is not None:
        bundle = parse_bundle(raw, subject=str(bundle_path))
        return verify_key_attestation(
            key, bundle, artifact.sha256, predicate_type=wanted, subject=str(bundle_path)
        )
    assert policy is not None
    return verify_keyless_attestation(
        raw,
        artifact.sha256,
        policy=policy,
        trusted_root_json=trusted_root_json,
        predicate_type=wanted,
        subject=str(bundle_path),
    )


def attestation_json(artifact: Artifact, result: VerifiedAttestation) -> dict[str, Any]:
    from airseal.trustroot.attestation import statement_summary

    return {
        "schemaVersion": 1,
        "verified": True,
        "artifact": artifact.label,
        "sha256": result.sha256,
        "subjectName": result.subject_name,
        "predicateType": result.predicate_type,
        "identity": result.identity,
        "issuer": result.issuer,
        "keyFingerprint": result.key_fingerprint,
        "logIndex": result.log_index,
        "integratedTime": result.integrated_time.isoformat() if result.integrated_time else None,
        "uncheckedTlogEntries": result.unchecked_tlog_entries,
        "statement": statement_summary(result.statement),
    }


_ATTESTATION_HINT = (
    "verify it with `airseal verify-blob-attestation FILE --bundle BUNDLE` and the same "
    "--key or identity options"
)


def verify_blob_artifact(
    artifact: Artifact,
    key: PublicKey,
    *,
    signature_path: Path | None,
    bundle_path: Path | None,
    on_progress: ProgressCallback | None = None,
) -> VerifiedBlob:
    """``verify-blob --key`` over a file, standard input or a digest; a DSSE bundle is pointed
    to ``verify-blob-attestation`` (it signs a statement, not the artifact)."""
    from airseal.appliance.blobs import verify_blob
    from airseal.trustroot.errors import MalformedBundle
    from airseal.trustroot.verify import (
        MAX_SIGNATURE_TEXT_BYTES,
        verify_blob_bundle,
        verify_detached_signature,
    )

    if (signature_path is None) == (bundle_path is None):
        raise UsageError("give exactly one of --signature or --bundle")
    if bundle_path is not None:
        from airseal.trustroot.bundle import MAX_BUNDLE_BYTES, parse_bundle

        bundle = parse_bundle(read_capped(bundle_path, MAX_BUNDLE_BYTES), subject=str(bundle_path))
        if bundle.dsse_envelope is not None:
            raise MalformedBundle(
                "this bundle is an attestation (a DSSE envelope signing an in-toto statement), "
                "not a signature over the artifact",
                subject=str(bundle_path),
                hint=_ATTESTATION_HINT,
            )
    if artifact.path is not None:
        return verify_blob(
            artifact.path, key, signature_path=signature_path, bundle_path=bundle_path,
            on_progress=on_progress,
        )
    if signature_path is not None:
        text = read_capped(signature_path, MAX_SIGNATURE_TEXT_BYTES)
        return verify_detached_signature(key, text, artifact.sha256, subject=str(signature_path))
    assert bundle_path is not None
    return verify_blob_bundle(key, bundle, artifact.sha256, subject=str(bundle_path))


def verify_keyless_artifact(
    artifact: Artifact,
    bundle_path: Path,
    policy: CertificatePolicy,
    trusted_root_json: bytes | None,
) -> KeylessResult:
    """``verify-blob`` keyless: a message-signature bundle over the artifact's SHA-256, against
    ``trusted_root_json`` (the caller's choice; ``None``: the root packaged with sigstore)."""
    from airseal.trustroot.bundle import MAX_BUNDLE_BYTES
    from airseal.trustroot.keyless import verify_keyless_bundle

    return verify_keyless_bundle(
        read_capped(bundle_path, MAX_BUNDLE_BYTES),
        artifact.sha256,
        policy=policy,
        trusted_root_json=trusted_root_json,
        subject=str(bundle_path),
    )


class TlogRequired(VerificationError):
    title = "Transparency log entry required"
    check = "tlog"
    hint = (
        "site policy verify.require-tlog=true: give the bundle's log in --trusted-root, or ask "
        "the vendor for a bundle uploaded to a log this site trusts"
    )


def check_bundle_tlog(
    bundle_path: Path,
    trusted_root: Path | None,
    *,
    ignore_tlog: bool,
    require_tlog: bool,
) -> str | None:
    """Transparency-log entries of a key-based bundle, after its signature verified: verified
    against ``trusted_root``, or a note saying plainly that they were not checked and why.
    Raises when the site requires a verified entry and there is none."""
    from airseal.trustroot.bundle import MAX_BUNDLE_BYTES, parse_bundle
    from airseal.trustroot.bundle_tlog import check_tlog_entries

    bundle = parse_bundle(read_capped(bundle_path, MAX_BUNDLE_BYTES), subject=str(bundle_path))
    if ignore_tlog:
        if require_tlog:
            raise TlogRequired(
                "--insecure-ignore-tlog was given, but site policy requires a verified "
                "transparency-log entry",
                subject=str(bundle_path),
            )
        count = len(bundle.verification_material.tlog_entries)
        return (
            f"{bundle_path}: {count} transparency log entr{'y' if count == 1 else 'ies'} "
            "NOT checked (--insecure-ignore-tlog)"
            if count
            else None
        )
    root = read_capped(trusted_root, MAX_TRUSTED_ROOT_BYTES) if trusted_root else None
    outcome = check_tlog_entries(bundle, root, subject=str(bundle_path))
    if require_tlog and outcome.verified == 0:
        why = outcome.reason or "the bundle carries no transparency-log entry"
        raise TlogRequired(f"no verified transparency-log entry: {why}", subject=str(bundle_path))
    if outcome.unchecked:
        return (
            f"{bundle_path}: {outcome.unchecked} transparency log "
            f"entr{'y' if outcome.unchecked == 1 else 'ies'} NOT checked: {outcome.reason}; "
            "the signature was verified with the key alone (pass --insecure-ignore-tlog to "
            "skip log entries knowingly)"
        )
    return None
