"""Attestations: DSSE bundles whose in-toto statement names the artifact, verified offline.

What ``cosign verify-blob-attestation`` checks, and nothing less: the envelope's signature holds
(with a public key, or keyless: a Fulcio certificate chaining to the trusted root, its SCT, the
Rekor entry's proofs, and the identity policy), the payload is an in-toto statement, the
artifact's SHA-256 is the digest of one of its subjects, and, when asked, the predicate type is
the expected one (cosign's short names such as ``slsaprovenance1`` or ``spdxjson`` accepted).

Third-party statements are parsed leniently on purpose (in-toto v1 and the v0.1 that
``cosign attest-blob`` still writes, subjects with any digest algorithms, any predicate): their
format is not ours, only the fields checked here are required. Airseal's own statements keep their
strict model (:class:`airseal.trustroot.dsse.Statement`).

Keyless verification is sigstore-python's ``Verifier.verify_dsse`` (which supports Rekor
``dsse`` 0.0.1 and ``hashedrekord`` 0.0.2 entries; older ``intoto`` entries, e.g. npm
provenance, are refused by it and therefore here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sigstore.errors import CertValidationError, MetadataError

from airseal.errors import UsageError
from airseal.trustroot.bundle import Bundle as KeyBundle
from airseal.trustroot.dsse import IN_TOTO_PAYLOAD_TYPE, MAX_STATEMENT_BYTES
from airseal.trustroot.errors import (
    DigestMismatch,
    IdentityMismatch,
    MalformedBundle,
    PredicateTypeMismatch,
    StatementError,
    VerificationError,
)
from airseal.trustroot.identity import CertificatePolicy, PolicyRejected
from airseal.trustroot.keys import PublicKey, fingerprint
from airseal.trustroot.untrusted_json import load_json

# cosign's `--type` short names (cosign/cmd/cosign/cli/options/predicate.go), to their URIs.
PREDICATE_TYPES: Final[Mapping[str, str]] = {
    "custom": "https://cosign.sigstore.dev/attestation/v1",
    "slsaprovenance": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance02": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance1": "https://slsa.dev/provenance/v1",
    "spdx": "https://spdx.dev/Document",
    "spdxjson": "https://spdx.dev/Document",
    "cyclonedx": "https://cyclonedx.org/bom",
    "link": "https://in-toto.io/Link/v1",
    "vuln": "https://cosign.sigstore.dev/attestation/vuln/v1",
    "openvex": "https://openvex.dev/ns",
}
STATEMENT_TYPES: Final = ("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1")
MAX_SUBJECTS: Final = 10_000

__all__ = [
    "PREDICATE_TYPES",
    "AttestedStatement",
    "VerifiedAttestation",
    "parse_attested_statement",
    "resolve_predicate_type",
    "statement_summary",
    "verify_key_attestation",
    "verify_keyless_attestation",
]


def resolve_predicate_type(value: str) -> str:
    """``--type``: one of cosign's short names, or a predicate type URI as it is."""
    if value in PREDICATE_TYPES:
        return PREDICATE_TYPES[value]
    if ":" in value and " " not in value:
        return value
    names = ", ".join(PREDICATE_TYPES)
    raise UsageError(
        f"--type {value!r} is neither a predicate type URI nor one of cosign's names ({names})",
        hint="e.g. --type slsaprovenance1, or --type https://slsa.dev/provenance/v1",
    )


@dataclass(frozen=True)
class AttestedStatement:
    """The parts of a third-party in-toto statement that a verification relies on."""

    statement_type: str
    predicate_type: str
    subjects: tuple[tuple[str, Mapping[str, str]], ...]
    """(name, digest set) for every subject, as the statement lists them."""

    def subject_named_by(self, sha256_hex: str) -> str | None:
        """The name of the first subject whose sha256 is ``sha256_hex``, else ``None``."""
        for name, digests in self.subjects:
            if digests.get("sha256", "").lower() == sha256_hex:
                return name
        return None


def parse_attested_statement(payload: bytes, *, subject: str | None = None) -> AttestedStatement:
    """Parse a signed payload (only after its signature verified) as an in-toto statement."""
    if len(payload) > MAX_STATEMENT_BYTES:
        raise StatementError("statement is larger than the limit", subject=subject)
    raw: Any = load_json(payload, subject=subject, error=StatementError)
    if not isinstance(raw, dict):
        raise StatementError("the statement is not a JSON object", subject=subject)
    statement_type = raw.get("_type")
    if statement_type not in STATEMENT_TYPES:
        raise StatementError(
            f"_type is {statement_type!r}, not an in-toto statement ({', '.join(STATEMENT_TYPES)})",
            subject=subject,
        )
    predicate_type = raw.get("predicateType")
    if not isinstance(predicate_type, str) or not predicate_type:
        raise StatementError("predicateType is missing", subject=subject)
    listed = raw.get("subject")
    if not isinstance(listed, list) or not listed or len(listed) > MAX_SUBJECTS:
        raise StatementError("subject must be a non-empty list", subject=subject)
    subjects: list[tuple[str, Mapping[str, str]]] = []
    for index, entry in enumerate(listed):
        digests = entry.get("digest") if isinstance(entry, dict) else None
        if not isinstance(digests, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in digests.items()
        ):
            raise StatementError(f"subject[{index}].digest is not a digest set", subject=subject)
        name = entry.get("name", "")
        subjects.append((name if isinstance(name, str) else "", dict(digests)))
    return AttestedStatement(statement_type, predicate_type, tuple(subjects))


