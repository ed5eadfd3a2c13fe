"""The log's proofs carried on export media (``airseal/log/``), and their verification.

An export carries three files, all listed (and so covered) by the signed export statement:

- ``log/checkpoint``: the log's latest signed checkpoint *before* the export statement was
  logged (size ``N``), with any witness cosignatures;
- ``log/proofs.json`` (schema 3): the earlier sizes an endpoint may have stored (the checkpoint
  each recent export ended on) and the site log's entries of the exported action bundles, moved
  out of the bundles on the media (which signature of which bundle each records, its index, and
  its body only when the endpoint cannot rebuild it);
- ``log/hashes``: one proof, raw 32-byte hashes, that every entry is in the tree of ``N`` *and*
  that every earlier size is a prefix of it (:func:`.merkle.multi_proof`: every subtree hash
  the verifier cannot compute, each once). Raw bytes, not base64 in the JSON, and one proof
  instead of one per entry and per size, because the hashes are most of what the log adds to an
  export (issue 12's budget: under 64 KiB for 100 actions, wherever they sit in the log).

The export statement itself is logged last, as leaf ``N`` (its bundle carries its own entry,
proved against checkpoint ``N + 1``). The inclusion path of the last leaf of a tree is exactly
the list of the complete subtrees of the tree before it, so that one proof also shows that ``N``
is a prefix of ``N + 1``: the endpoint ends on the checkpoint ``N + 1``, consistent with
everything it saw before, with no proof that the statement would have to list about itself.

:func:`verify_media_log` is the agent's check, pure: the log key and origin (from the site's
trusted root or the endpoint's enrolment), the checkpoint it stored last, the files' bytes, the
export statement's entry and the action bundles (:class:`MediaBundle`: envelope and trusted
signer keys, from which each leaf is rebuilt) in; the checkpoint to store, or a
:class:`LogProofError` naming the file, the check and what to do, out. Hand-written (see
:mod:`.merkle`): no library verifies this layout.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from airseal.trustroot.errors import LogProofError
from airseal.trustroot.keys import PublicKey, spki_der
from airseal.trustroot.tlog.checkpoint import Checkpoint, verify_checkpoint
from airseal.trustroot.tlog.cosignature import WitnessKey, require_quorum
from airseal.trustroot.tlog.entries import (
    API_VERSION,
    DSSE,
    MAX_BODY_BYTES,
    SignedContent,
    TlogEntry,
    _body_matches,
    body_key,
    canonical_dsse_body,
    log_id,
    verify_tlog_entry,
)
from airseal.trustroot.tlog.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    leaf_hash,
    node_hash,
    roots_from_multi_proof,
)
from airseal.trustroot.untrusted_json import load_json

LOG_DIR: Final = "log"
CHECKPOINT_PATH: Final = "log/checkpoint"
PROOFS_PATH: Final = "log/proofs.json"
HASHES_PATH: Final = "log/hashes"
LOG_FILES: Final = (CHECKPOINT_PATH, PROOFS_PATH, HASHES_PATH)
PROOFS_TYPE: Final = "airseal-log-proofs"
SCHEMA_VERSION: Final = 3
"""2: the bundles' entries are carried here, not in the bundles on the media. 3: one proof for
every entry and earlier size, its hashes raw in ``log/hashes``."""
MAX_BUNDLE_PATH: Final = 1024
MAX_PROOFS_BYTES: Final = 4 * 1024 * 1024
MAX_CHECKPOINT_BYTES: Final = 64 * 1024
MAX_PROOFS: Final = 100_000
MAX_HASHES: Final = 1_000_000
MAX_HASHES_BYTES: Final = MAX_HASHES * HASH_SIZE
_REDO = "export again from the appliance; if it happens again, keep this media as evidence"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class CarriedEntry:
    """One log entry (``dsse`` 0.0.1) of a bundle on the media, carried here instead of in the
    bundle's ``tlogEntries``: which signature of which bundle it records and where it is in the
    log. ``body`` is carried only when it is not the canonical body an endpoint rebuilds from
    the bundle and the signer's key (:func:`airseal.trustroot.tlog.entries.canonical_dsse_body`),
    e.g. a body another Rekor wrote. No SET and no integrated time: inclusion in the signed (and
    witnessed) media checkpoint is the proof, and nothing here would vouch for a time."""

    bundle: str
    """The bundle's path as the export statement lists it (relative to ``airseal/``)."""
    signature: int
    """The index of the signature it records in the bundle's DSSE envelope."""
    log_index: int
    body: bytes | None = None


