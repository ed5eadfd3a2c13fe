"""The append-only, hash-chained audit log of every operator action.

Row ``n`` stores ``hash = SHA-256(prev_hash || canonical(seq, ts, actor, action, subject,
details))`` with ``prev_hash`` the hash of row ``n-1``. Triggers refuse UPDATE and DELETE, and
:func:`verify_chain` finds what a determined editor (who drops the triggers) did: an edited row
fails its own hash, a deleted row leaves a gap in ``seq``, a reordered row breaks ``prev_hash``,
and a truncated tail no longer matches the head kept beside the database (``audit.head``).
Details must never contain secrets; callers pass names, digests and outcomes only.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from airseal._internal.atomic import write_atomic
from airseal.appliance.home import Home

GENESIS = "0" * 64
REORDER_SEARCH = 64  # how far from its place a moved entry is looked for, to name it as moved


def _row_hash(
    prev_hash: str, seq: int, ts: str, actor: str, action: str, subject: str, details: str
) -> str:
    body = json.dumps([seq, ts, actor, action, subject, details], separators=(",", ":"))
    return hashlib.sha256(prev_hash.encode() + body.encode()).hexdigest()


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def record(
    home: Home,
    db: sqlite_utils.Database,
    action: str,
    subject: str,
    details: dict[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> int:
    """Append one entry and move the head. Returns its sequence number."""
    ts = (now or datetime.now(UTC)).isoformat(timespec="microseconds")
    details_json = json.dumps(details or {}, sort_keys=True, separators=(",", ":"))
    actor = _actor()
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        digest = _row_hash(prev, seq, ts, actor, action, subject, details_json)
        conn.execute(
            "INSERT INTO audit (seq, ts, actor, action, subject, details, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, ts, actor, action, subject, details_json, prev, digest),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    write_atomic(home.audit_head_path, f"{seq} {digest}\n".encode(), mode=0o600)
    return int(seq)


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    problem: str


@dataclass(frozen=True)
class ChainReport:
    entries: int
    head: str
    problems: tuple[ChainProblem, ...]
    anchors: int = 0
    """Anchors of the chain found in the transparency log (each checked against the chain)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": self.head,
            "anchors": self.anchors,
            "problems": [{"seq": p.seq, "problem": p.problem} for p in self.problems],
        }


def _original_position(seq: int, *fields: str) -> int | None:
    """The sequence number an intact entry was written with, if it sits near ``seq``."""
    prev_hash, ts, actor, action, subject, details, digest = fields
    for candidate in range(max(1, seq - REORDER_SEARCH), seq + REORDER_SEARCH + 1):
        if (
            candidate != seq
            and _row_hash(prev_hash, candidate, ts, actor, action, subject, details) == digest
        ):
            return candidate
    return None


def verify_chain(home: Home, db: sqlite_utils.Database) -> ChainReport:
    """Walk the whole chain and name every row that was edited, deleted or moved."""
    problems: list[ChainProblem] = []
    expected_seq, prev, count = 1, GENESIS, 0
    rows = db.execute(
        "SELECT seq, ts, actor, action, subject, details, prev_hash, hash FROM audit ORDER BY rowid"
    ).fetchall()
    for seq, ts, actor, action, subject, details, prev_hash, digest in rows:
        count += 1
        if seq != expected_seq:
            if seq > expected_seq:
                missing = ", ".join(str(s) for s in range(expected_seq, seq))
                problems.append(ChainProblem(seq, f"row(s) {missing} deleted before row {seq}"))
            else:
                problems.append(ChainProblem(seq, f"row {seq} is out of order (moved)"))
        if _row_hash(prev_hash, seq, ts, actor, action, subject, details) != digest:
            origin = _original_position(seq, prev_hash, ts, actor, action, subject, details, digest)
            if origin is not None:
                problems.append(
                    ChainProblem(
                        seq, f"row {seq} holds the entry written as row {origin} (rows reordered)"
                    )
                )
            else:
                problems.append(ChainProblem(seq, f"row {seq} ({action} {subject}) was edited"))
        elif prev_hash != prev:
            problems.append(
                ChainProblem(
                    seq,
                    f"row {seq} does not follow the row before it (reordered or a row was removed)",
                )
            )
        prev, expected_seq = digest, seq + 1
    head = prev
    try:
        head_seq, head_hash = home.audit_head_path.read_text().split()
        if count and (int(head_seq) != expected_seq - 1 or head_hash != head):
            problems.append(
                ChainProblem(
                    int(head_seq),
                    f"the log ends at row {expected_seq - 1} but the recorded head is row "
                    f"{head_seq}: rows were removed from the end or the head was replaced",
                )
            )
    except FileNotFoundError:
        if count:
            problems.append(ChainProblem(0, "audit.head is missing"))
    except ValueError:
        problems.append(ChainProblem(0, "audit.head is damaged"))
    anchors = _check_anchors(home, db, problems)
    return ChainReport(entries=count, head=head, problems=tuple(problems), anchors=anchors)


def _check_anchors(home: Home, db: sqlite_utils.Database, problems: list[ChainProblem]) -> int:
    """The chain against its anchors in the transparency log, when this appliance keeps one: a
    rewrite that also replaced ``audit.head`` still differs from the heads the log recorded."""
    from airseal.appliance.audit_anchor import check_anchors
    from airseal.trustroot.keys import load_public_key

    row = db.conn.execute("SELECT public_key_pem FROM log WHERE id = 1").fetchone()
    if row is None:
        return 0
    key = load_public_key(row[0].encode(), subject="the log key")
    count, found = check_anchors(db.conn, home.appliance_id, key)
    problems.extend(ChainProblem(p.seq, p.problem) for p in found)
    return count