@dataclass(frozen=True)
class VerifiedAttestation:
    """What was proven: the signer attested ``predicate_type`` about the artifact (by sha256)."""

    sha256: str
    subject_name: str
    predicate_type: str
    statement: AttestedStatement
    identity: str | None = None
    issuer: str | None = None
    key_fingerprint: str | None = None
    log_index: int | None = None
    integrated_time: datetime | None = None
    unchecked_tlog_entries: int = 0

    @property
    def signer(self) -> str:
        if self.identity is not None:
            return f"{self.identity} ({self.issuer})"
        return f"key {self.key_fingerprint}"


def _check_statement(
    payload: bytes, sha256_digest: bytes, predicate_type: str | None, subject: str | None
) -> tuple[AttestedStatement, str]:
    statement = parse_attested_statement(payload, subject=subject)
    if predicate_type is not None and statement.predicate_type != predicate_type:
        raise PredicateTypeMismatch(
            f"the statement's predicate type is {statement.predicate_type!r}, "
            f"not {predicate_type!r}",
            subject=subject,
        )
    name = statement.subject_named_by(sha256_digest.hex())
    if name is None:
        listed = [n for n, _ in statement.subjects][:5]
        raise DigestMismatch(
            f"the artifact's sha256 {sha256_digest.hex()} is not the digest of any subject of "
            f"the statement (subjects: {listed})",
            subject=subject,
        )
    return statement, name


def verify_key_attestation(
    key: PublicKey,
    bundle: KeyBundle,
    sha256_digest: bytes,
    *,
    predicate_type: str | None = None,
    subject: str | None = None,
) -> VerifiedAttestation:
    """A key-based DSSE attestation (``cosign attest-blob --key``, or Airseal's own statements)."""
    from airseal.trustroot.verify import verify_dsse_envelope

    payload = verify_dsse_envelope(key, bundle, subject=subject)
    statement, name = _check_statement(payload, sha256_digest, predicate_type, subject)
    return VerifiedAttestation(
        sha256=sha256_digest.hex(),
        subject_name=name,
        predicate_type=statement.predicate_type,
        statement=statement,
        key_fingerprint=fingerprint(key),
        unchecked_tlog_entries=len(bundle.verification_material.tlog_entries),
    )


def verify_keyless_attestation(
    bundle_json: bytes,
    sha256_digest: bytes,
    *,
    policy: CertificatePolicy,
    trusted_root_json: bytes | None = None,
    predicate_type: str | None = None,
    subject: str | None = None,
) -> VerifiedAttestation:
    """A keyless DSSE attestation, verified offline against ``trusted_root_json`` (default: the
    public-good root shipped with sigstore)."""
    from airseal.trustroot import keyless

    bundle = keyless._parse_bundle(bundle_json, subject)
    if bundle._inner.dsse_envelope is None:
        raise MalformedBundle(
            "this is a message-signature bundle, not an attestation",
            subject=subject,
            hint="verify it with `airseal verify-blob`",
        )
    verifier = keyless._load_trusted_root(
        keyless.default_trusted_root_json() if trusted_root_json is None else trusted_root_json,
        subject,
    )
    try:
        payload_type, payload = verifier.verify_dsse(bundle, policy)
    except PolicyRejected as exc:
        raise IdentityMismatch(str(exc), subject=subject) from exc
    except CertValidationError as exc:
        raise VerificationError(str(exc), subject=subject, hint=keyless._HINT_TRUST) from exc
    except MetadataError as exc:
        raise VerificationError(
            f"unusable trusted root: {exc}", subject=subject, hint=keyless._HINT_TRUSTED_ROOT
        ) from exc
    except keyless._SIGSTORE_FAILURES as exc:
        raise VerificationError(str(exc), subject=subject, hint=keyless._HINT_FAILED) from exc
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise StatementError(
            f"payload type {payload_type!r} is not {IN_TOTO_PAYLOAD_TYPE}", subject=subject
        )
    statement, name = _check_statement(payload, sha256_digest, predicate_type, subject)
    cert = bundle.signing_certificate
    identity, issuer = policy.accepted(cert)
    entry = bundle.log_entry._inner
    integrated = (
        datetime.fromtimestamp(entry.integrated_time, tz=UTC)
        if entry.integrated_time and entry.inclusion_promise is not None
        else None
    )
    return VerifiedAttestation(
        sha256=sha256_digest.hex(),
        subject_name=name,
        predicate_type=statement.predicate_type,
        statement=statement,
        identity=identity,
        issuer=issuer,
        log_index=entry.log_index,
        integrated_time=integrated,
    )


def statement_summary(statement: AttestedStatement) -> dict[str, Any]:
    """The statement as JSON output shows it (camelCase)."""
    return {
        "statementType": statement.statement_type,
        "predicateType": statement.predicate_type,
        "subjects": [{"name": n, "digest": dict(d)} for n, d in statement.subjects],
    }

