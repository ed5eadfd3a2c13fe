"""The embedded transparency log: an append-only Merkle tree in SQLite, kept as C2SP tlog-tiles.

Guarantees:
- **Atomic batches.** One ``append`` is one ``BEGIN IMMEDIATE`` transaction: the entries, their
  SETs, the tiles they change, the new size and the signed checkpoint commit together or not at
  all (``synchronous = FULL``, WAL). An entry is acknowledged (returned) only after the commit,
  so a crash at any point loses only entries nobody was told about.
- **Append-only.** Entries and checkpoints cannot be updated or deleted (triggers); a tile is only
  ever extended, so any earlier tree size is still served by a prefix of it.
- **Proofs from a handful of reads.** Every subtree hash comes from one tile read
  (:mod:`airseal.trustroot.tlog.tiles`), so inclusion and consistency proofs at 10^6 entries cost
  a few rows, not a scan.
- **Static export.** :meth:`TransparencyLog.export_tiles` writes ``checkpoint``, ``tile/...`` and
  ``tile/entries/...`` exactly as the C2SP tlog-tiles read path names them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airseal.appliance.errors import ApplianceError
from airseal.trustroot.errors import LogProofError, VerificationError
from airseal.trustroot.keys import PublicKey, load_public_key
from airseal.trustroot.signer import PrivateKeySigner, Signer
from airseal.trustroot.tlog import entries, merkle, tiles
from airseal.trustroot.tlog.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint

HASH = merkle.HASH_SIZE
MAX_BATCH = 100_000


class LogError(ApplianceError):
    title = "Transparency log"
    check = "tlog"


class NoLog(LogError):
    title = "No transparency log"
    hint = "create one with `airseal log init --key NAME`"


class LogInconsistent(LogError, VerificationError):
    title = "Transparency log inconsistent"
    hint = "the log database was altered or damaged; restore it from backup and report it"


@dataclass(frozen=True)
class LogInfo:
    origin: str
    key_name: str
    log_id: bytes
    public_key_pem: str
    created: str
    size: int

    @property
    def public_key(self) -> PublicKey:
        return load_public_key(self.public_key_pem.encode(), subject="the log key")

    @property
    def base_url(self) -> str:
        return f"https://{self.origin}"


@dataclass(frozen=True)
class NewEntry:
    kind: str
    body: bytes
    subject: str


@dataclass(frozen=True)
class StoredCheckpoint:
    checkpoint: Checkpoint
    note: str
    created: str


def log_info(conn: sqlite3.Connection) -> LogInfo | None:
    row = conn.execute(
        "SELECT origin, key_name, log_id, public_key_pem, created, size FROM log WHERE id = 1"
    ).fetchone()
    if row is None:
        return None
    return LogInfo(row[0], row[1], bytes.fromhex(row[2]), row[3], row[4], row[5])


def create_log(
    conn: sqlite3.Connection, *, origin: str, key_name: str, public_key: PublicKey,
    signer: Signer, now: datetime,
) -> LogInfo:
    """Create the (only) log and sign its empty checkpoint, in one transaction."""
    from airseal.trustroot.keys import spki_pem

    conn.execute("BEGIN IMMEDIATE")
    try:
        if log_info(conn) is not None:
            raise LogError("this appliance already has a transparency log", hint=(
                "`airseal log status` shows it; a log is never replaced"
            ))
        created = now.astimezone(UTC).isoformat(timespec="seconds")
        conn.execute(
            "INSERT INTO log (id, origin, key_name, log_id, public_key_pem, created, size) "
            "VALUES (1, ?, ?, ?, ?, ?, 0)",
            [origin, key_name, entries.log_id(public_key).hex(), spki_pem(public_key).decode(),
             created],
        )
        empty = Checkpoint(origin, 0, merkle.EMPTY_ROOT)
        note = sign_checkpoint(empty, name=origin, signer=signer)
        conn.execute(
            "INSERT INTO log_checkpoints (size, root_hash, note, created) VALUES (0, ?, ?, ?)",
            [empty.root_hash, note, created],
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    info = log_info(conn)
    assert info is not None
    return info


class TransparencyLog:
    """The log over an open connection (autocommit mode). Not thread-safe: one per thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        info = log_info(conn)
        if info is None:
            raise NoLog("this appliance has no transparency log yet")
        self.conn = conn
        self.info = info

    # -- reading ------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return int(self.conn.execute("SELECT size FROM log WHERE id = 1").fetchone()[0])

    def read_tile(self, level: int, index: int) -> bytes:
        row = self.conn.execute(
            "SELECT hashes FROM log_tiles WHERE level = ? AND idx = ?", [level, index]
        ).fetchone()
        if row is None:
            raise LogInconsistent(f"tile {tiles.tile_path(level, index)} is missing")
        return bytes(row[0])

    def read_tile_and_inner(self, level: int, index: int) -> tuple[bytes, bytes]:
        row = self.conn.execute(
            "SELECT hashes, inner FROM log_tiles WHERE level = ? AND idx = ?", [level, index]
        ).fetchone()
        if row is None:
            raise LogInconsistent(f"tile {tiles.tile_path(level, index)} is missing")
        return bytes(row[0]), bytes(row[1])

    def node_reader(self) -> merkle.NodeReader:
        return tiles.stored_node_reader(self.read_tile_and_inner)

    def root(self, size: int | None = None) -> bytes:
        return merkle.root_hash(self.size if size is None else size, self.node_reader())

    def latest_checkpoint(self) -> StoredCheckpoint:
        return self._checkpoint_row(
            "SELECT size, root_hash, note, created FROM log_checkpoints ORDER BY size DESC LIMIT 1",
            [],
        )

    def checkpoint_at(self, size: int) -> StoredCheckpoint:
        return self._checkpoint_row(
            "SELECT size, root_hash, note, created FROM log_checkpoints WHERE size = ?", [size]
        )

    def _checkpoint_row(self, sql: str, args: list[Any]) -> StoredCheckpoint:
        row = self.conn.execute(sql, args).fetchone()
        if row is None:
            raise LogError(
                f"no checkpoint for size {args[0] if args else '?'}",
                hint="proofs are made against signed checkpoints; see `airseal log status`",
            )
        point = Checkpoint(self.info.origin, int(row[0]), bytes(row[1]))
        return StoredCheckpoint(point, row[2], row[3])

    def entry(self, index: int, *, at_size: int | None = None) -> entries.TlogEntry:
        """Entry ``index`` with its inclusion proof against the checkpoint of ``at_size``
        (default: the latest)."""
        row = self.conn.execute(
            "SELECT integrated_time, kind, body, set_signature FROM log_entries WHERE idx = ?",
            [index],
        ).fetchone()
        if row is None:
            raise LogError(f"entry {index} is not in the log (size {self.size})",
                           hint="indexes start at 0; `airseal log status` shows the size")
        stored = self.latest_checkpoint() if at_size is None else self.checkpoint_at(at_size)
        size = stored.checkpoint.size
        proof = merkle.inclusion_proof(index, size, self.node_reader())
        return entries.TlogEntry(
            log_index=index, log_id=self.info.log_id, kind=row[1],
            version=entries.version_of_body(bytes(row[2])) or entries.API_VERSION,
            integrated_time=int(row[0]), body=bytes(row[2]),
            set=bytes(row[3]),
            proof=entries.InclusionProof(
                index, size, stored.checkpoint.root_hash, tuple(proof), stored.note
            ),
        )

    def index_of_leaf(self, leaf_hash: bytes) -> int | None:
        """The index of the entry with this leaf hash (a Rekor UUID names it), through the
        leaf-hash index of schema 7."""
        row = self.conn.execute(
            "SELECT idx FROM log_entries WHERE leaf_hash = ?", [leaf_hash]).fetchone()
        return None if row is None else int(row[0])

    def consistency(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new = self.size if new_size is None else new_size
        if not 0 <= old_size <= new <= self.size:
            raise LogError(f"cannot prove size {old_size} consistent with {new} "
                           f"(the log has {self.size} entries)")
        return merkle.consistency_proof(old_size, new, self.node_reader())

    # -- appending ----------------------------------------------------------------------------

    def append(
        self, new: Sequence[NewEntry], signer: Signer, *, now: datetime
    ) -> tuple[list[int], StoredCheckpoint]:
        """Append a batch; returns the indexes and the checkpoint that covers them, only once
        everything is committed."""
        if not new:
            raise LogError("nothing to append")
        if len(new) > MAX_BATCH:
            raise LogError(f"a batch holds at most {MAX_BATCH} entries")
        if entries.log_id(signer.public_key) != self.info.log_id:
            raise LogError("the signer is not the log key", hint=(
                f"the log is signed by key {self.info.key_name!r}"
            ))
        integrated = int(now.timestamp())
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            start = self.size
            leaf_hashes = [merkle.leaf_hash(e.body) for e in new]
            sets = _sign_sets(
                signer, [e.body for e in new], integrated, start, self.info.log_id
            )
            rows = [
                (start + i, integrated, item.kind, item.body, leaf, set_sig, item.subject)
                for i, (item, leaf, set_sig) in enumerate(zip(new, leaf_hashes, sets, strict=True))
            ]
            conn.executemany(
                "INSERT INTO log_entries (idx, integrated_time, kind, body, leaf_hash, "
                "set_signature, subject) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._extend_tiles(start, leaf_hashes)
            size = start + len(new)
            conn.execute("UPDATE log SET size = ? WHERE id = 1", [size])
            root = merkle.root_hash(size, self.node_reader())
            point = Checkpoint(self.info.origin, size, root)
            note = sign_checkpoint(point, name=self.info.origin, signer=signer)
            created = now.astimezone(UTC).isoformat(timespec="seconds")
            conn.execute(
                "INSERT INTO log_checkpoints (size, root_hash, note, created) VALUES (?, ?, ?, ?)",
                [size, root, note, created],
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return list(range(start, size)), StoredCheckpoint(point, note, created)

    def _extend_tiles(self, start: int, leaf_hashes: list[bytes]) -> None:
        """Add the new leaves to the level-0 tiles and carry every completed tile upwards.

        Once per batch: each tile the batch touches is read (the partial one it starts in),
        rebuilt and written once with its inner levels; a completed tile's hash for the level
        above is the top of those inner levels, not hashed again."""
        pending = b"".join(leaf_hashes)
        level, count = 0, start  # count = hashes already stored at this tile level
        full = tiles.TILE_WIDTH * HASH
        top = tiles.INNER_OFFSETS[-1] * HASH  # the two level-7 nodes of a tile's inner levels
        while pending:
            index, width = divmod(count, tiles.TILE_WIDTH)
            current = self.read_tile(level, index) if width else b""
            if len(current) != width * HASH:
                raise LogInconsistent(
                    f"tile {tiles.tile_path(level, index)} holds {len(current) // HASH} hashes, "
                    f"expected {width}"
                )
            data = current + pending
            rows = []
            completed = bytearray()
            for at in range(0, len(data), full):
                tile = data[at : at + full]
                inner = tiles.inner_levels(tile)
                rows.append((level, index + at // full, tile, inner))
                if len(tile) == full:
                    completed += merkle.node_hash(inner[top : top + HASH], inner[top + HASH :])
            self.conn.executemany(
                "INSERT OR REPLACE INTO log_tiles (level, idx, hashes, inner) VALUES (?, ?, ?, ?)",
                rows,
            )
            pending = bytes(completed)
            count = count // tiles.TILE_WIDTH
            level += 1

    # -- checking and exporting ---------------------------------------------------------------

    def verify(self) -> StoredCheckpoint:
        """Recompute the tree from the entries and check it against every stored tile and the
        latest checkpoint (its signature, origin, size and root). Raises on any difference."""
        size = self.size
        latest = self.latest_checkpoint()
        count = 0
        leaves: list[bytes] = []
        for idx, body, leaf in self.conn.execute(
            "SELECT idx, body, leaf_hash FROM log_entries ORDER BY idx"
        ):
            if idx != count or merkle.leaf_hash(bytes(body)) != bytes(leaf):
                raise LogInconsistent(f"entry {idx} is out of place or its leaf hash is wrong")
            leaves.append(bytes(leaf))
            count += 1
        if count != size or latest.checkpoint.size != size:
            raise LogInconsistent(
                f"the log records size {size}, holds {count} entries, and its latest checkpoint "
                f"is for {latest.checkpoint.size}"
            )
        level_hashes = leaves
        for level, index, width in tiles.tiles_for_size(size):
            if level > 0 and index == 0:
                level_hashes = [
                    tiles.subtree_of_hashes(level_hashes[i : i + tiles.TILE_WIDTH])
                    for i in range(0, len(level_hashes) - tiles.TILE_WIDTH + 1, tiles.TILE_WIDTH)
                ]
            want = b"".join(level_hashes[index * 256 : index * 256 + width])
            if self.read_tile_and_inner(level, index) != (want, tiles.inner_levels(want)):
                raise LogInconsistent(f"tile {tiles.tile_path(level, index, width)} is wrong")
        root = merkle.root_of_leaf_hashes(leaves)
        checked = verify_checkpoint(latest.note, key=self.info.public_key,
                                    name=self.info.origin, origin=self.info.origin)
        if checked.root_hash != root or checked.size != size:
            raise LogInconsistent("the latest checkpoint does not match the entries")
        return latest

    def entry_bundle(self, index: int, width: int) -> bytes:
        """C2SP entry bundle: each entry as a 2-byte big-endian length and its body."""
        out = bytearray()
        for (body,) in self.conn.execute(
            "SELECT body FROM log_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
            [index * tiles.TILE_WIDTH, index * tiles.TILE_WIDTH + width],
        ):
            out += len(body).to_bytes(2, "big") + bytes(body)
        return bytes(out)

    def export_tiles(self, directory: Path) -> list[Path]:
        """Write the static log at its latest checkpoint (``checkpoint``, ``tile/...``)."""
        from airseal._internal.atomic import write_atomic

        latest = self.latest_checkpoint()
        size = latest.checkpoint.size
        written = [directory / "checkpoint"]
        write_atomic(written[0], latest.note.encode("utf-8"))
        for level, index, width in tiles.tiles_for_size(size):
            path = directory / tiles.tile_path(level, index, width)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, self.read_tile(level, index)[: width * HASH])
            written.append(path)
            if level == 0:
                epath = directory / tiles.entries_path(index, width)
                epath.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(epath, self.entry_bundle(index, width))
                written.append(epath)
        return written


TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"


def trusted_root_json(info: LogInfo) -> bytes:
    """A Sigstore ``trusted_root.json`` naming this log (key, log id, ``baseUrl``, validity).
    Deterministic for a log: the site TUF target made from it can be rebuilt byte for byte."""
    from airseal.trustroot.keys import spki_der

    document = {
        "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
        "tlogs": [
            {
                "baseUrl": info.base_url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": base64.b64encode(spki_der(info.public_key)).decode(),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": info.created.replace("+00:00", "Z")},
                },
                "logId": {"keyId": base64.b64encode(info.log_id).decode()},
            }
        ],
        "certificateAuthorities": [],
        "ctlogs": [],
        "timestampAuthorities": [],
    }
    return (json.dumps(document, indent=2) + "\n").encode()


PARALLEL_SETS_FROM = 64


def _sign_sets(
    signer: Signer, bodies: list[bytes], integrated: int, start: int, log_id: bytes
) -> list[bytes]:
    """One SET per entry. A file key signs a large batch on every core (OpenSSL releases the GIL
    while signing); a hardware token signs one at a time, as its session requires."""

    def one(offset: int) -> bytes:
        return entries.sign_set(
            signer, bodies[offset], integrated, start + offset, log_id_bytes=log_id
        )

    workers = min(os.cpu_count() or 1, 8)
    if workers < 2 or len(bodies) < PARALLEL_SETS_FROM or not isinstance(signer, PrivateKeySigner):
        return [one(i) for i in range(len(bodies))]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(len(bodies)), chunksize=32))


