"""Rekor log entries: v1 bodies, the signed entry timestamp (SET) and bundle ``tlogEntries``.

Entry bodies are Rekor v1 ``hashedrekord`` 0.0.1 (a signature over a SHA-256 digest) and ``dsse``
0.0.1 (a DSSE envelope), serialised as RFC 8785 canonical JSON (the ``rfc8785`` package that
sigstore-python uses). The SET is the log key's signature over the canonical JSON of
``{body, integratedTime, logID, logIndex}``, exactly as Rekor v1 signs it and as sigstore-python
(``TransparencyLogEntry._encode_canonical``) and sigstore-js (``toVerificationPayload``) rebuild
it. :func:`verify_tlog_entry` checks an entry completely and offline: log id, SET, checkpoint
signature and origin, inclusion proof against the checkpoint, and that the body is about the
signature it accompanies. Hand-written only where no public API exists: sigstore-python verifies
these for its keyless ``Verifier`` but exposes no way to do it for a key-based bundle (#1244).
Rekor v2's ``0.0.2`` bodies (:mod:`airseal.trustroot.tlog.rekor_v2`) are accepted too: they come
without a SET, so their inclusion proof and signed checkpoint are required.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import rfc8785

from airseal.trustroot.errors import InvalidSignature, LogProofError, TrustrootError
from airseal.trustroot.keys import PublicKey, spki_der, spki_pem, verify_message
from airseal.trustroot.signer import Signer
from airseal.trustroot.tlog.checkpoint import Checkpoint, verify_checkpoint
from airseal.trustroot.tlog.merkle import HASH_SIZE, leaf_hash, verify_inclusion

HASHEDREKORD = "hashedrekord"
DSSE = "dsse"
API_VERSION = "0.0.1"
API_VERSION_V2 = "0.0.2"
"""Rekor v2's entries (:mod:`airseal.trustroot.tlog.rekor_v2`): no SET, the proof is the
inclusion proof against a signed checkpoint."""
MAX_BODY_BYTES = 256 * 1024
MAX_PROOF_HASHES = 64


def log_id(key: PublicKey) -> bytes:
    """Rekor's log id: SHA-256 of the log key's DER SPKI."""
    return hashlib.sha256(spki_der(key)).digest()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hashedrekord_body(sha256_digest: bytes, signature: bytes, public_key: PublicKey) -> bytes:
    """Canonical ``hashedrekord`` 0.0.1 body for a signature over a SHA-256 digest."""
    return rfc8785.dumps(
        {
            "apiVersion": API_VERSION,
            "kind": HASHEDREKORD,
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": sha256_digest.hex()}},
                "signature": {
                    "content": _b64(signature),
                    "publicKey": {"content": _b64(spki_pem(public_key))},
                },
            },
        }
    )


def dsse_body(envelope_json: bytes, payload: bytes, signature: bytes, key: PublicKey) -> bytes:
    """Canonical ``dsse`` 0.0.1 body: envelope and payload hashes and the one signature."""
    return rfc8785.dumps(
        {
            "apiVersion": API_VERSION,
            "kind": DSSE,
            "spec": {
                "envelopeHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(envelope_json).hexdigest(),
                },
                "payloadHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(payload).hexdigest(),
                },
                "signatures": [{"signature": _b64(signature), "verifier": _b64(spki_pem(key))}],
            },
        }
    )


def version_of_body(body: bytes) -> str | None:
    """The ``apiVersion`` of an entry body (canonical JSON puts it first: read without parsing
    when it is there), None when the body has none."""
    for version in (API_VERSION, API_VERSION_V2):
        if body.startswith(b'{"apiVersion":"%s",' % version.encode()):
            return version
    try:
        value = json.loads(body).get("apiVersion")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def dsse_envelope_json(envelope: Any) -> bytes:
    """The bytes a ``dsse`` body's ``envelopeHash`` is over, as this log writes them: the
    envelope's JSON with sorted keys and no spaces (an endpoint rebuilds them from the bundle)."""
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()


def canonical_dsse_body(envelope: Any, signature_index: int, key: PublicKey) -> bytes:
    """The ``dsse`` body this log writes for signature ``signature_index`` of an envelope: the
    envelope reduced to that one signature, its payload, and ``key`` as the verifier. The
    appliance logs with it and an endpoint rebuilds the leaf with it, so export media need not
    carry the body (``docs/media-format.md`` section 8a)."""
    try:
        signatures = envelope["signatures"]
        if not isinstance(signatures, list) or not 0 <= signature_index < len(signatures):
            raise LogProofError(f"the envelope has no signature {signature_index}")
        one = signatures[signature_index]
        single = {**envelope, "signatures": [one]}
        payload = unb64(envelope["payload"], "dsseEnvelope.payload")
        signature = unb64(one["sig"], f"dsseEnvelope.signatures[{signature_index}].sig")
    except (KeyError, TypeError) as exc:
        raise LogProofError(f"the DSSE envelope lacks {exc}") from None
    return dsse_body(dsse_envelope_json(single), payload, signature, key)