@dataclass(frozen=True)
class MediaProofs:
    """``log/proofs.json`` and ``log/hashes``: the earlier sizes and the bundles' entries, with
    one proof of them all towards ``tree_size`` (:func:`.merkle.multi_proof`)."""

    origin: str
    tree_size: int
    earlier_sizes: tuple[int, ...] = ()
    """Sorted, each in ``(0, tree_size)``."""
    entries: tuple[CarriedEntry, ...] = ()
    hashes: tuple[bytes, ...] = ()
    log_id: bytes = b""
    """The log's id (SHA-256 of its key's DER SPKI), once for every entry; empty: no entries."""

    def entries_of(self, bundle: str) -> tuple[CarriedEntry, ...]:
        return tuple(e for e in self.entries if e.bundle == bundle)

    def to_bytes(self) -> bytes:
        """``log/proofs.json``."""
        entries = []
        for e in self.entries:
            item: dict[str, Any] = {"bundle": e.bundle, "signature": e.signature,
                                    "logIndex": e.log_index}
            if e.body is not None:
                item["body"] = _b64(e.body)
            entries.append(item)
        document = {
            "schemaVersion": SCHEMA_VERSION, "type": PROOFS_TYPE, "origin": self.origin,
            "treeSize": self.tree_size, "logId": _b64(self.log_id),
            "earlierSizes": list(self.earlier_sizes), "entries": entries,
            "hashCount": len(self.hashes),
        }
        return (json.dumps(document, separators=(",", ":")) + "\n").encode()

    def hashes_bytes(self) -> bytes:
        """``log/hashes``: the proof's hashes, 32 raw bytes each, in the order they are used."""
        return b"".join(self.hashes)

    def roots(self, leaves: Mapping[int, bytes]) -> tuple[bytes, dict[int, bytes]]:
        """The root of ``tree_size`` and of each earlier size that the proof gives with these
        leaves (index to leaf hash); nothing to prove (no leaves, no sizes): no hashes."""
        if not leaves and not self.earlier_sizes:
            if self.hashes:
                raise LogProofError("log proof: hashes, but no entries or sizes to prove")
            return b"", {}
        return roots_from_multi_proof(leaves, self.earlier_sizes, self.tree_size, self.hashes)

    @classmethod
    def parse(cls, data: bytes, hashes: bytes, *, subject: str,
              hashes_subject: str = "") -> MediaProofs:
        """Strict: our format, hostile bytes (sizes bounded, unknown fields refused)."""

        def bad(what: str, where: str = subject) -> LogProofError:
            return LogProofError(f"is not a well-formed log proofs file: {what}",
                                 subject=where, check="tlog.proofs", hint=_REDO)

        if len(data) > MAX_PROOFS_BYTES:
            raise bad(f"{len(data)} bytes, over {MAX_PROOFS_BYTES}")
        raw = load_json(data, subject=subject, error=LogProofError)
        if isinstance(raw, dict) and raw.get("schemaVersion") != SCHEMA_VERSION:
            raise bad(f"schemaVersion {raw.get('schemaVersion')!r}, this agent reads "
                      f"{SCHEMA_VERSION} (media written by another release: export again from "
                      "the appliance, or update this endpoint's agent)")
        keys = {"schemaVersion", "type", "origin", "treeSize", "logId", "earlierSizes",
                "entries", "hashCount"}
        if not isinstance(raw, dict) or set(raw) != keys:
            raise bad(f"it must be an object with exactly {sorted(keys)}")
        if raw["type"] != PROOFS_TYPE:
            raise bad(f"not an {PROOFS_TYPE}")
        origin, size = raw["origin"], raw["treeSize"]
        if not isinstance(origin, str) or not _is_count(size):
            raise bad("origin or treeSize")
        try:
            log_id_bytes = base64.b64decode(raw["logId"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise bad("logId is not base64") from None
        if len(log_id_bytes) not in (0, HASH_SIZE):
            raise bad("logId is not 32 bytes")
        count = raw["hashCount"]
        if not _is_count(count) or count > MAX_HASHES:
            raise bad("hashCount")
        if len(hashes) != count * HASH_SIZE:
            raise bad(f"{len(hashes)} bytes, expected {count} hashes of {HASH_SIZE} bytes "
                      f"({subject} says so)", hashes_subject or subject)
        table = tuple(hashes[i:i + HASH_SIZE] for i in range(0, len(hashes), HASH_SIZE))

        sizes = raw["earlierSizes"]
        if not isinstance(sizes, list) or len(sizes) > MAX_PROOFS:
            raise bad("earlierSizes")
        if any(not _is_count(m) or not 0 < m < size for m in sizes):
            raise bad(f"earlierSizes: each must be a count between 0 and treeSize {size}")
        if sizes != sorted(set(sizes)):
            raise bad("earlierSizes: not in increasing order, or one twice")

        items = raw["entries"]
        if not isinstance(items, list) or len(items) > MAX_PROOFS:
            raise bad("entries list")
        required = {"bundle", "signature", "logIndex"}
        entries: list[CarriedEntry] = []
        seen_index: set[int] = set()
        seen_signature: set[tuple[str, int]] = set()
        for item in items:
            if not isinstance(item, dict) or not required <= set(item) <= required | {"body"}:
                raise bad(f"an entry must hold exactly {sorted(required)} and maybe body")
            index, where = item["logIndex"], item["bundle"]
            what = f"entry {index!r}"
            if not _is_count(index) or index in seen_index:
                raise bad(f"{what}: logIndex twice, or not a count")
            if not isinstance(where, str) or not where or len(where) > MAX_BUNDLE_PATH:
                raise bad(f"{what}: bundle")
            if not _is_count(item["signature"]):
                raise bad(f"{what}: signature")
            if (where, item["signature"]) in seen_signature:
                raise bad(f"{what}: a second entry for signature {item['signature']} of {where}")
            body = None
            if "body" in item:
                try:
                    body = base64.b64decode(item["body"], validate=True)
                except (binascii.Error, TypeError, ValueError):
                    raise bad(f"{what}: body is not base64") from None
                if len(body) > MAX_BODY_BYTES:
                    raise bad(f"{what}: body over {MAX_BODY_BYTES} bytes")
            seen_index.add(index)
            seen_signature.add((where, item["signature"]))
            entries.append(CarriedEntry(where, item["signature"], index, body))
        if entries and not log_id_bytes:
            raise bad("entries without a logId")
        return cls(origin, size, tuple(sizes), tuple(entries), table, log_id_bytes)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


# -- what an endpoint trusts about the log ------------------------------------------------------


@dataclass(frozen=True)
class LogTrust:
    """The log an endpoint trusts, and what its policy demands of media."""

    public_key: PublicKey
    origin: str
    required: bool = True
    """Missing log files or entries are a refusal (fail closed); ``False`` only when the site
    policy says ``log.required: false``."""
    witnesses: tuple[WitnessKey, ...] = ()
    quorum: int = 0
    """Distinct ``witnesses`` whose cosignature the media's checkpoint needs (0: none named)."""
    source: str = "the site's trusted root"

    @property
    def log_id(self) -> bytes:
        return log_id(self.public_key)


def parse_trusted_root(data: bytes, *, subject: str) -> tuple[PublicKey, str]:
    """The log key and origin of a Sigstore ``trusted_root.json`` with exactly one log whose
    ``baseUrl`` is ``https://<origin>`` (what ``airseal site trusted-root`` writes)."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    from airseal.trustroot.keys import spki_pem
    from airseal.trustroot.tlog.checkpoint import check_origin

    def bad(what: str) -> LogProofError:
        return LogProofError(f"is not a trusted root naming one log: {what}", subject=subject,
                             check="tlog.trusted-root",
                             hint="write it again with `airseal site trusted-root`")

    raw = load_json(data, subject=subject, error=LogProofError)
    try:
        tlogs = raw["tlogs"]
        if not isinstance(tlogs, list) or len(tlogs) != 1:
            raise bad(f"{len(tlogs) if isinstance(tlogs, list) else 'no'} tlogs")
        tlog = tlogs[0]
        url = tlog["baseUrl"]
        der = base64.b64decode(tlog["publicKey"]["rawBytes"], validate=True)
        key_id = base64.b64decode(tlog["logId"]["keyId"], validate=True)
    except (KeyError, TypeError, binascii.Error):
        raise bad("tlogs[0] lacks baseUrl, publicKey.rawBytes or logId.keyId") from None
    if not isinstance(url, str) or not url.startswith("https://"):
        raise bad(f"baseUrl {url!r} is not https://<origin>")
    try:
        origin = check_origin(url.removeprefix("https://").rstrip("/"))
        from airseal.trustroot.keys import load_public_key

        key = load_public_key(spki_pem(load_der_public_key(der)))  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise bad(str(exc)) from None
    if log_id(key) != key_id:
        raise bad("logId is not the SHA-256 of the public key")
    return key, origin


# -- the agent's check --------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleEntries:
    """The entries of the trusted log one bundle on the media carries, with what they must be
    about (each signature of the bundle and the digest it signed)."""

    subject: str
    entries: tuple[TlogEntry, ...]
    signed: tuple[SignedContent, ...]


def entries_of_bundle(bundle: Any, trust_log_id: bytes, *, subject: str) -> BundleEntries:
    """The bundle's ``tlogEntries`` of the trusted log and what they must record."""
    import hashlib

    try:
        items = bundle["verificationMaterial"].get("tlogEntries") or []
        if not isinstance(items, list):
            raise TypeError("tlogEntries")
        wanted = _b64(trust_log_id)
        entries = tuple(
            TlogEntry.from_json(item) for item in items
            if isinstance(item, dict) and isinstance(item.get("logId"), dict)
            and item["logId"].get("keyId") == wanted
        )
        if "messageSignature" in bundle:
            sig = bundle["messageSignature"]
            signed: tuple[SignedContent, ...] = (SignedContent(base64.b64decode(sig["signature"]),
                                    base64.b64decode(sig["messageDigest"]["digest"])),)
        else:
            envelope = bundle["dsseEnvelope"]
            digest = hashlib.sha256(base64.b64decode(envelope["payload"])).digest()
            signed = tuple(SignedContent(base64.b64decode(s["sig"]), digest)
                           for s in envelope["signatures"])
    except LogProofError as exc:
        raise LogProofError(exc.detail, subject=subject, check="tlog.entry") from None
    except (KeyError, TypeError, AttributeError, binascii.Error, ValueError) as exc:
        raise LogProofError(f"the bundle's log entries are malformed ({exc})", subject=subject,
                            check="tlog.entry") from None
    return BundleEntries(subject, entries, signed)


def root_before_last_leaf(index: int, path: Sequence[bytes]) -> bytes:
    """The root of the first ``index`` leaves, from the inclusion path of leaf ``index`` in the
    tree of ``index + 1`` leaves (that path is the tree's complete left subtrees, bottom-up)."""
    if index == 0:
        if path:
            raise LogProofError("the first leaf's proof must be empty")
        return EMPTY_ROOT
    if len(path) != bin(index).count("1"):
        raise LogProofError(f"the last leaf of {index + 1} has {len(path)} proof hashes, "
                            f"expected {bin(index).count('1')}")
    root = path[0]
    for h in path[1:]:
        root = node_hash(h, root)
    return root


@dataclass(frozen=True)
class VerifiedLog:
    """What the media proved: the checkpoint it carries (``N``), the one the endpoint stores
    (``N + 1``, after the export statement) and the witnesses that cosigned ``N``."""

    media_checkpoint: Checkpoint
    final: Checkpoint
    final_note: str
    witnesses: tuple[str, ...]
    entries: int


def verify_media_log(
    trust: LogTrust,
    previous: Checkpoint | None,
    *,
    checkpoint_note: str,
    proofs: MediaProofs,
    export: BundleEntries,
    actions: Sequence[MediaBundle],
    threshold: int = 1,
) -> VerifiedLog:
    """Every log check of one media, in order: the checkpoint (log key, origin, witness quorum);
    the export statement logged right after it; the checkpoint stored last (same log, not
    larger, a size the proof covers); each action bundle's entries, logging signatures of at
    least ``threshold`` distinct trusted keys (the site's action threshold: only logged
    signatures count); then the one proof: the entries included in the checkpoint, and the
    stored checkpoint's tree a prefix of it. Fails closed, naming the file."""
    checkpoint_file = f"airseal/{CHECKPOINT_PATH}"
    proofs_file = f"airseal/{PROOFS_PATH}"
    hashes_file = f"airseal/{HASHES_PATH}"
    key, origin = trust.public_key, trust.origin

    def refuse(detail: str, check: str, subject: str, hint: str = _REDO) -> LogProofError:
        return LogProofError(detail, subject=subject, check=check, hint=hint)

    try:
        media = verify_checkpoint(checkpoint_note, key=key, name=origin, origin=origin)
    except LogProofError as exc:
        raise refuse(f"{exc.detail} (trusted log {origin}, from {trust.source})",
                     exc.check, checkpoint_file,
                     "this media was not written by the site's appliance log, or the checkpoint "
                     "was altered; export again, and keep this media as evidence") from None
    witnessed: tuple[str, ...] = ()
    if trust.witnesses or trust.quorum:
        good = require_quorum(checkpoint_note, trust.witnesses, trust.quorum,
                              subject=checkpoint_file)
        witnessed = tuple(c.witness.name for c in good)
    if proofs.origin != origin or proofs.tree_size != media.size:
        raise refuse(f"the proofs are for {proofs.origin} size {proofs.tree_size}, the "
                     f"checkpoint for {media.describe()}", "tlog.proofs", proofs_file)

    # the export statement: leaf N, proved against its own checkpoint N + 1
    if len(export.entries) != 1:
        raise refuse(f"the export statement carries {len(export.entries)} entries of log "
                     f"{origin}, expected exactly one", "tlog.entry", export.subject)
    final = _verified_entry(export.entries[0], export, trust)
    entry = export.entries[0]
    assert entry.proof is not None
    if entry.log_index != media.size or final.size != media.size + 1:
        raise refuse(
            f"the export statement is entry {entry.log_index} proved at size {final.size}; it "
            f"must be the entry right after the media's checkpoint ({media.describe()})",
            "tlog.export", export.subject)
    if root_before_last_leaf(entry.log_index, entry.proof.hashes) != media.root_hash:
        raise refuse(f"the log after the export statement ({final.describe()}) does not extend "
                     f"the media's checkpoint ({media.describe()}): the log forked",
                     "tlog.fork", export.subject,
                     "keep this media as evidence and report it; do not use it")

    # what this endpoint saw last: the checks that need no proof, and which size to prove from
    evidence = "keep this media and both checkpoints as evidence and report them"
    prove_from: int | None = None
    if previous is not None:
        both = f"last seen here {previous.describe()}, this media {final.describe()}"
        if previous.origin != origin:
            raise refuse(f"the checkpoint stored here is of another log ({both})", "tlog.origin",
                         checkpoint_file, "the endpoint's log enrolment changed; re-enrol it")
        if previous.size > final.size:
            raise refuse(f"the log shrank: {both}", "tlog.shrink", checkpoint_file, evidence)
        if previous.size == final.size:
            if previous.root_hash != final.root_hash:
                raise refuse(f"the log forked (same size, two roots): {both}", "tlog.fork",
                             checkpoint_file, evidence)
        elif previous.size == media.size:
            if previous.root_hash != media.root_hash:
                raise refuse(f"the log forked (same size, two roots): last seen here "
                             f"{previous.describe()}, this media {media.describe()}",
                             "tlog.fork", checkpoint_file, evidence)
        elif previous.size not in proofs.earlier_sizes:
            raise refuse(
                f"carries no consistency proof from size {previous.size} (the checkpoint "
                f"stored here) to {media.size}", "tlog.consistency", proofs_file,
                "import the exports in between first, or export again: the appliance "
                "includes proofs from the checkpoints of its recent exports")
        else:
            prove_from = previous.size

    # every action bundle's entries (carried in the proofs file)
    leaves: dict[int, bytes] = {}
    paths = {bundle.path for bundle in actions}
    stray = sorted({e.bundle for e in proofs.entries} - paths)
    if stray:
        raise refuse(f"carries entries for {stray[0]}, which is not an action bundle of this "
                     "export", "tlog.proofs", proofs_file)
    if proofs.entries and proofs.log_id != trust.log_id:
        raise refuse(f"the entries are of log {proofs.log_id.hex()[:16]}, expected "
                     f"{trust.log_id.hex()[:16]} ({origin})", "tlog.logid", proofs_file)
    for bundle in actions:
        carried = proofs.entries_of(bundle.path)
        if not carried:
            raise refuse(f"has no entry of log {origin} in {proofs_file}", "tlog.entry",
                         bundle.subject,
                         "sign the action again on an appliance whose log is on, and export")
        logged_keys: set[bytes] = set()
        for item in carried:
            body = _leaf_body(item, bundle)
            if item.log_index >= media.size:
                raise refuse(f"entry {item.log_index} is not below the media's checkpoint "
                             f"({media.describe()})", "tlog.inclusion", bundle.subject)
            leaves[item.log_index] = leaf_hash(body)
            signer = bundle.keys[item.signature]
            assert signer is not None  # _leaf_body refuses a signature no trusted key made
            logged_keys.add(spki_der(signer))
        if len(logged_keys) < threshold:
            raise refuse(
                f"has logged signatures of {len(logged_keys)} distinct trusted keys; the site "
                f"requires {threshold} per action, and only logged signatures count here",
                "tlog.entry", bundle.subject,
                "sign the missing approvals again on the appliance with its log on (each "
                "approval is logged), and export again")

    # one proof: every entry in the media's checkpoint, every earlier size a prefix of it
    what = (f"the entries of the {len(actions)} action bundles and the "
            f"{len(proofs.earlier_sizes)} earlier sizes")
    try:
        root, earlier = proofs.roots(leaves)
    except LogProofError as exc:
        raise refuse(f"{what}: {exc.detail}", "tlog.inclusion", hashes_file) from None
    if root and root != media.root_hash:
        raise refuse(
            f"{what}, with the proof in {hashes_file}, give root {root.hex()[:16]}..., the "
            f"checkpoint says {media.root_hash.hex()[:16]}... (an entry, its index, an earlier "
            "size or a proof hash was altered, or a bundle is not the one logged)",
            "tlog.inclusion", hashes_file)
    if prove_from is not None and previous is not None \
            and earlier[prove_from] != previous.root_hash:
        raise refuse(f"the log forked: last seen here {previous.describe()}, this media "
                     f"{media.describe()}, whose first {prove_from} entries have root "
                     f"{earlier[prove_from].hex()[:16]}...", "tlog.fork", hashes_file, evidence)
    return VerifiedLog(media, final, entry.proof.checkpoint, witnessed, 1 + len(leaves))


@dataclass(frozen=True)
class MediaBundle:
    """A DSSE bundle on the media whose log entries the proofs file carries, as the agent
    verified it: its path as listed, where to name it, its envelope (parsed JSON) and, for each
    signature of the envelope, the trusted key that made it (``None``: no trusted key did)."""

    path: str
    subject: str
    envelope: Mapping[str, Any]
    keys: tuple[PublicKey | None, ...]


def media_bundle(bundle: Any, candidates: Sequence[PublicKey], *, path: str,
                 subject: str) -> MediaBundle:
    """:class:`MediaBundle` of a parsed DSSE bundle: each signature matched to the one of
    ``candidates`` (the keys trusted for it) whose signature over the PAE verifies."""
    from airseal.trustroot.dsse import pae
    from airseal.trustroot.errors import InvalidSignature
    from airseal.trustroot.keys import verify_message

    try:
        envelope = bundle["dsseEnvelope"]
        signed = pae(envelope["payloadType"], base64.b64decode(envelope["payload"],
                                                               validate=True))
        keys: list[PublicKey | None] = []
        for item in envelope["signatures"]:
            sig = base64.b64decode(item["sig"], validate=True)
            found = None
            for key in candidates:
                try:
                    verify_message(key, sig, signed)
                except InvalidSignature:
                    continue
                found = key
                break
            keys.append(found)
    except (KeyError, TypeError, AttributeError, binascii.Error, ValueError) as exc:
        raise LogProofError(f"the bundle's envelope is malformed ({exc})", subject=subject,
                            check="tlog.entry") from None
    return MediaBundle(path, subject, envelope, tuple(keys))


def _leaf_body(item: CarriedEntry, bundle: MediaBundle) -> bytes:
    """The entry's body: rebuilt from the bundle and the signer's key, or the carried one once
    it is shown to record this bundle's signature, payload and key."""
    import hashlib

    def refuse(detail: str, check: str) -> LogProofError:
        return LogProofError(f"log entry {item.log_index}: {detail}", subject=bundle.subject,
                             check=check, hint=_REDO)

    if not 0 <= item.signature < len(bundle.keys):
        raise refuse(f"records signature {item.signature}, the envelope holds "
                     f"{len(bundle.keys)}", "tlog.entry")
    key = bundle.keys[item.signature]
    if key is None:
        raise refuse(f"records signature {item.signature}, which no key trusted here made",
                     "tlog.entry")
    try:
        if item.body is None:
            return canonical_dsse_body(bundle.envelope, item.signature, key)
        one = bundle.envelope["signatures"][item.signature]
        signed = SignedContent(
            base64.b64decode(one["sig"], validate=True),
            hashlib.sha256(base64.b64decode(bundle.envelope["payload"], validate=True)).digest())
        # carried entries are dsse 0.0.1 (what this log writes): a body of another kind fails
        _body_matches(TlogEntry(item.log_index, b"", DSSE, API_VERSION, 0, item.body, None),
                      signed)
        if spki_der(body_key(item.body)) != spki_der(key):
            raise LogProofError("the log entry records another key", check="tlog.body.key")
    except LogProofError as exc:
        raise refuse(exc.detail, "tlog.body" if exc.check == "tlog" else exc.check) from None
    except (KeyError, TypeError, binascii.Error, ValueError) as exc:
        raise refuse(f"the bundle's envelope is malformed ({exc})", "tlog.entry") from None
    return item.body


def _verified_entry(entry: TlogEntry, bundle: BundleEntries, trust: LogTrust) -> Checkpoint:
    """SET, own checkpoint and inclusion proof, and that the entry records one of the bundle's
    signatures over its digest."""
    try:
        checkpoint = verify_tlog_entry(entry, log_key=trust.public_key, name=trust.origin,
                                       origin=trust.origin, signed=None)
        errors: list[LogProofError] = []
        for signed in bundle.signed:
            try:
                _body_matches(entry, signed)
                break
            except LogProofError as exc:
                errors.append(exc)
        else:
            raise errors[0] if errors else LogProofError("the bundle holds no signature")
    except LogProofError as exc:
        raise LogProofError(f"log entry {entry.log_index}: {exc.detail}", subject=bundle.subject,
                            check=exc.check, hint=_REDO) from None
    assert checkpoint is not None
    return checkpoint