def entry_for_bundle(bundle_json: bytes, public_key: PublicKey, subject: str) -> NewEntry:
    """The Rekor v1 entry a signed bundle is logged as: ``hashedrekord`` for a message
    signature, ``dsse`` for a DSSE envelope."""
    data = json.loads(bundle_json)
    if "messageSignature" in data:
        sig = data["messageSignature"]
        digest = base64.b64decode(sig["messageDigest"]["digest"])
        body = entries.hashedrekord_body(digest, base64.b64decode(sig["signature"]), public_key)
        return NewEntry(entries.HASHEDREKORD, body, subject)
    envelope = data["dsseEnvelope"]
    if len(envelope["signatures"]) != 1:
        raise LogError("a DSSE bundle to log must hold exactly one signature")
    return NewEntry(entries.DSSE, entries.canonical_dsse_body(envelope, 0, public_key), subject)


def with_tlog_entry(bundle_json: bytes, entry: entries.TlogEntry) -> bytes:
    """The bundle with ``tlogEntries`` = [entry], serialised as :func:`bundle_to_json` does."""
    data = json.loads(bundle_json)
    data.setdefault("verificationMaterial", {})["tlogEntries"] = [entry.to_json()]
    return (json.dumps(data, indent=2, sort_keys=False) + "\n").encode("utf-8")