def body_key(body: bytes) -> PublicKey:
    """The public key a ``dsse`` or ``hashedrekord`` 0.0.1 body names (its verifier)."""
    from airseal.trustroot.keys import load_public_key

    try:
        spec = json.loads(body)["spec"]
        if "signatures" in spec:
            if len(spec["signatures"]) != 1:
                raise LogProofError("the dsse entry body does not hold exactly one signature")
            pem = spec["signatures"][0]["verifier"]
        else:
            pem = spec["signature"]["publicKey"]["content"]
        return load_public_key(unb64(pem, "the body's public key"))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LogProofError(f"the log entry body names no readable key ({exc})") from None
    except LogProofError:
        raise
    except TrustrootError as exc:
        raise LogProofError(f"the log entry body's key is unreadable ({exc.detail})") from None


def set_payload(body: bytes, integrated_time: int, log_id_bytes: bytes, log_index: int) -> bytes:
    """The bytes a SET signs: RFC 8785 JSON of body (base64), time, log id (hex) and index.

    Written out directly rather than through ``rfc8785.dumps`` (a fifth of an append's cost):
    base64 and hex need no escaping and the keys are already in RFC 8785 order; the tests check
    it equals ``rfc8785.dumps`` of the same object.
    """
    if integrated_time < 0 or log_index < 0:
        raise ValueError("negative time or index")
    return (
        f'{{"body":"{_b64(body)}","integratedTime":{integrated_time},'
        f'"logID":"{log_id_bytes.hex()}","logIndex":{log_index}}}'
    ).encode("ascii")


def sign_set(
    signer: Signer, body: bytes, integrated_time: int, log_index: int,
    *, log_id_bytes: bytes | None = None,
) -> bytes:
    """The SET of one entry. ``log_id_bytes`` (the signer's :func:`log_id`) may be passed by a
    caller signing many entries with one key: deriving it serialises the key every time."""
    lid = log_id(signer.public_key) if log_id_bytes is None else log_id_bytes
    return signer.sign_message(set_payload(body, integrated_time, lid, log_index))


@dataclass(frozen=True)
class InclusionProof:
    log_index: int
    tree_size: int
    root_hash: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str


