"""Key-based verification of blob signatures and Sigstore bundles.

Written by hand because sigstore-python 4.x verifies only certificate (keyless) bundles
(sigstore-python#1244). It is deliberately small and is cross-checked in the tests against
``@sigstore/verify`` (npm), an independent implementation. Every function fails closed: it either
returns a verified result or raises a :class:`airseal.trustroot.errors.VerificationError` subclass
naming
the subject and the check.

Transparency-log entries inside key-based bundles are not checked here (offline sites pin keys;
log proofs are a separate policy step), and the result says how many were left unchecked.

The bundle and statement models (sigstore_models, pydantic: a third of a second to import) load
only in the functions that take a bundle, so a detached signature verifies without them.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airseal.trustroot.errors import (
    DigestMismatch,
    InvalidSignature,
    MalformedBundle,
    MalformedSignature,
    UnsupportedAlgorithm,
    WrongKey,
)
from airseal.trustroot.keys import (
    KeyAlgorithm,
    PublicKey,
    fingerprint,
    key_algorithm,
    key_hint,
    verify_digest,
    verify_message,
)

if TYPE_CHECKING:
    from airseal.trustroot.bundle import Bundle
    from airseal.trustroot.dsse import Statement

MAX_SIGNATURE_TEXT_BYTES = 16 * 1024


@dataclass(frozen=True)
class VerifiedBlob:
    """What was proven: this content (by digest) was signed by this key."""

    sha256: str
    key_fingerprint: str
    algorithm: KeyAlgorithm
    unchecked_tlog_entries: int = 0


def _signature_over_blob(
    key: PublicKey,
    signature: bytes,
    sha256_digest: bytes,
    message: bytes | memoryview | None,
    subject: str | None,
) -> None:
    if key_algorithm(key).prehashed:
        verify_digest(key, signature, sha256_digest, subject=subject)
        return
    if message is None:
        raise UnsupportedAlgorithm(
            "Ed25519 signatures cover the whole content, which was not provided", subject=subject
        )
    verify_message(key, signature, message, subject=subject)


def verify_detached_signature(
    key: PublicKey,
    signature_text: bytes,
    sha256_digest: bytes,
    *,
    message: bytes | memoryview | None = None,
    subject: str | None = None,
) -> VerifiedBlob:
    """Verify cosign's detached form: base64 of a DER (or raw Ed25519) signature.

    A detached signature records no digest and no key, so a changed file, a changed signature
    and a wrong key all surface as :class:`InvalidSignature`.
    """
    if len(signature_text) > MAX_SIGNATURE_TEXT_BYTES:
        raise MalformedSignature("signature file is too large", subject=subject)
    try:
        signature = base64.b64decode(b"".join(signature_text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedSignature("not base64", subject=subject) from None
    if not signature:
        raise MalformedSignature("signature is empty", subject=subject)
    _signature_over_blob(key, signature, sha256_digest, message, subject)
    return VerifiedBlob(sha256_digest.hex(), fingerprint(key), key_algorithm(key))


def _check_key_material(key: PublicKey, bundle: Bundle, subject: str | None) -> None:
    material = bundle.verification_material
    if material.public_key is None:
        raise MalformedBundle(
            "bundle carries a certificate, not a public-key hint: verify it with "
            "--certificate-identity and --certificate-oidc-issuer",
            subject=subject,
        )
    hint = material.public_key.hint
    if hint and hint != key_hint(key):
        raise WrongKey(
            f"bundle was signed by key hint {hint}, not by {key_hint(key)}", subject=subject
        )


def verify_blob_bundle(
    key: PublicKey,
    bundle: Bundle,
    sha256_digest: bytes,
    *,
    message: bytes | memoryview | None = None,
    subject: str | None = None,
) -> VerifiedBlob:
    """Verify a key-based bundle over a blob (message signature, or DSSE naming the blob)."""
    from sigstore_models.common.v1 import HashAlgorithm

    _check_key_material(key, bundle, subject)
    unchecked = len(bundle.verification_material.tlog_entries)
    if bundle.message_signature is not None:
        signed = bundle.message_signature
        if signed.message_digest is not None:
            if signed.message_digest.algorithm != HashAlgorithm.SHA2_256:
                raise UnsupportedAlgorithm(
                    f"message digest {signed.message_digest.algorithm.value} is not SHA2_256",
                    subject=subject,
                )
            if signed.message_digest.digest != sha256_digest:
                raise DigestMismatch(
                    f"content has sha256 {sha256_digest.hex()}, the bundle signed "
                    f"{signed.message_digest.digest.hex()}",
                    subject=subject,
                )
        if not signed.signature:
            raise MalformedBundle("messageSignature.signature is empty", subject=subject)
        _signature_over_blob(key, signed.signature, sha256_digest, message, subject)
    else:
        statement = verify_dsse_bundle(key, bundle, subject=subject)
        if not any(s.sha256 == sha256_digest.hex() for s in statement.subject):
            raise DigestMismatch(
                f"content has sha256 {sha256_digest.hex()}, which no statement subject names",
                subject=subject,
            )
    return VerifiedBlob(sha256_digest.hex(), fingerprint(key), key_algorithm(key), unchecked)


def dsse_signers(
    keys: dict[str, PublicKey], bundle: Bundle, *, subject: str | None = None
) -> frozenset[str]:
    """Which of ``keys`` (by name, e.g. fingerprint) signed the bundle's DSSE envelope: each
    key counts once however many of its signatures the envelope holds."""
    from airseal.trustroot.dsse import pae

    envelope = bundle.dsse_envelope
    if envelope is None:
        raise MalformedBundle("expected a DSSE envelope, found a message signature",
                              subject=subject)
    signed_bytes = pae(envelope.payload_type, envelope.payload)
    found = set()
    for name, key in keys.items():
        for signature in envelope.signatures:
            try:
                verify_message(key, signature.sig, signed_bytes, subject=subject)
            except InvalidSignature:
                continue
            found.add(name)
            break
    return frozenset(found)


def verify_dsse_envelope(key: PublicKey, bundle: Bundle, *, subject: str | None = None) -> bytes:
    """Verify a key-based DSSE bundle's envelope signature with ``key``; returns the signed payload
    (an in-toto statement, not yet parsed: callers parse it only after this returned)."""
    from airseal.trustroot.dsse import IN_TOTO_PAYLOAD_TYPE, pae

    _check_key_material(key, bundle, subject)
    envelope = bundle.dsse_envelope
    if envelope is None:
        raise MalformedBundle(
            "expected a DSSE envelope, found a message signature", subject=subject
        )
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise MalformedBundle(
            f"payload type {envelope.payload_type!r} is not {IN_TOTO_PAYLOAD_TYPE}", subject=subject
        )
    if not envelope.signatures:
        raise MalformedBundle("DSSE envelope has no signatures", subject=subject)
    signed_bytes = pae(envelope.payload_type, envelope.payload)
    failure: InvalidSignature | None = None
    for signature in envelope.signatures:
        try:
            verify_message(key, signature.sig, signed_bytes, subject=subject)
        except InvalidSignature as exc:
            failure = exc
            continue
        return bytes(envelope.payload)
    assert failure is not None
    raise failure


def verify_dsse_bundle(key: PublicKey, bundle: Bundle, *, subject: str | None = None) -> Statement:
    """Verify a DSSE bundle's envelope signature with ``key``; only then parse its statement."""
    from airseal.trustroot.dsse import Statement

    payload = verify_dsse_envelope(key, bundle, subject=subject)
    return Statement.from_payload(payload, subject=subject)
