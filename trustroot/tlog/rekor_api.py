"""The Rekor v1 REST shapes: log entries, log info, consistency proofs, proposed entries.

Rekor v1 (``sigstore/rekor`` ``openapi.yaml``) answers with a ``LogEntry``: an object keyed by the
entry UUID (the hex RFC 6962 leaf hash, optionally prefixed by a 16-hex tree id) whose value holds
``body`` (base64), ``integratedTime``, ``logID`` (hex), ``logIndex`` and ``verification``
(``signedEntryTimestamp`` base64, ``inclusionProof`` with hex hashes and the checkpoint). Bundles
carry the same facts as ``tlogEntries`` (base64 hashes, string integers): this module converts
both ways, so ``airseal log serve`` and the ``--rekor-url`` client share one definition, and
verifies what a Rekor returns with :func:`verify_rekor_entry`. Pure: bytes and JSON values in,
values out or :class:`LogProofError`.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from airseal.trustroot.errors import KeyFormatError, LogProofError, VerificationError
from airseal.trustroot.keys import PublicKey, load_public_key, verify_digest, verify_message
from airseal.trustroot.tlog import entries
from airseal.trustroot.tlog.checkpoint import Checkpoint, SignedNote, key_hint
from airseal.trustroot.tlog.entries import unb64
from airseal.trustroot.tlog.merkle import leaf_hash

MAX_RESPONSE_BYTES = 1024 * 1024
MAX_RETRIEVE = 10
"""Rekor's limit on items of one ``entries/retrieve`` query."""
_UUID = re.compile(r"^(?:[0-9a-f]{16})?([0-9a-f]{64})$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def entry_uuid(body: bytes) -> str:
    """The Rekor v1 entry UUID: the hex leaf hash of the canonical body."""
    return leaf_hash(body).hex()


def leaf_of_uuid(uuid: str) -> bytes:
    """The leaf hash a UUID names (64 hex, or 80 hex with the tree id in front)."""
    match = _UUID.match(uuid.lower())
    if match is None:
        raise LogProofError(f"entry UUID {uuid[:100]!r} is not 64 or 80 hexadecimal digits")
    return bytes.fromhex(match.group(1))


def tree_id(log_id: bytes) -> int:
    """A stable positive int64 tree id for a log (Rekor's ``treeID`` is Trillian's int64)."""
    return int.from_bytes(log_id[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


def log_entry_json(entry: entries.TlogEntry) -> dict[str, Any]:
    """The Rekor v1 ``LogEntry`` of an entry (with its SET and inclusion proof)."""
    value: dict[str, Any] = {
        "body": base64.b64encode(entry.body).decode("ascii"),
        "integratedTime": entry.integrated_time,
        "logID": entry.log_id.hex(),
        "logIndex": entry.log_index,
    }
    verification: dict[str, Any] = {}
    if entry.set is not None:
        verification["signedEntryTimestamp"] = base64.b64encode(entry.set).decode("ascii")
    if entry.proof is not None:
        verification["inclusionProof"] = {
            "checkpoint": entry.proof.checkpoint,
            "hashes": [h.hex() for h in entry.proof.hashes],
            "logIndex": entry.proof.log_index,
            "rootHash": entry.proof.root_hash.hex(),
            "treeSize": entry.proof.tree_size,
        }
    value["verification"] = verification
    return {entry_uuid(entry.body): value}


def log_info_json(checkpoint: Checkpoint, note: str, log_id: bytes) -> dict[str, Any]:
    """Rekor v1 ``LogInfo``: the signed tree head is the checkpoint's signed note."""
    return {
        "rootHash": checkpoint.root_hash.hex(),
        "treeSize": checkpoint.size,
        "signedTreeHead": note,
        "treeID": str(tree_id(log_id)),
        "inactiveShards": [],
    }


def consistency_json(root: bytes, hashes: list[bytes]) -> dict[str, Any]:
    return {"rootHash": root.hex(), "hashes": [h.hex() for h in hashes]}


def error_json(code: int, message: str) -> dict[str, Any]:
    """Rekor's ``Error`` object."""
    return {"code": code, "message": message}


# -- proposed entries ---------------------------------------------------------------------------


def proposed_hashedrekord(
    sha256_digest: bytes, signature: bytes, public_key: PublicKey
) -> dict[str, Any]:
    """The ``hashedrekord`` 0.0.1 ``ProposedEntry`` a client POSTs to ``/api/v1/log/entries``."""
    return json.loads(entries.hashedrekord_body(sha256_digest, signature, public_key))  # type: ignore[no-any-return]


def proposed_dsse(envelope_json: bytes, public_key: PublicKey) -> dict[str, Any]:
    """The ``dsse`` 0.0.1 ``ProposedEntry``: the envelope and its verifier, as Rekor takes them."""
    from airseal.trustroot.keys import spki_pem

    return {
        "apiVersion": entries.API_VERSION,
        "kind": entries.DSSE,
        "spec": {
            "proposedContent": {
                "envelope": envelope_json.decode("utf-8"),
                "verifiers": [base64.b64encode(spki_pem(public_key)).decode("ascii")],
            }
        },
    }


def accept_hashedrekord(proposed: Any) -> bytes:
    """Check a proposed ``hashedrekord`` 0.0.1 entry and return its canonical body.

    The signature must verify over the given SHA-256 digest with the given key (ECDSA or RSA:
    Ed25519 signs content, never a digest), exactly what Rekor v1 checks before it logs one.
    """
    if not isinstance(proposed, dict):
        raise LogProofError("the proposed entry is not a JSON object")
    kind, version = proposed.get("kind"), proposed.get("apiVersion")
    if kind != entries.HASHEDREKORD or version != entries.API_VERSION:
        raise LogProofError(
            f"entry kind {str(kind)[:40]}/{str(version)[:20]} is not accepted here; this log "
            "takes hashedrekord 0.0.1 and dsse 0.0.1"
        )
    try:
        spec = proposed["spec"]
        digest_obj = spec["data"]["hash"]
        signature_b64 = spec["signature"]["content"]
        key_b64 = spec["signature"]["publicKey"]["content"]
    except (KeyError, TypeError):
        raise LogProofError(
            "the hashedrekord spec lacks data.hash, signature.content or "
            "signature.publicKey.content"
        ) from None
    if not isinstance(digest_obj, dict) or digest_obj.get("algorithm") != "sha256":
        raise LogProofError("the hashedrekord data.hash algorithm must be sha256")
    digest_hex = digest_obj.get("value")
    if not isinstance(digest_hex, str) or not _HEX64.match(digest_hex):
        raise LogProofError("the hashedrekord data.hash value is not 64 lower-case hex digits")
    signature = unb64(signature_b64, "signature.content")
    try:
        key = load_public_key(unb64(key_b64, "signature.publicKey.content"))
        verify_digest(key, signature, bytes.fromhex(digest_hex))
    except KeyFormatError as exc:
        raise LogProofError(f"signature.publicKey: {exc.detail}") from None
    except VerificationError as exc:
        raise LogProofError(f"the signature does not verify: {exc.detail}") from None
    return entries.hashedrekord_body(bytes.fromhex(digest_hex), signature, key)


def accept_dsse(proposed: Any) -> bytes:
    """Check a proposed ``dsse`` 0.0.1 entry (``proposedContent``: the envelope as a string and
    its verifiers) and return the canonical body Rekor v1 stores: the envelope's and payload's
    SHA-256 and the signature with its verifier. Exactly one signature and one verifier (what
    the appliance signs); the signature must verify over the DSSE PAE with that verifier."""
    from airseal.trustroot.dsse import pae

    try:
        content = proposed["spec"]["proposedContent"]
        envelope_text, verifiers = content["envelope"], content["verifiers"]
        envelope = json.loads(envelope_text)
        payload_type, payload_b64 = envelope["payloadType"], envelope["payload"]
        signatures = envelope["signatures"]
    except (KeyError, TypeError, ValueError):
        raise LogProofError(
            "the dsse spec lacks proposedContent.envelope (a DSSE envelope as a JSON string) "
            "or proposedContent.verifiers"
        ) from None
    if not isinstance(payload_type, str) or not isinstance(verifiers, list):
        raise LogProofError("the DSSE payloadType or the verifiers are mistyped")
    if not isinstance(signatures, list) or len(signatures) != 1 or len(verifiers) != 1:
        raise LogProofError("this log takes DSSE envelopes with exactly one signature and verifier")
    payload = unb64(payload_b64, "envelope.payload")
    signature = unb64(signatures[0].get("sig") if isinstance(signatures[0], dict) else None,
                       "envelope.signatures[0].sig")
    try:
        key = load_public_key(unb64(verifiers[0], "proposedContent.verifiers[0]"))
        verify_message(key, signature, pae(payload_type, payload))
    except KeyFormatError as exc:
        raise LogProofError(f"proposedContent.verifiers[0]: {exc.detail}") from None
    except VerificationError as exc:
        raise LogProofError(f"the DSSE signature does not verify: {exc.detail}") from None
    return entries.dsse_body(envelope_text.encode("utf-8"), payload, signature, key)


def accept_proposed(proposed: Any) -> tuple[str, bytes]:
    """(kind, canonical body) of a proposed ``hashedrekord`` or ``dsse`` 0.0.1 entry, whose
    signature verified."""
    kind = proposed.get("kind") if isinstance(proposed, dict) else None
    if kind == entries.DSSE and proposed.get("apiVersion") == entries.API_VERSION:
        return entries.DSSE, accept_dsse(proposed)
    return entries.HASHEDREKORD, accept_hashedrekord(proposed)


# -- reading what a Rekor returns --------------------------------------------------------------


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LogProofError(f"{what} is not a non-negative integer")
    return value


def _hex32(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not _HEX64.match(value.lower()):
        raise LogProofError(f"{what} is not a 64-digit hex hash")
    return bytes.fromhex(value)


def parse_log_entry(data: Any) -> entries.TlogEntry:
    """One Rekor v1 ``LogEntry`` response (``{uuid: {...}}``) as a bundle entry. Hostile input:
    every field is checked. The UUID is only a key (Rekor makes it the leaf hash, sigstore-js's
    mock a random value): the SET and the inclusion proof are what bind the body."""
    if not isinstance(data, dict) or len(data) != 1:
        raise LogProofError("the Rekor response is not one {uuid: entry} object")
    ((uuid, value),) = data.items()
    if not isinstance(value, dict):
        raise LogProofError("the Rekor entry is not an object")
    body = unb64(value.get("body"), "body")
    if len(body) > entries.MAX_BODY_BYTES:
        raise LogProofError("the Rekor entry body is too large")
    if not isinstance(uuid, str) or len(uuid) > 128:
        raise LogProofError("the Rekor entry UUID is not a short string")
    try:
        parsed = json.loads(body)
        kind, version = parsed["kind"], parsed["apiVersion"]
    except (ValueError, KeyError, TypeError):
        raise LogProofError("the Rekor entry body is not a kind/apiVersion JSON object") from None
    if not isinstance(kind, str) or not isinstance(version, str):
        raise LogProofError("the Rekor entry body's kind or apiVersion is not a string")
    verification = value.get("verification")
    if not isinstance(verification, dict):
        raise LogProofError("the Rekor entry has no verification (SET and inclusion proof)")
    set_b64 = verification.get("signedEntryTimestamp")
    raw_proof = verification.get("inclusionProof")
    proof = None
    if raw_proof is not None:
        if not isinstance(raw_proof, dict):
            raise LogProofError("verification.inclusionProof is not an object")
        hashes = raw_proof.get("hashes", [])
        if not isinstance(hashes, list) or len(hashes) > entries.MAX_PROOF_HASHES:
            raise LogProofError("inclusionProof.hashes is not a short list")
        checkpoint = raw_proof.get("checkpoint")
        if not isinstance(checkpoint, str):
            raise LogProofError("inclusionProof.checkpoint is not a string")
        proof = entries.InclusionProof(
            log_index=_int(raw_proof.get("logIndex"), "inclusionProof.logIndex"),
            tree_size=_int(raw_proof.get("treeSize"), "inclusionProof.treeSize"),
            root_hash=_hex32(raw_proof.get("rootHash"), "inclusionProof.rootHash"),
            hashes=tuple(_hex32(h, "inclusionProof.hashes") for h in hashes),
            checkpoint=checkpoint,
        )
    log_id_hex = value.get("logID")
    return entries.TlogEntry(
        log_index=_int(value.get("logIndex"), "logIndex"),
        log_id=_hex32(log_id_hex, "logID"),
        kind=kind,
        version=version,
        integrated_time=_int(value.get("integratedTime"), "integratedTime"),
        body=body,
        set=None if set_b64 is None else unb64(set_b64, "signedEntryTimestamp"),
        proof=proof,
    )


def checkpoint_signer_name(note_text: str, key: PublicKey) -> str:
    """The name under which ``key`` signed a checkpoint note (the one signature line whose key
    hint is the key's). Used when only the log's key is known, not its name."""
    hint = key_hint(key)
    names = {s.name for s in SignedNote.parse(note_text).signatures if s.key_hint == hint}
    if len(names) != 1:
        raise LogProofError(
            f"the checkpoint carries {len(names)} signer names with the log key's hint "
            f"{hint.hex()}, expected one",
            check="tlog.checkpoint.signature",
        )
    return names.pop()


def verify_rekor_entry(
    entry: entries.TlogEntry,
    *,
    log_key: PublicKey,
    name: str | None,
    signed: entries.SignedContent,
) -> Checkpoint:
    """Verify an entry a Rekor returned: log id, SET, checkpoint signature, inclusion proof and
    a body about ``signed``. ``name`` is the log's signer name (the host of its ``baseUrl``);
    when None it is taken from the checkpoint's signature by ``log_key``. The checkpoint's origin
    must be that name, or Rekor v1's ``<name> - <tree id>``."""
    if entry.proof is None:
        raise LogProofError("the Rekor entry has no inclusion proof", check="tlog.inclusion")
    expected = entries.log_id(log_key)
    if entry.log_id != expected:
        raise LogProofError(
            f"the entry is from log {entry.log_id.hex()[:16]}, the key given is log "
            f"{expected.hex()[:16]}",
            check="tlog.logid",
        )
    signer = name if name is not None else checkpoint_signer_name(entry.proof.checkpoint, log_key)
    checkpoint = entries.verify_tlog_entry(
        entry, log_key=log_key, name=signer, origin=None, signed=signed
    )
    assert checkpoint is not None  # require_proof
    if checkpoint.origin != signer and not checkpoint.origin.startswith(f"{signer} - "):
        raise LogProofError(
            f"the checkpoint is for log {checkpoint.origin!r}, not {signer!r}",
            check="tlog.checkpoint.origin",
        )
    return checkpoint