@dataclass(frozen=True)
class TlogEntry:
    """One ``verificationMaterial.tlogEntries`` item of a Sigstore bundle."""

    log_index: int
    log_id: bytes
    kind: str
    version: str
    integrated_time: int
    body: bytes
    set: bytes | None
    proof: InclusionProof | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "logIndex": str(self.log_index),
            "logId": {"keyId": _b64(self.log_id)},
            "kindVersion": {"kind": self.kind, "version": self.version},
            "integratedTime": str(self.integrated_time),
        }
        if self.set is not None:
            out["inclusionPromise"] = {"signedEntryTimestamp": _b64(self.set)}
        if self.proof is not None:
            out["inclusionProof"] = {
                "logIndex": str(self.proof.log_index),
                "rootHash": _b64(self.proof.root_hash),
                "treeSize": str(self.proof.tree_size),
                "hashes": [_b64(h) for h in self.proof.hashes],
                "checkpoint": {"envelope": self.proof.checkpoint},
            }
        out["canonicalizedBody"] = _b64(self.body)
        return out

    @classmethod
    def from_json(cls, data: Any) -> TlogEntry:
        """Parse one bundle ``tlogEntries`` item (hostile input: every field checked)."""
        if not isinstance(data, dict):
            raise LogProofError("a tlogEntries item is not an object")
        try:
            kind_version = data["kindVersion"]
            body = unb64(data["canonicalizedBody"], "canonicalizedBody")
            if len(body) > MAX_BODY_BYTES:
                raise LogProofError("canonicalizedBody is too large")
            promise = data.get("inclusionPromise")
            raw_proof = data.get("inclusionProof")
            proof = None
            if raw_proof is not None:
                hashes = raw_proof.get("hashes", [])
                if not isinstance(hashes, list) or len(hashes) > MAX_PROOF_HASHES:
                    raise LogProofError("inclusionProof.hashes is not a short list")
                proof = InclusionProof(
                    log_index=_int(raw_proof["logIndex"], "inclusionProof.logIndex"),
                    tree_size=_int(raw_proof["treeSize"], "inclusionProof.treeSize"),
                    root_hash=unb64(raw_proof["rootHash"], "inclusionProof.rootHash"),
                    hashes=tuple(unb64(h, "inclusionProof.hashes") for h in hashes),
                    checkpoint=_str(raw_proof["checkpoint"]["envelope"], "checkpoint.envelope"),
                )
            return cls(
                log_index=_int(data["logIndex"], "logIndex"),
                log_id=unb64(data["logId"]["keyId"], "logId.keyId"),
                kind=_str(kind_version["kind"], "kindVersion.kind"),
                version=_str(kind_version["version"], "kindVersion.version"),
                integrated_time=_int(data.get("integratedTime", "0"), "integratedTime"),
                body=body,
                set=(
                    None
                    if promise is None
                    else unb64(promise["signedEntryTimestamp"], "signedEntryTimestamp")
                ),
                proof=proof,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise LogProofError(f"a tlogEntries item lacks or mistypes {exc}") from None


def unb64(value: Any, what: str) -> bytes:
    """A base64 string field of an entry or a Rekor answer, strictly (a typed error otherwise)."""
    if not isinstance(value, str):
        raise LogProofError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:  # binascii.Error, or a non-ASCII str
        raise LogProofError(f"{what} is not base64") from None


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise LogProofError(f"{what} is not an integer")
    text = str(value)
    if not text.isdigit() or len(text) > 20:
        raise LogProofError(f"{what} is not a non-negative integer")
    return int(text)


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise LogProofError(f"{what} is not a string")
    return value


@dataclass(frozen=True)
class SignedContent:
    """What the bundle says was signed, to compare with the log entry's body."""

    signature: bytes
    sha256_digest: bytes
    """The signed digest (hashedrekord) or the DSSE payload's SHA-256 (dsse)."""


def _body_matches(entry: TlogEntry, signed: SignedContent) -> None:
    try:
        body = json.loads(entry.body)
        if body.get("kind") != entry.kind or body.get("apiVersion") != entry.version:
            raise LogProofError(
                f"the entry body is {body.get('kind')}/{body.get('apiVersion')}, "
                f"kindVersion says {entry.kind}/{entry.version}"
            )
        spec = body["spec"]
        expected_digest = signed.sha256_digest.hex()
        if entry.kind == HASHEDREKORD and entry.version == API_VERSION:
            signature = spec["signature"]["content"]
            digest = spec["data"]["hash"]["value"]
        elif entry.kind == DSSE and entry.version == API_VERSION:
            if len(spec["signatures"]) != 1:
                raise LogProofError("the dsse entry body does not hold exactly one signature")
            signature = spec["signatures"][0]["signature"]
            digest = spec["payloadHash"]["value"]
        elif entry.kind in (HASHEDREKORD, DSSE) and entry.version == API_VERSION_V2:
            if entry.kind == HASHEDREKORD:
                inner = spec["hashedRekordV002"]
                data, signatures = inner["data"], [inner["signature"]]
            else:
                inner = spec["dsseV002"]
                data, signatures = inner["payloadHash"], inner["signatures"]
            if len(spec) != 1 or len(signatures) != 1 or data["algorithm"] != "SHA2_256":
                raise LogProofError(f"the {entry.kind} 0.0.2 body does not hold exactly one "
                                    "signature over a SHA2_256 digest")
            signature, digest = signatures[0]["content"], data["digest"]
            expected_digest = _b64(signed.sha256_digest)
        else:
            raise LogProofError(f"unsupported log entry kind {entry.kind}/{entry.version}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LogProofError(f"the log entry body is malformed ({exc})") from None
    if signature != _b64(signed.signature):
        raise LogProofError(
            "the log entry records a different signature", check="tlog.body.signature"
        )
    if digest != expected_digest:
        raise LogProofError("the log entry records a different digest", check="tlog.body.digest")


def verify_tlog_entry(
    entry: TlogEntry,
    *,
    log_key: PublicKey,
    name: str,
    origin: str | None,
    signed: SignedContent | None,
    require_proof: bool = True,
    key_id: bytes | None = None,
) -> Checkpoint | None:
    """Check an entry fully against the log key; returns the checkpoint it was proved against.

    ``key_id``: the log id and checkpoint key id when they are not :func:`log_id` (a Rekor v2
    log's C2SP key id). Fails closed: wrong log id, a SET that does not verify (none is needed
    for a Rekor v2 ``0.0.2`` entry, whose inclusion proof and checkpoint are then required), a
    checkpoint not signed by the log (or for another origin), an inclusion proof that does not
    reach the checkpoint's root, or a body about a different signature or digest.
    """
    expected_id = log_id(log_key) if key_id is None else key_id
    if entry.log_id != expected_id:
        raise LogProofError(
            f"entry is from log {entry.log_id.hex()[:16]}, expected {expected_id.hex()[:16]}",
            check="tlog.logid",
        )
    if signed is not None:
        _body_matches(entry, signed)
    if entry.version == API_VERSION_V2 and entry.set is None:
        require_proof = True  # Rekor v2: no SET, the checkpoint and inclusion proof are all
    elif entry.set is None:
        raise LogProofError("entry has no signed entry timestamp", check="tlog.set")
    else:
        try:
            verify_message(
                log_key,
                entry.set,
                set_payload(entry.body, entry.integrated_time, entry.log_id, entry.log_index),
            )
        except InvalidSignature:
            raise LogProofError(
                "the signed entry timestamp does not verify with the log key", check="tlog.set"
            ) from None
    if entry.version == API_VERSION_V2 and version_of_body(entry.body) != API_VERSION_V2:
        raise LogProofError("the entry says 0.0.2, its body does not", check="tlog.body")
    if entry.proof is None:
        if require_proof:
            raise LogProofError("entry has no inclusion proof", check="tlog.inclusion")
        return None
    proof = entry.proof
    checkpoint = verify_checkpoint(proof.checkpoint, key=log_key, name=name, origin=origin,
                                   hint=key_id)
    if checkpoint.size != proof.tree_size or checkpoint.root_hash != proof.root_hash:
        raise LogProofError(
            f"inclusion proof is for size {proof.tree_size}, its checkpoint for {checkpoint.size} "
            "or another root",
            check="tlog.checkpoint",
        )
    if len(proof.root_hash) != HASH_SIZE:
        raise LogProofError("inclusion proof root is not 32 bytes", check="tlog.inclusion")
    try:
        verify_inclusion(
            leaf_hash(entry.body), proof.log_index, proof.tree_size, proof.hashes, proof.root_hash
        )
    except LogProofError as exc:
        raise LogProofError(exc.detail, check="tlog.inclusion") from None
    return checkpoint


def signed_content_of_bundle(bundle: Any) -> SignedContent:
    """What a bundle's log entry must record: the signature, and the signed digest
    (``messageSignature``) or the SHA-256 of the DSSE payload (``dsseEnvelope``)."""
    try:
        if "messageSignature" in bundle:
            sig = bundle["messageSignature"]
            return SignedContent(
                unb64(sig["signature"], "messageSignature.signature"),
                unb64(sig["messageDigest"]["digest"], "messageDigest.digest"),
            )
        envelope = bundle["dsseEnvelope"]
        if len(envelope["signatures"]) != 1:
            raise LogProofError("a DSSE envelope with a log entry must hold exactly one signature")
        return SignedContent(
            unb64(envelope["signatures"][0]["sig"], "dsseEnvelope.signatures[0].sig"),
            hashlib.sha256(unb64(envelope["payload"], "dsseEnvelope.payload")).digest(),
        )
    except (KeyError, TypeError) as exc:
        raise LogProofError(f"the bundle lacks {exc} needed to match its log entry") from None


def verify_bundle_log_entry(
    bundle: Any, *, log_key: PublicKey, name: str, origin: str
) -> tuple[TlogEntry, Checkpoint]:
    """A parsed bundle (JSON object) is in the log: exactly one entry from this log, about this
    bundle's own signature, with a valid SET, inclusion proof and signed checkpoint. Fails closed
    on a missing entry: a caller whose policy requires the log must not accept one without."""
    try:
        items = bundle["verificationMaterial"].get("tlogEntries") or []
    except (KeyError, TypeError, AttributeError):
        raise LogProofError("the bundle has no verificationMaterial") from None
    ours = [
        TlogEntry.from_json(item)
        for item in items
        if isinstance(item, dict)
        and isinstance(item.get("logId"), dict)
        and item["logId"].get("keyId") == _b64(log_id(log_key))
    ]
    if len(ours) != 1:
        raise LogProofError(
            f"the bundle carries {len(ours)} entries of log {origin}, expected exactly one",
            check="tlog.entry",
            hint="sign it again on an appliance whose log is on, or ask for the logged bundle",
        )
    checkpoint = verify_tlog_entry(
        ours[0],
        log_key=log_key,
        name=name,
        origin=origin,
        signed=signed_content_of_bundle(bundle),
    )
    assert checkpoint is not None  # require_proof=True
    return ours[0], checkpoint
