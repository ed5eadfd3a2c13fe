"""Sigstore bundle v0.3 documents with public-key verification material, built on sigstore_models.

Writing: always ``"tlogEntries": []`` when there is no log entry (consumers such as
``@sigstore/verify`` expect the key). Reading: a missing ``tlogEntries`` is accepted (cosign omits
it), sizes and nesting are bounded before parsing, and any schema violation is a
:class:`MalformedBundle`.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Final

from pydantic import ValidationError
from sigstore_models.bundle.v1 import Bundle, VerificationMaterial
from sigstore_models.common.v1 import (
    HashAlgorithm,
    HashOutput,
    MessageSignature,
    PublicKeyIdentifier,
)
from sigstore_models.intoto import Envelope
from sigstore_models.intoto import Signature as EnvelopeSignature

from airseal.trustroot.dsse import IN_TOTO_PAYLOAD_TYPE, Statement, pae
from airseal.trustroot.errors import MalformedBundle
from airseal.trustroot.keys import PublicKey, key_hint
from airseal.trustroot.signer import Signer
from airseal.trustroot.untrusted_json import load_json

BUNDLE_MEDIA_TYPE: Final = "application/vnd.dev.sigstore.bundle.v0.3+json"
MAX_BUNDLE_BYTES = 16 * 1024 * 1024

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "Bundle",
    "bundle_to_json",
    "message_signature_bundle",
    "parse_bundle",
    "sign_statement",
]


def _b64(raw: bytes) -> bytes:
    # sigstore_models' bytes fields base64-*decode* whatever they are given, raw bytes included
    # (raw bytes would silently turn into garbage), so construct them from base64.
    return base64.b64encode(raw)


def _material(key: PublicKey) -> VerificationMaterial:
    return VerificationMaterial(
        public_key=PublicKeyIdentifier(hint=key_hint(key)),
        tlog_entries=[],
    )


def message_signature_bundle(key: PublicKey, sha256_digest: bytes, signature: bytes) -> Bundle:
    """A bundle for a blob signature, as ``cosign sign-blob --key --bundle`` shapes it."""
    return Bundle(
        media_type=BUNDLE_MEDIA_TYPE,
        verification_material=_material(key),
        message_signature=MessageSignature(
            message_digest=HashOutput(algorithm=HashAlgorithm.SHA2_256, digest=_b64(sha256_digest)),
            signature=_b64(signature),
        ),
    )


def sign_statement(signer: Signer, statement: Statement) -> Bundle:
    """Sign an in-toto Statement into a DSSE bundle: one signature, over the DSSE PAE."""
    payload = statement.to_payload()
    signature = signer.sign_message(pae(IN_TOTO_PAYLOAD_TYPE, payload))
    return Bundle(
        media_type=BUNDLE_MEDIA_TYPE,
        verification_material=_material(signer.public_key),
        dsse_envelope=Envelope(
            payload=_b64(payload),
            payload_type=IN_TOTO_PAYLOAD_TYPE,
            signatures=[EnvelopeSignature(sig=_b64(signature), keyid="")],
        ),
    )


def add_statement_signature(signer: Signer, bundle: Bundle) -> Bundle:
    """The same DSSE envelope with one more signature (a multi-signature envelope, as DSSE
    allows): the two-person rule's second approval. The bundle's verification material still
    names the first signer; each added signature's ``keyid`` is its key's hint."""
    envelope = bundle.dsse_envelope
    if envelope is None:
        raise MalformedBundle("expected a DSSE envelope, found a message signature")
    signature = signer.sign_message(pae(envelope.payload_type, envelope.payload))
    signatures = [*envelope.signatures,
                  EnvelopeSignature(sig=_b64(signature), keyid=key_hint(signer.public_key))]
    return bundle.model_copy(update={
        "dsse_envelope": envelope.model_copy(update={"signatures": signatures}),
    })


def bundle_to_json(bundle: Bundle) -> bytes:
    """Serialise with ``tlogEntries`` always present, in a stable key order."""
    data = bundle.to_dict()
    data.setdefault("verificationMaterial", {}).setdefault("tlogEntries", [])
    return (json.dumps(data, indent=2, sort_keys=False) + "\n").encode("utf-8")


def parse_bundle(data: bytes, *, subject: str | None = None) -> Bundle:
    """Parse a bundle from untrusted bytes. Structure only: nothing is verified here."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise MalformedBundle(
            f"{len(data)} bytes is over the {MAX_BUNDLE_BYTES} byte limit", subject=subject
        )
    raw: Any = load_json(data, subject=subject, error=MalformedBundle)
    if not isinstance(raw, dict):
        raise MalformedBundle("top level is not a JSON object", subject=subject)
    material = raw.get("verificationMaterial")
    if isinstance(material, dict):
        material.setdefault("tlogEntries", [])  # cosign omits the key when there is no entry
    try:
        # JSON mode: sigstore_models is strict, and only JSON input maps strings onto its enums.
        return Bundle.from_json(json.dumps(raw))
    except (ValidationError, ValueError) as exc:
        raise MalformedBundle(_first_error(exc), subject=subject) from None


def _first_error(exc: ValidationError | ValueError) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "bundle"
        return f"{where}: {first['msg']}"
    return str(exc)