def adding_tlog_entry(bundle_json: bytes, entry: entries.TlogEntry) -> bytes:
    """The bundle with ``entry`` added after the ``tlogEntries`` it already carries."""
    data = json.loads(bundle_json)
    material = data.setdefault("verificationMaterial", {})
    material["tlogEntries"] = [*(material.get("tlogEntries") or []), entry.to_json()]
    return (json.dumps(data, indent=2, sort_keys=False) + "\n").encode("utf-8")


def one_signature_bundle(bundle_json: bytes, signature_index: int) -> bytes:
    """The DSSE bundle reduced to one of its envelope's signatures (and no log entries): what an
    approval signature is logged as. See :meth:`LogAppender.attach_signature` for why."""
    data = json.loads(bundle_json)
    envelope = data["dsseEnvelope"]
    envelope["signatures"] = [envelope["signatures"][signature_index]]
    data.setdefault("verificationMaterial", {})["tlogEntries"] = []
    return (json.dumps(data, indent=2, sort_keys=False) + "\n").encode("utf-8")


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def iter_entries(conn: sqlite3.Connection, start: int, limit: int) -> Iterable[tuple[Any, ...]]:
    return conn.execute(
        "SELECT idx, integrated_time, kind, subject, leaf_hash FROM log_entries "
        "WHERE idx >= ? ORDER BY idx LIMIT ?",
        [start, limit],
    )


