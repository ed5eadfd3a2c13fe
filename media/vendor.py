"""The vendor's signature, carried to the endpoint with the action that uses the file.

At intake (integrity check 1) the appliance verifies the vendor's signature over a file. So that
the endpoint does not have to take the appliance's word for it, the evidence travels on the media
as ``actions/<id>/vendor.json``: the signature or bundle exactly as the vendor made it, plus what
is needed to check it offline: the vendor's public key (key-based), or the identity and OIDC
issuer accepted at intake and the ``trusted_root.json`` used (keyless). The file is listed in the
export statement, so the distributor's signature covers it: nobody between appliance and
endpoint can swap the vendor, the key or the trusted root. The agent checks it again in check 2
against the payload's signed SHA-256 (:func:`verify_vendor_evidence`), and shows who signed.

Only evidence that can be checked from the digest alone travels: an Ed25519 signature over the
whole content (PureEdDSA, a message signature) cannot, so intake does not record it.

The document is ours: camelCase, ``schemaVersion`` 1, unknown fields refused, every field bounded.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel

from airseal.media.errors import InvalidExportStatement
from airseal.trustroot.errors import KeyFormatError, VerificationError
from airseal.trustroot.untrusted_json import load_json

VENDOR_FILE_NAME: Final = "vendor.json"
MAX_VENDOR_BYTES: Final = 4 * 1024 * 1024
_MAX_TEXT: Final = 1024 * 1024

Method = Literal["cosign-signature", "bundle-key", "keyless"]
BoundedText = Annotated[str, StringConstraints(min_length=1, max_length=_MAX_TEXT)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class VendorEvidenceInvalid(VerificationError):
    title = "Vendor signature invalid"
    check = "vendor signature"
    hint = (
        "the vendor's signature carried with this action does not hold for its payload: the "
        "media or the appliance's store was tampered with; do not run it, and re-export"
    )


class VendorSignatureMissing(VerificationError):
    title = "Vendor signature missing"
    check = "vendor signature"
    hint = (
        "the action requires the vendor's signature, but none travels with it; add the file "
        "with its vendor signature at the appliance and export again"
    )


class VendorEvidence(BaseModel):
    """What vouched for a payload at intake, in a form the endpoint can check again."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )

    schema_version: Literal[1] = 1
    method: Method
    signature: ShortText | None = None
    """cosign's detached signature (base64), for ``cosign-signature``."""
    bundle: BoundedText | None = None
    """The Sigstore bundle's JSON text, as the vendor shipped it."""
    public_key: ShortText | None = None
    """The vendor's public key (PEM SPKI), for the key-based methods."""
    identity: ShortText | None = None
    issuer: ShortText | None = None
    trusted_root: BoundedText | None = None
    """The ``trusted_root.json`` text the keyless bundle was verified against at intake."""

    def model_post_init(self, context: Any, /) -> None:
        needs: dict[str, tuple[str, ...]] = {
            "cosign-signature": ("signature", "public_key"),
            "bundle-key": ("bundle", "public_key"),
            "keyless": ("bundle", "identity", "issuer", "trusted_root"),
        }
        wanted = needs[self.method]
        for name in ("signature", "bundle", "public_key", "identity", "issuer", "trusted_root"):
            present = getattr(self, name) is not None
            if present != (name in wanted):
                state = "is missing" if not present else "does not belong"
                raise ValueError(f"{to_camel(name)} {state} for method {self.method}")

    def to_json_bytes(self) -> bytes:
        import json

        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_json_bytes(cls, data: bytes, *, subject: str) -> VendorEvidence:
        if len(data) > MAX_VENDOR_BYTES:
            raise InvalidExportStatement(
                f"vendor evidence is {len(data)} bytes, over {MAX_VENDOR_BYTES}", subject=subject
            )
        raw = load_json(data, subject=subject, error=InvalidExportStatement)
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "document"
            raise InvalidExportStatement(f"{where}: {first['msg']}", subject=subject) from None


@dataclass(frozen=True)
class VendorCheck:
    """The vendor's signature held for the payload's SHA-256: who signed, and how."""

    method: str
    signer: str
    """``identity (issuer)`` for keyless, ``key <fingerprint>`` for key-based."""

    def to_json_dict(self) -> dict[str, str]:
        return {"method": self.method, "signer": self.signer}


def verify_vendor_evidence(
    evidence: VendorEvidence, sha256_digest: bytes, *, subject: str
) -> VendorCheck:
    """Check the carried vendor signature over a payload known by its SHA-256, offline.

    Raises :class:`VendorEvidenceInvalid` (naming ``subject`` and what failed) for any failure.
    """
    from airseal.trustroot.bundle import parse_bundle
    from airseal.trustroot.keys import fingerprint, load_public_key
    from airseal.trustroot.verify import verify_blob_bundle, verify_detached_signature

    try:
        if evidence.method == "keyless":
            from airseal.trustroot.identity import CertificatePolicy
            from airseal.trustroot.keyless import verify_keyless_bundle

            assert evidence.bundle and evidence.identity and evidence.issuer
            assert evidence.trusted_root is not None
            result = verify_keyless_bundle(
                evidence.bundle.encode("utf-8"),
                sha256_digest,
                policy=CertificatePolicy(identity=evidence.identity, issuer=evidence.issuer),
                trusted_root_json=evidence.trusted_root.encode("utf-8"),
                subject=subject,
            )
            return VendorCheck("keyless", f"{result.identity} ({result.issuer})")
        assert evidence.public_key is not None
        key = load_public_key(evidence.public_key.encode("ascii"), subject=subject)
        if evidence.method == "cosign-signature":
            assert evidence.signature is not None
            verify_detached_signature(
                key, evidence.signature.encode("ascii"), sha256_digest, subject=subject
            )
        else:
            assert evidence.bundle is not None
            bundle = parse_bundle(evidence.bundle.encode("utf-8"), subject=subject)
            verify_blob_bundle(key, bundle, sha256_digest, subject=subject)
        return VendorCheck(evidence.method, f"key {fingerprint(key)}")
    except VerificationError as exc:
        if isinstance(exc, VendorEvidenceInvalid):
            raise
        raise VendorEvidenceInvalid(f"{exc.title.lower()}: {exc.detail}", subject=subject) from exc
    except (KeyFormatError, UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise VendorEvidenceInvalid(f"unreadable evidence ({exc})", subject=subject) from exc


def encode_signature(text: bytes) -> str:
    """A detached signature file's content as carried (whitespace-free base64)."""
    return base64.b64encode(base64.b64decode(b"".join(text.split()), validate=True)).decode()


__all__ = [
    "MAX_VENDOR_BYTES",
    "VENDOR_FILE_NAME",
    "VendorCheck",
    "VendorEvidence",
    "VendorEvidenceInvalid",
    "VendorSignatureMissing",
    "encode_signature",
    "verify_vendor_evidence",
]
