"""Offline verification of Sigstore keyless bundles: a Fulcio certificate plus a Rekor entry.

Vendors sign elsewhere with Sigstore keyless; Airseal checks their bundles with no network, as
``cosign verify-blob --certificate-identity --certificate-oidc-issuer`` does: the certificate must
chain to a Fulcio CA of the given ``trusted_root.json`` at the time the log (or a timestamp
authority) vouches for, carry a valid SCT, name the expected identity and OIDC issuer, and have
signed this artifact's SHA-256; the Rekor entry must be proven (inclusion proof, signed checkpoint,
SET) and consistent with the signature. sigstore-python's ``Verifier`` does the checking; this
module only feeds it bytes and turns its outcome into Airseal's typed errors.

Guarantees:

* No network, no TUF: the trusted root is built from JSON bytes the caller passes (a mirrored
  ``trusted_root.json``, normally delivered through the site's TUF repository). Never
  ``offline=True`` nor ``TrustedRoot.production()``: both go through sigstore-python's TUF cache,
  and ``offline=True`` skips TUF verification altogether.
* No file I/O, with one exception: :func:`default_trusted_root_json` reads the public-good root that
  ships inside the sigstore package, through :mod:`importlib.resources`. That copy is as trustworthy
  as the installed package and as fresh as its release, which is why callers should prefer a
  mirrored root and the default exists for convenience and tests.
* The artifact is passed as a SHA-256 digest, so callers stream files of any size.
* Fail closed: a result exists only if every check passed; anything else raises a
  :class:`airseal.trustroot.errors.VerificationError` subclass naming the subject.

DSSE (attestation) bundles are refused: they sign a statement *about* artifacts, not the artifact,
and need a statement policy this entry point does not have.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from pydantic import ValidationError
from sigstore.errors import CertValidationError, MetadataError
from sigstore.errors import Error as SigstoreError
from sigstore.hashes import Hashed
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore_models.common.v1 import HashAlgorithm
from sigstore_models.trustroot import v1 as trustroot_v1

from airseal.trustroot.errors import (
    DigestMismatch,
    IdentityMismatch,
    MalformedBundle,
    VerificationError,
)
from airseal.trustroot.identity import CertificatePolicy, PolicyRejected
from airseal.trustroot.untrusted_json import check_json_depth

MAX_BUNDLE_BYTES: Final = 16 * 1024 * 1024
MAX_TRUSTED_ROOT_BYTES: Final = 16 * 1024 * 1024

_DEFAULT_ROOT_DIR: Final = "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"

# What may escape sigstore-python (and the cryptography calls under it) for hostile input: its own
# errors, parse errors (pydantic, base64 and DER all raise ValueError subclasses), and a few
# cryptography exceptions for certificates that lack an extension or use an unknown key type.
_SIGSTORE_FAILURES: Final = (
    SigstoreError,
    ValueError,
    TypeError,
    LookupError,
    x509.ExtensionNotFound,
    InvalidSignature,
    UnsupportedAlgorithm,
)

_HINT_TRUST: Final = (
    "the certificate does not chain to a Fulcio CA of this trusted root at signing time; was the "
    "bundle made with another Sigstore instance (staging, private), or is the trusted root stale?"
)
_HINT_TRUSTED_ROOT: Final = (
    "the trusted root must be a Sigstore trusted_root.json "
    "(application/vnd.dev.sigstore.trustedroot+json;version=0.1) with Fulcio, CT and Rekor entries"
)
_HINT_FAILED: Final = (
    "the bundle, its certificate or its log entry did not verify; obtain the artifact and its "
    "bundle again from the publisher"
)

__all__ = [
    "MAX_BUNDLE_BYTES",
    "KeylessResult",
    "check_trusted_root",
    "default_trusted_root_json",
    "verify_keyless_bundle",
]


@dataclass(frozen=True)
class KeylessResult:
    """What was proven: ``identity``, vouched for by ``issuer``, signed this artifact's SHA-256.

    ``integrated_time`` is the Rekor integration time when the bundle carries a signed inclusion
    promise (so the time is authenticated), otherwise ``None``.
    """

    identity: str
    issuer: str
    sha256: str
    certificate_serial: int
    certificate_not_before: datetime
    certificate_not_after: datetime
    log_index: int
    integrated_time: datetime | None


def _describe(exc: BaseException) -> str:
    """One line for the user: pydantic's multi-line reports shrink to their first problem."""
    report = exc if isinstance(exc, ValidationError) else exc.__context__
    if isinstance(report, ValidationError) and report.error_count():
        first = report.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        more = report.error_count() - 1
        return f"{where}: {first['msg']}" + (f" (and {more} more problems)" if more else "")
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def default_trusted_root_json() -> bytes:
    """The public-good production ``trusted_root.json`` shipped inside the sigstore package."""
    resource = files("sigstore").joinpath("_store", _DEFAULT_ROOT_DIR, "trusted_root.json")
    return resource.read_bytes()


def check_trusted_root(raw: bytes, *, subject: str | None = None) -> None:
    """Raise :class:`VerificationError` unless sigstore can use ``raw`` as a trusted root."""
    _load_trusted_root(raw, subject)


def _load_trusted_root(raw: bytes, subject: str | None) -> Verifier:
    if len(raw) > MAX_TRUSTED_ROOT_BYTES:
        raise VerificationError(
            f"trusted root is larger than {MAX_TRUSTED_ROOT_BYTES} bytes",
            subject=subject,
            hint=_HINT_TRUSTED_ROOT,
        )
    check_json_depth(raw, subject=subject, error=VerificationError)
    try:
        # What TrustedRoot.from_file does, minus reading a path: sigstore has no public
        # constructor from bytes that does not also require a signing config.
        root = TrustedRoot(trustroot_v1.TrustedRoot.from_json(raw))
        return Verifier(trusted_root=root)
    except _SIGSTORE_FAILURES as exc:
        raise VerificationError(
            f"unusable trusted root: {_describe(exc)}", subject=subject, hint=_HINT_TRUSTED_ROOT
        ) from exc