class LogAppender:
    """Adds log entries to bundles as they are signed, when this appliance keeps a log.

    The log key is opened once, on the first bundle (a file key asks its password then), and
    closed with the block; without a log, bundles pass through unchanged and nothing is opened.
    """

    def __init__(self, home: Any, db: Any, prompter: Any, *, now: datetime | None = None) -> None:
        from contextlib import ExitStack

        self._home, self._db, self._prompter = home, db, prompter
        self._now = now
        self._stack = ExitStack()
        self._signer: Signer | None = None
        self._log = TransparencyLog(db.conn) if log_info(db.conn) is not None else None
        self.logged: list[int] = []

    @property
    def enabled(self) -> bool:
        return self._log is not None

    def __enter__(self) -> LogAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _log_signer(self) -> Signer:
        if self._signer is None:
            from airseal.appliance.keystore import get_key, open_signer

            assert self._log is not None
            record = get_key(self._db, self._log.info.key_name)
            self._signer = self._stack.enter_context(
                open_signer(self._home, record, self._prompter)
            )
        return self._signer

    def attach(self, bundle_json: bytes, public_key: PublicKey, subject: str) -> bytes:
        """Append the bundle's entry and return the bundle carrying it (with its proof). With a
        Rekor chosen (``--rekor-url``) the entry goes there instead, verified before it is kept."""
        entry = self._log_one(bundle_json, public_key, subject)
        return bundle_json if entry is None else with_tlog_entry(bundle_json, entry)

    def attach_signature(self, bundle_json: bytes, signature_index: int, public_key: PublicKey,
                         subject: str) -> bytes:
        """Log one more signature of a multi-signature DSSE bundle (an approval) and return the
        bundle with its entry added to the ``tlogEntries`` it already carries.

        The entry is the ``dsse`` 0.0.1 entry of the envelope holding that one signature (same
        payload, that signature and its key): what a Rekor records when the approver submits
        their own one-signature envelope. Not Rekor's entry for the whole multi-signature
        envelope (one body listing every signature, sorted): Sigstore verifiers (sigstore-js,
        and :func:`airseal.trustroot.tlog.entries.verify_tlog_entry`) accept a ``dsse`` body
        with exactly one signature, and one entry per signature lets a verifier tell which
        signatures are logged."""
        single = one_signature_bundle(bundle_json, signature_index)
        entry = self._log_one(single, public_key, subject)
        return bundle_json if entry is None else adding_tlog_entry(bundle_json, entry)

    def _log_one(self, bundle_json: bytes, public_key: PublicKey, subject: str
                 ) -> entries.TlogEntry | None:
        """The entry of a one-signature bundle: from the chosen Rekor (verified before it is
        kept), else appended to this log; None when there is neither."""
        from airseal.appliance.rekor_client import current_target

        target = current_target()
        if target is not None:
            from airseal.appliance.rekor_client import log_bundle

            return log_bundle(target, bundle_json, public_key)
        if self._log is None:
            return None
        new = entry_for_bundle(bundle_json, public_key, subject)
        now = self._now or datetime.now(UTC)
        (index,), _ = self._log.append([new], self._log_signer(), now=now)
        self.logged.append(index)
        return self._log.entry(index)

    def append_own(self, make: Callable[[Signer], list[NewEntry]]) -> list[int]:
        """Append, in one batch, entries the log key itself signs (``make`` builds them with
        it): the appliance's own records, such as its site metadata
        (:mod:`airseal.appliance.site_log`). Nothing without a log; they always go to this
        appliance's log, even with ``--rekor-url``, as audit anchors do."""
        if self._log is None:
            return []
        signer = self._log_signer()
        now = self._now or datetime.now(UTC)
        indexes, _ = self._log.append(make(signer), signer, now=now)
        self.logged.extend(indexes)
        return indexes

    def anchor_audit(self) -> int | None:
        """Append the audit chain's head as an anchor (:mod:`airseal.appliance.audit_anchor`),
        signed by the log key; nothing when there is no log, no audit row, or the head is the
        one anchored last. Returns the anchor's log index."""
        if self._log is None:
            return None
        from airseal.appliance import audit_anchor

        conn = self._db.conn
        head = audit_anchor.current_head(conn)
        if head is None or head == audit_anchor.last_anchored(conn):
            return None
        signer = self._log_signer()
        body, subject = audit_anchor.anchor_entry(signer, self._home.appliance_id, head)
        now = self._now or datetime.now(UTC)
        (index,), _ = self._log.append([NewEntry(entries.HASHEDREKORD, body, subject)], signer,
                                       now=now)
        self.logged.append(index)
        return index


