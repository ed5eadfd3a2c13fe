"""The Rekor v2 (rekor-tiles) shapes: ``CreateEntryRequest``, v0.0.2 entry bodies, the answer.

Rekor v2 takes ``POST /api/v2/log/entries`` with a ``CreateEntryRequest`` holding one of
``hashedRekordRequestV002`` (the digest, the signature and its verifier) or ``dsseRequestV002``
(the envelope and its verifiers), and answers with a ``TransparencyLogEntry``: the very object a
bundle's ``tlogEntries`` holds, with ``kindVersion`` ``hashedrekord``/``dsse`` ``0.0.2``, an
inclusion proof with a signed checkpoint, and **no SET** (``inclusionPromise``) and no
integrated time: the proof against a checkpoint signed by the log key is the whole proof. The
log id is the log's C2SP checkpoint key id (:func:`checkpoint_key_id`: for an ECDSA key the
SHA-256 of its DER SPKI, Rekor v1's log id; for Ed25519, what the public-good Rekor v2 logs use,
a hash of its name and raw key), also the checkpoint signature's key hint; the checkpoint's
origin is the log's name, the host of its URL.
Sources: ``sigstore/rekor-tiles`` ``CLIENTS.md`` and protobuf-specs ``rekor/v2``, as
``sigstore_models.rekor.v2`` and sigstore-python's ``_internal/rekor/client_v2.py`` spell them.

Hand-written, not built with ``sigstore_models``: the canonical body is the RFC 8785 JSON of the
entry (what the leaf hash covers), so the exact dict matters and is written out here as
:mod:`~airseal.trustroot.tlog.entries` does for v0.0.1; this package stays pure and
``mypy --strict`` without pydantic at import. The tests parse every shape made here with
``sigstore_models`` (``extra="forbid"``) to prove the two agree. Pure: JSON values in, values
out or :class:`LogProofError`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from typing import Any

import rfc8785

from airseal.trustroot.errors import KeyFormatError, LogProofError, VerificationError
from airseal.trustroot.keys import (
    KeyAlgorithm,
    PublicKey,
    key_algorithm,
    load_public_key,
    spki_der,
    spki_pem,
    verify_digest,
    verify_message,
)
from airseal.trustroot.tlog import entries
from airseal.trustroot.tlog.checkpoint import Checkpoint

API_VERSION = entries.API_VERSION_V2
SHA2_256 = "SHA2_256"
_DIGEST_KEYS = (KeyAlgorithm.ECDSA_P256, KeyAlgorithm.RSA_2048, KeyAlgorithm.RSA_3072,
                KeyAlgorithm.RSA_4096)
"""Key types whose Sigstore key details name SHA-256, the digest the appliance signs: a P-384
key's details say SHA-384 and Ed25519 cannot sign a digest, so a Rekor v2 would refuse them."""


