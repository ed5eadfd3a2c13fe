"""Transparency-log entries inside key-based bundles: checked against a trusted root, or reported.

A key-based bundle may carry Rekor entries (``cosign sign-blob --key`` uploads by default). They
are never silently ignored: :func:`check_tlog_entries` either proves each one against a
``trusted_root.json`` that lists the log (Merkle inclusion proof, signed checkpoint, and the SET
when present, by sigstore-python's own proof code), and checks that the entry's body is about
this signature (the signature bytes logged are the bundle's), or it says which entries were not
checked and why. Whether "not checked" is acceptable is the caller's policy (cosign's
``--insecure-ignore-tlog``, the site's ``verify.require-tlog``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from airseal.trustroot.bundle import Bundle
from airseal.trustroot.errors import VerificationError

__all__ = ["TlogOutcome", "check_tlog_entries"]


class TlogEntryInvalid(VerificationError):
    title = "Transparency log entry invalid"
    check = "tlog"
    hint = (
        "the bundle's log entry does not verify against this trusted root; obtain the bundle "
        "again, or check that --trusted-root lists the log it was uploaded to"
    )


@dataclass(frozen=True)
class TlogOutcome:
    entries: int
    verified: int
    reason: str | None
    """Why entries were left unchecked (``None`` when every entry verified, or there was none)."""

    @property
    def unchecked(self) -> int:
        return self.entries - self.verified


def _logged_signatures(body: dict[str, Any]) -> set[str]:
    spec = body.get("spec", {})
    found: set[str] = set()
    if isinstance(spec, dict) and body.get("apiVersion") == "0.0.2":  # Rekor v2's bodies
        inner = spec.get("hashedRekordV002") or spec.get("dsseV002") or {}
        items = [inner.get("signature"), *(inner.get("signatures") or [])] \
            if isinstance(inner, dict) else []
        return {i["content"] for i in items
                if isinstance(i, dict) and isinstance(i.get("content"), str)}
    signature = spec.get("signature") if isinstance(spec, dict) else None
    if isinstance(signature, dict) and isinstance(signature.get("content"), str):
        found.add(signature["content"])
    for item in spec.get("signatures", []) if isinstance(spec, dict) else []:
        if isinstance(item, dict) and isinstance(item.get("signature"), str):
            found.add(item["signature"])
    return found


def _bundle_signatures(bundle: Bundle) -> set[str]:
    if bundle.message_signature is not None:
        return {base64.b64encode(bundle.message_signature.signature).decode()}
    assert bundle.dsse_envelope is not None
    return {base64.b64encode(s.sig).decode() for s in bundle.dsse_envelope.signatures}


def check_tlog_entries(
    bundle: Bundle, trusted_root_json: bytes | None, *, subject: str | None = None
) -> TlogOutcome:
    """Verify every log entry of a key-based ``bundle`` (already signature-checked) against
    ``trusted_root_json``; with no trusted root, report them as unchecked."""
    entries = bundle.verification_material.tlog_entries
    if not entries:
        return TlogOutcome(0, 0, None)
    if trusted_root_json is None:
        return TlogOutcome(
            len(entries), 0, "no trusted root that lists the log was given (--trusted-root)"
        )
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import TransparencyLogEntry, TrustedRoot
    from sigstore_models.trustroot import v1 as trustroot_v1

    try:
        keyring = TrustedRoot(trustroot_v1.TrustedRoot.from_json(trusted_root_json)).rekor_keyring(
            KeyringPurpose.VERIFY
        )
    except (SigstoreError, ValueError) as exc:
        raise TlogEntryInvalid(f"unusable trusted root: {exc}", subject=subject) from exc
    signed = _bundle_signatures(bundle)
    for index, inner in enumerate(entries):
        where = f"tlogEntries[{index}] (log index {inner.log_index})"
        try:
            TransparencyLogEntry(inner)._verify(keyring)
            body = json.loads(inner.canonicalized_body)
        except (SigstoreError, ValueError, LookupError) as exc:
            raise TlogEntryInvalid(f"{where}: {exc}", subject=subject) from exc
        if not isinstance(body, dict) or not (_logged_signatures(body) & signed):
            raise TlogEntryInvalid(
                f"{where}: the logged entry is about another signature", subject=subject
            )
    return TlogOutcome(len(entries), len(entries), None)