EXPORT_SUBJECT = "export statement"
"""Subject prefix of export statements' log entries: their checkpoints are what endpoints store."""
MEDIA_CONSISTENCY_PROOFS = 64
"""How many earlier exports' checkpoints an export carries a consistency proof from."""


@dataclass(frozen=True)
class MediaLogFiles:
    """What an export carries of the log (``airseal/log/``), proved at ``size``."""

    size: int
    checkpoint: bytes
    proofs: bytes
    hashes: bytes
    """``log/hashes``: the raw hashes of the one proof ``proofs`` describes."""
    missing: tuple[str, ...]
    """Bundles that carry no entry of this log (signed before the log existed)."""
    bundles: tuple[bytes, ...] = ()
    """The bundles as the media carries them (in the order given): without the entries of this
    log, which the proofs file carries instead."""

    def files(self) -> tuple[tuple[str, bytes], ...]:
        """(path under ``airseal/``, bytes) of each log file, as the media holds them."""
        from airseal.trustroot.tlog.media_proofs import CHECKPOINT_PATH, HASHES_PATH, PROOFS_PATH

        return ((CHECKPOINT_PATH, self.checkpoint), (PROOFS_PATH, self.proofs),
                (HASHES_PATH, self.hashes))


def media_log_files(log: TransparencyLog, bundles: Sequence[tuple[str, str, bytes]],
                    cosigned_note: str | None = None, *,
                    also_from: Sequence[int] = ()) -> MediaLogFiles:
    """The latest checkpoint (with its cosignatures when given); every entry of this log the
    ``bundles`` (subject, path on the media, bundle JSON) carry, moved out of the bundles into
    the proofs file; and one proof of them all against the checkpoint that also proves it
    consistent with the checkpoints the last :data:`MEDIA_CONSISTENCY_PROOFS` exports ended on
    (what endpoints store) and with ``also_from`` (``docs/media-format.md`` section 8a). The
    export statement, logged next, becomes leaf ``size``."""
    from airseal.trustroot.tlog.media_proofs import MediaProofs

    latest = log.latest_checkpoint()
    size = latest.checkpoint.size
    wanted = base64.b64encode(log.info.log_id).decode()
    carried = []
    on_media = []
    missing = []
    for subject, path, bundle in bundles:
        data = json.loads(bundle)
        ours = _move_site_entries(data, wanted, size)
        if not ours:
            missing.append(subject)
            on_media.append(bundle)
            continue
        for item in ours:
            carried.append(_carried_entry(path, data, entries.TlogEntry.from_json(item)))
        on_media.append(_bundle_json(data))
    earlier = {
        int(row[0]) + 1 for row in log.conn.execute(
            "SELECT idx FROM log_entries WHERE subject LIKE ? AND idx < ? ORDER BY idx DESC "
            "LIMIT ?", [EXPORT_SUBJECT + "%", size, MEDIA_CONSISTENCY_PROOFS])
    }
    sizes = tuple(sorted(m for m in {*earlier, *also_from} if 0 < m < size))
    indexes = [e.log_index for e in carried]
    hashes = (tuple(merkle.multi_proof(indexes, sizes, size, log.node_reader()))
              if indexes or sizes else ())
    proofs = MediaProofs(log.info.origin, size, sizes, tuple(carried), hashes,
                         log.info.log_id)
    note = cosigned_note if cosigned_note is not None else latest.note
    return MediaLogFiles(size, note.encode("utf-8"), proofs.to_bytes(), proofs.hashes_bytes(),
                         tuple(missing), tuple(on_media))