def checkpoint_key_id(key: PublicKey, name: str) -> bytes:
    """A Rekor v2 log's id: the C2SP signed-note key id of its key under its name. ECDSA: the
    SHA-256 of the DER SPKI (Rekor v1's log id); Ed25519: SHA-256(name, 0x0A, 0x01, the raw key);
    RSA: SHA-256(name, 0x0A, 0xFF, ``PKIX-RSA-PKCS#1v1.5``, the DER SPKI)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    if isinstance(key, ec.EllipticCurvePublicKey):
        return hashlib.sha256(spki_der(key)).digest()
    prefix = name.encode("utf-8") + b"\n"
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return hashlib.sha256(prefix + b"\x01" + raw).digest()
    return hashlib.sha256(prefix + b"\xffPKIX-RSA-PKCS#1v1.5" + spki_der(key)).digest()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _verifier(key: PublicKey, *, dsse: bool) -> dict[str, Any]:
    algorithm = key_algorithm(key)
    if algorithm not in _DIGEST_KEYS and not (dsse and algorithm is KeyAlgorithm.ED25519):
        raise LogProofError(
            f"a {algorithm.label} key cannot be logged in a Rekor v2 (it takes SHA-256 "
            "signatures by P-256 or RSA keys, and Ed25519 for DSSE)",
            check="rekor.v2.key", hint="log it in a Rekor v1, or sign with a P-256 key",
        )
    return {"keyDetails": algorithm.value, "publicKey": {"rawBytes": _b64(spki_der(key))}}


def hashedrekord_request(sha256_digest: bytes, signature: bytes, key: PublicKey) -> dict[str, Any]:
    """The ``CreateEntryRequest`` for a signature over a SHA-256 digest."""
    return {"hashedRekordRequestV002": {
        "digest": _b64(sha256_digest),
        "signature": {"content": _b64(signature), "verifier": _verifier(key, dsse=False)},
    }}


def dsse_request(envelope: dict[str, Any], key: PublicKey) -> dict[str, Any]:
    """The ``CreateEntryRequest`` for a one-signature DSSE envelope."""
    return {"dsseRequestV002": {"envelope": envelope, "verifiers": [_verifier(key, dsse=True)]}}


def hashedrekord_body(sha256_digest: bytes, signature: bytes, key: PublicKey) -> bytes:
    """Canonical ``hashedrekord`` 0.0.2 body (what Rekor v2 logs for a hashedrekord request)."""
    return rfc8785.dumps({
        "apiVersion": API_VERSION, "kind": entries.HASHEDREKORD,
        "spec": {"hashedRekordV002": {
            "data": {"algorithm": SHA2_256, "digest": _b64(sha256_digest)},
            "signature": {"content": _b64(signature), "verifier": _verifier(key, dsse=False)},
        }},
    })


def dsse_body(payload: bytes, signature: bytes, key: PublicKey) -> bytes:
    """Canonical ``dsse`` 0.0.2 body: the payload's SHA-256 and the one signature (Rekor v2
    keeps no envelope hash: a DSSE envelope has no canonical form)."""
    return rfc8785.dumps({
        "apiVersion": API_VERSION, "kind": entries.DSSE,
        "spec": {"dsseV002": {
            "payloadHash": {"algorithm": SHA2_256,
                            "digest": _b64(hashlib.sha256(payload).digest())},
            "signatures": [{"content": _b64(signature), "verifier": _verifier(key, dsse=True)}],
        }},
    })


def _key_of(verifier: Any, what: str) -> PublicKey:
    try:
        raw = entries.unb64(verifier["publicKey"]["rawBytes"], f"{what}.publicKey.rawBytes")
        details = verifier["keyDetails"]
    except (KeyError, TypeError):
        raise LogProofError(f"{what} lacks publicKey.rawBytes or keyDetails (this log takes "
                            "self-managed keys, not certificates)") from None
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_public_key(spki_pem(load_der_public_key(raw)))  # type: ignore[arg-type]
    except (ValueError, KeyFormatError):
        raise LogProofError(f"{what}.publicKey is not a supported DER public key") from None
    if details != key_algorithm(key).value:
        raise LogProofError(f"{what}.keyDetails {str(details)[:40]!r} does not match the key")
    return key


def accept_request(request: Any) -> tuple[str, bytes]:
    """Check a ``CreateEntryRequest`` (the signature must verify with its verifier) and return
    (kind, canonical 0.0.2 body). Exactly one of the two request kinds; DSSE with exactly one
    signature and one verifier."""
    if not isinstance(request, dict) or len(request) != 1:
        raise LogProofError("a CreateEntryRequest holds exactly one of hashedRekordRequestV002 "
                            "or dsseRequestV002")
    ((field, spec),) = request.items()
    try:
        if field == "hashedRekordRequestV002":
            digest = entries.unb64(spec["digest"], "digest")
            signature = entries.unb64(spec["signature"]["content"], "signature.content")
            key = _key_of(spec["signature"]["verifier"], "signature.verifier")
            if len(digest) != 32:
                raise LogProofError("digest is not a SHA-256 digest (32 bytes)")
            try:
                verify_digest(key, signature, digest)
            except VerificationError as exc:
                raise LogProofError(f"the signature does not verify: {exc.detail}") from None
            return entries.HASHEDREKORD, hashedrekord_body(digest, signature, key)
        if field == "dsseRequestV002":
            from airseal.trustroot.dsse import pae

            envelope, verifiers = spec["envelope"], spec["verifiers"]
            signatures = envelope["signatures"]
            if not isinstance(verifiers, list) or not isinstance(signatures, list) \
                    or len(verifiers) != 1 or len(signatures) != 1:
                raise LogProofError("this log takes DSSE envelopes with exactly one signature "
                                    "and one verifier")
            payload_type = envelope["payloadType"]
            if not isinstance(payload_type, str):
                raise LogProofError("envelope.payloadType is not a string")
            payload = entries.unb64(envelope["payload"], "envelope.payload")
            signature = entries.unb64(signatures[0]["sig"], "envelope.signatures[0].sig")
            key = _key_of(verifiers[0], "verifiers[0]")
            try:
                verify_message(key, signature, pae(payload_type, payload))
            except VerificationError as exc:
                raise LogProofError(f"the DSSE signature does not verify: {exc.detail}") from None
            return entries.DSSE, dsse_body(payload, signature, key)
    except (KeyError, TypeError, AttributeError) as exc:
        raise LogProofError(f"the {field} request lacks or mistypes {exc}") from None
    raise LogProofError(f"{str(field)[:60]!r} is not a request kind this log takes "
                        "(hashedRekordRequestV002, dsseRequestV002)")


def transparency_log_entry_json(entry: entries.TlogEntry, log_id: bytes) -> dict[str, Any]:
    """The ``TransparencyLogEntry`` Rekor v2 answers with: no SET, no integrated time, the
    log's :func:`checkpoint_key_id` as its id."""
    out = entries.TlogEntry(
        log_index=entry.log_index, log_id=log_id, kind=entry.kind, version=entry.version,
        integrated_time=0, body=entry.body, set=None, proof=entry.proof,
    ).to_json()
    del out["integratedTime"]  # proto3 JSON leaves out a zero value
    return out


