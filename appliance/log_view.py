"""What the Log screen shows of the transparency log: a small read model, no proofs made.

One query per part (the log row, the latest checkpoint, the newest matching entries), so it
answers in milliseconds at 10^6 entries. Searching matches, case-insensitively, the entry's
subject and kind (an action id, ``blob NAME``, ``export``, ``audit``), any hex digest written
in its body (the artifact digest of a ``hashedrekord``, the payload and envelope hashes of a
``dsse``; ``instr`` over the stored canonical body, so a digest prefix of 8+ hex digits is
enough), a leaf hash prefix, or an exact index. Witnesses are the site policy's, each with
its cosignature on the note the appliance keeps (:func:`witness_views`).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airseal.trustroot.errors import LogProofError
from airseal.trustroot.tlog.checkpoint import SignedNote
from airseal.trustroot.tlog.cosignature import WitnessKey, verify_cosignatures

MIN_DIGEST_SEARCH = 8
"""Hex digits a search needs before it is matched against digests (fewer match too much)."""
_HEX = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True)
class WitnessView:
    """A witness the site's policy names, and the last checkpoint it cosigned here."""

    name: str
    key_id: str
    last_cosigned_size: int | None = None
    last_cosigned: str | None = None
    """When its cosignature was recorded, ``YYYY-MM-DDTHH:MM:SSZ``."""

    def describe(self) -> str:
        if self.last_cosigned_size is None:
            return f"{self.name} ({self.key_id[:16]}): never cosigned"
        return (
            f"{self.name} ({self.key_id[:16]}): cosigned size {self.last_cosigned_size} "
            f"at {self.last_cosigned}"
        )


@dataclass(frozen=True)
class LogEntryRow:
    index: int
    integrated: str
    """``YYYY-MM-DDTHH:MM:SSZ``"""
    kind: str
    subject: str
    digest: str
    """The artifact digest (``hashedrekord``) or payload hash (``dsse``), hex; ``""`` if none."""
    leaf_hash: str


@dataclass(frozen=True)
class LogOverview:
    """The log at a glance: ``origin`` is ``""`` when this appliance keeps no log."""

    origin: str
    key_name: str
    size: int
    checkpoint_size: int
    root_hash: str
    checkpoint_time: str
    witnesses: tuple[WitnessView, ...]
    entries: tuple[LogEntryRow, ...]
    search: str

    @property
    def exists(self) -> bool:
        return bool(self.origin)

    def summary(self) -> list[str]:
        if not self.exists:
            return [
                "No transparency log on this appliance: signatures are not logged.",
                "Create one with `airseal log init --key NAME`.",
            ]
        return [
            f"Log {self.origin} (key {self.key_name}): {self.size} entries",
            f"Latest checkpoint: size {self.checkpoint_size}, signed {self.checkpoint_time}",
            f"  root {self.root_hash}",
        ]

    def witness_lines(self) -> list[str]:
        if not self.witnesses:
            return ["Witnesses: none configured"]
        return ["Witnesses:", *(f"  {w.describe()}" for w in self.witnesses)]


def _zulu(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def witness_views(witnesses: Sequence[WitnessKey], cosigned: str | None
                  ) -> tuple[WitnessView, ...]:
    """The witnesses the site's policy names, each with its cosignature on ``cosigned`` (the
    note :mod:`airseal.appliance.witnesses` keeps: the latest checkpoint they cosigned), if any.
    A kept note whose lines do not verify shows no cosignature (``log witness-import`` refuses
    such lines, so only a damaged home has one)."""
    found: dict[str, int] = {}
    size: int | None = None
    if cosigned is not None and witnesses:
        try:
            found = {c.witness.name: c.timestamp for c in verify_cosignatures(cosigned, witnesses)}
            size = int(SignedNote.parse(cosigned).body.split("\n")[1])
        except (LogProofError, ValueError, IndexError):
            found, size = {}, None
    return tuple(
        WitnessView(
            name=w.name,
            key_id=w.key_id.hex(),
            last_cosigned_size=size if w.name in found else None,
            last_cosigned=(_zulu(datetime.fromtimestamp(found[w.name], UTC))
                           if w.name in found else None),
        )
        for w in witnesses
    )


def entry_digest(kind: str, body: bytes) -> str:
    """The digest an entry is about, read from its (canonical, logged) body."""
    try:
        spec = json.loads(body)["spec"]
        if kind == "hashedrekord":
            return str(spec["data"]["hash"]["value"])
        if kind == "dsse":
            return str(spec["payloadHash"]["value"])
    except (ValueError, KeyError, TypeError):
        pass
    return ""


def _where(search: str) -> tuple[str, list[Any]]:
    text = search.strip().lower()
    if not text:
        return "", []
    clauses = ["instr(lower(subject || ' ' || kind), ?) > 0"]
    params: list[Any] = [text]
    if _HEX.match(text) and len(text) >= MIN_DIGEST_SEARCH:
        clauses.append("instr(body, CAST(? AS BLOB)) > 0")
        params.append(text)
        clauses.append("substr(lower(hex(leaf_hash)), 1, ?) = ?")
        params.extend([len(text), text])
    if text.isdigit():
        clauses.append("idx = ?")
        params.append(int(text))
    return " WHERE " + " OR ".join(clauses), params


def log_overview(conn: sqlite3.Connection, *, search: str = "", limit: int = 500,
                 witnesses: tuple[WitnessView, ...] = ()) -> LogOverview:
    """The log's size and latest checkpoint, its witnesses, and the newest ``limit`` entries
    that match ``search`` (newest first)."""
    row = conn.execute("SELECT origin, key_name, size FROM log WHERE id = 1").fetchone()
    if row is None:
        return LogOverview("", "", 0, 0, "", "", (), (), search)
    origin, key_name, size = row
    point = conn.execute(
        "SELECT size, root_hash, created FROM log_checkpoints ORDER BY size DESC LIMIT 1"
    ).fetchone()
    where, params = _where(search)
    sql = "SELECT idx, integrated_time, kind, subject, body, leaf_hash FROM log_entries"
    sql += where + " ORDER BY idx DESC LIMIT ?"  # fixed clauses; every value is bound
    rows = conn.execute(sql, [*params, limit]).fetchall()
    found = tuple(
        LogEntryRow(
            index=int(idx),
            integrated=_zulu(datetime.fromtimestamp(int(when), UTC)),
            kind=kind,
            subject=subject,
            digest=entry_digest(kind, bytes(body)),
            leaf_hash=bytes(leaf).hex(),
        )
        for idx, when, kind, subject, body, leaf in rows
    )
    return LogOverview(
        origin=origin,
        key_name=key_name,
        size=int(size),
        checkpoint_size=int(point[0]),
        root_hash=bytes(point[1]).hex(),
        checkpoint_time=_zulu(datetime.fromisoformat(point[2])),
        witnesses=witnesses,
        entries=found,
        search=search,
    )