def _move_site_entries(data: Any, log_id_b64: str, size: int) -> list[Any]:
    """Take out of a parsed bundle the entries of this log below ``size`` (the ones an export
    whose checkpoint has ``size`` entries carries in ``log/proofs.json``), and return them."""
    material = data.get("verificationMaterial") or {}
    items = material.get("tlogEntries") or []
    ours = [i for i in items if i.get("logId", {}).get("keyId") == log_id_b64
            and int(i["logIndex"]) < size]
    if ours:
        material["tlogEntries"] = [i for i in items if not any(i is o for o in ours)]
    return ours


def _bundle_json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=False) + "\n").encode("utf-8")


def bundle_as_on_media(bundle: bytes, log_id: bytes, size: int) -> bytes:
    """The bytes an export whose log checkpoint had ``size`` entries wrote to the media for
    ``bundle`` (the bundle as kept, without this log's entries: section 8a). The export
    statement lists the SHA-256 of these bytes, so evidence recreates them to show it."""
    data = json.loads(bundle)
    if not _move_site_entries(data, base64.b64encode(log_id).decode(), size):
        return bundle
    return _bundle_json(data)


def _carried_entry(path: str, bundle: Any, entry: entries.TlogEntry) -> Any:
    """The entry as the proofs file carries it: which envelope signature it records, and its
    body only when an endpoint could not rebuild it byte for byte (a body another Rekor wrote;
    bodies this log writes are canonical)."""
    from airseal.trustroot.tlog.media_proofs import CarriedEntry

    envelope = bundle.get("dsseEnvelope")
    if envelope is None or entry.kind != entries.DSSE:
        raise LogError(f"{path}: only DSSE bundles' entries are carried on media")
    try:
        recorded = json.loads(entry.body)["spec"]["signatures"][0]["signature"]
    except (ValueError, KeyError, TypeError, IndexError):
        raise LogError(f"{path}: log entry {entry.log_index} has no dsse body") from None
    index = next((n for n, s in enumerate(envelope["signatures"]) if s.get("sig") == recorded),
                 None)
    if index is None:
        raise LogError(f"{path}: log entry {entry.log_index} records no signature of the bundle")
    try:
        canonical = entries.canonical_dsse_body(envelope, index, entries.body_key(entry.body))
    except LogProofError:
        canonical = None
    return CarriedEntry(path, index, entry.log_index,
                        None if canonical == entry.body else entry.body)