def parse_transparency_log_entry(data: Any) -> entries.TlogEntry:
    """A Rekor v2 answer as a bundle entry. Hostile input: fields checked, 0.0.2 required, a SET
    refused (a Rekor v2 has none: one would come from something else), a proof required. The
    integrated time is dropped (rekor-tiles ``CLIENTS.md``: always 0, clients MUST ignore it):
    without a SET nothing vouches for it, so it is not stored either."""
    entry = entries.TlogEntry.from_json(data)
    if entry.integrated_time:
        entry = replace(entry, integrated_time=0)
    if entry.kind not in (entries.HASHEDREKORD, entries.DSSE) or entry.version != API_VERSION:
        raise LogProofError(f"the answer is a {entry.kind[:40]} {entry.version[:20]} entry, "
                            f"expected hashedrekord or dsse {API_VERSION}", check="tlog.kind")
    if entry.set is not None:
        raise LogProofError("the answer carries a SET: a Rekor v2 has none", check="tlog.set")
    if entry.proof is None:
        raise LogProofError("the answer has no inclusion proof", check="tlog.inclusion")
    if entries.version_of_body(entry.body) != API_VERSION:
        raise LogProofError("the canonicalized body is not a 0.0.2 entry", check="tlog.body")
    return entry


def verify_entry(
    entry: entries.TlogEntry, *, log_key: PublicKey, name: str | None,
    signed: entries.SignedContent,
) -> Checkpoint:
    """Verify a Rekor v2 answer: log id, checkpoint signature and origin (exactly the log's
    name: the host of its URL), inclusion of this body, and a body about ``signed``. ``name``
    None (only the key is known): the checkpoint's own origin line, whose signature by the key
    under that name then proves it."""
    if entry.proof is None:
        raise LogProofError("the entry has no inclusion proof", check="tlog.inclusion")
    signer = name if name is not None else Checkpoint.parse(
        entry.proof.checkpoint.split("\n\n", 1)[0] + "\n").origin
    checkpoint = entries.verify_tlog_entry(
        entry, log_key=log_key, name=signer, origin=signer, signed=signed,
        key_id=checkpoint_key_id(log_key, signer),
    )
    assert checkpoint is not None  # require_proof
    return checkpoint


def request_for_bundle(bundle: Any, key: PublicKey) -> dict[str, Any]:
    """The ``CreateEntryRequest`` of a bundle's one signature (message signature or DSSE)."""
    try:
        if "messageSignature" in bundle:
            sig = bundle["messageSignature"]
            return hashedrekord_request(
                entries.unb64(sig["messageDigest"]["digest"], "messageDigest.digest"),
                entries.unb64(sig["signature"], "messageSignature.signature"), key)
        envelope = bundle["dsseEnvelope"]
    except (KeyError, TypeError) as exc:
        raise LogProofError(f"the bundle to log lacks {exc}") from None
    return dsse_request(json.loads(json.dumps(envelope)), key)