def _parse_bundle(raw: bytes, subject: str | None) -> Bundle:
    if len(raw) > MAX_BUNDLE_BYTES:
        raise MalformedBundle(f"bundle is larger than {MAX_BUNDLE_BYTES} bytes", subject=subject)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBundle(
            f"not UTF-8 JSON ({exc.reason} at byte {exc.start})", subject=subject
        ) from exc
    check_json_depth(text, subject=subject, error=MalformedBundle)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedBundle(f"not JSON ({exc})", subject=subject) from exc
    if not isinstance(document, dict):
        raise MalformedBundle("not a JSON object", subject=subject)
    try:
        return Bundle.from_json(raw)
    except _SIGSTORE_FAILURES as exc:
        raise MalformedBundle(
            f"not a Sigstore keyless bundle: {_describe(exc)}", subject=subject
        ) from exc


def _signed_digest(bundle: Bundle) -> bytes | None:
    """The SHA-256 the bundle claims to sign, if it states one."""
    signature = bundle._inner.message_signature
    if signature is None or signature.message_digest is None:
        return None
    if signature.message_digest.algorithm != HashAlgorithm.SHA2_256:
        return None
    return signature.message_digest.digest


def _verifies(
    verifier: Verifier, bundle: Bundle, digest: bytes, policy: CertificatePolicy
) -> bool:
    try:
        verifier.verify_artifact(
            Hashed(algorithm=HashAlgorithm.SHA2_256, digest=digest), bundle, policy
        )
    except _SIGSTORE_FAILURES:
        return False
    return True


def verify_keyless_bundle(
    bundle_json: bytes,
    sha256_digest: bytes,
    *,
    identity: str | None = None,
    issuer: str | None = None,
    trusted_root_json: bytes | None = None,
    subject: str | None = None,
    policy: CertificatePolicy | None = None,
) -> KeylessResult:
    """Verify a keyless message-signature bundle over an artifact known by its SHA-256, offline.

    ``identity`` must equal one of the certificate's identities (email, URI or Sigstore other
    name) and ``issuer`` its OIDC issuer, exactly; both are required (an empty policy would
    accept anyone, so it is a ``ValueError``). ``trusted_root_json`` defaults to
    :func:`default_trusted_root_json`. ``subject`` (usually the bundle's file name) is named in
    every error.

    Raises :class:`MalformedBundle` for input that is not a keyless bundle,
    :class:`IdentityMismatch` when a genuine certificate names another identity or issuer,
    :class:`DigestMismatch` when the bundle is valid but for other content, and
    :class:`VerificationError` for every other failure (chain, SCT, log proofs, signature,
    unusable trusted root).
    """
    if policy is None:
        if not identity or not issuer:
            raise ValueError("an identity and an OIDC issuer are both required")
        policy = CertificatePolicy(identity=identity, issuer=issuer)
    if len(sha256_digest) != 32:
        raise ValueError(f"a SHA-256 digest is 32 bytes, got {len(sha256_digest)}")

    bundle = _parse_bundle(bundle_json, subject)
    if bundle._inner.dsse_envelope is not None:
        raise VerificationError(
            "this is a DSSE (attestation) bundle; it signs a statement, not the artifact",
            subject=subject,
            hint="verify it with `airseal verify-blob-attestation FILE --bundle BUNDLE` and the "
            "identity options",
        )
    verifier = _load_trusted_root(
        default_trusted_root_json() if trusted_root_json is None else trusted_root_json, subject
    )
    cert = bundle.signing_certificate

    try:
        verifier.verify_artifact(
            Hashed(algorithm=HashAlgorithm.SHA2_256, digest=sha256_digest), bundle, policy
        )
    except PolicyRejected as exc:
        raise IdentityMismatch(str(exc), subject=subject) from exc
    except CertValidationError as exc:
        raise VerificationError(str(exc), subject=subject, hint=_HINT_TRUST) from exc
    except MetadataError as exc:
        raise VerificationError(
            f"unusable trusted root: {exc}", subject=subject, hint=_HINT_TRUSTED_ROOT
        ) from exc
    except _SIGSTORE_FAILURES as exc:
        # Tell "valid bundle, other content" apart from everything else by asking the verifier
        # whether the bundle holds for the digest it claims: only then is the artifact the problem.
        signed = _signed_digest(bundle)
        if (
            signed is not None
            and signed != sha256_digest
            and _verifies(verifier, bundle, signed, policy)
        ):
            raise DigestMismatch(
                f"the artifact's sha256 is {sha256_digest.hex()}, the bundle signs {signed.hex()}",
                subject=subject,
            ) from exc
        raise VerificationError(str(exc), subject=subject, hint=_HINT_FAILED) from exc

    entry = bundle.log_entry._inner
    integrated = (
        datetime.fromtimestamp(entry.integrated_time, tz=UTC)
        if entry.integrated_time and entry.inclusion_promise is not None
        else None
    )
    accepted_identity, accepted_issuer = policy.accepted(cert)
    return KeylessResult(
        identity=accepted_identity,
        issuer=accepted_issuer,
        sha256=sha256_digest.hex(),
        certificate_serial=cert.serial_number,
        certificate_not_before=cert.not_valid_before_utc,
        certificate_not_after=cert.not_valid_after_utc,
        log_index=entry.log_index,
        integrated_time=integrated,
    )
