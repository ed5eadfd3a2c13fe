"""The agent's journal: SQLite through the standard library's sqlite3, WAL, schema versioned by
migrations. (No sqlite-utils: the endpoint installs only what the agent needs, and the journal
uses nothing of it but a connection.)

It remembers what the endpoint trusts and has done, so that:
- a replayed (older) export is refused: the last accepted sequence per distributor is kept;
- a distributor is approved once: the approval is kept;
- re-importing is idempotent: an action version that succeeded is never run again;
- a crash is seen: a run is recorded as ``started`` (durably) before its program starts, and a
  ``started`` run found by the next command holding the state lock is a run that never finished.

The schema version is SQLite's ``user_version``; each migration runs in one transaction with the
version bump (:mod:`airseal._internal.migrations` runs them). Migrations only ever append.
Commits are durable (``synchronous=FULL``); the pipeline batches many rows into one transaction
where a crash cannot make that wrong.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from airseal._internal import migrations
from airseal.agent.errors import StateError

MIGRATIONS: tuple[str, ...] = (
    # 1: distributors, imports and action runs
    """
    CREATE TABLE distributors (
        fingerprint TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        public_key_pem TEXT NOT NULL,
        may_sign TEXT NOT NULL,            -- comma-separated: exports, actions
        enrolled TEXT NOT NULL,
        approved TEXT,                     -- when approved for this endpoint, else NULL
        approved_how TEXT,                 -- prompt | yes-flag | enrolment
        last_sequence INTEGER NOT NULL DEFAULT 0,
        last_export_id TEXT,
        last_export_sha256 TEXT
    );
    CREATE TABLE imports (
        id INTEGER PRIMARY KEY,
        started TEXT NOT NULL,
        finished TEXT,
        media TEXT NOT NULL,
        export_id TEXT,
        sequence INTEGER,
        distributor TEXT,
        export_sha256 TEXT,
        dry_run INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,              -- running | completed | partial | refused | dry-run
                                           -- | interrupted
        error TEXT,                        -- JSON {title, check, subject, detail} of a refusal
        receipt_path TEXT,
        receipt TEXT,                      -- the signed receipt as written to the media
        reboot TEXT                        -- none | performed | pending | failed
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        import_id INTEGER NOT NULL REFERENCES imports (id),
        export_id TEXT NOT NULL,
        action_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        name TEXT NOT NULL,
        mode TEXT NOT NULL,
        payload_sha256 TEXT NOT NULL,
        outcome TEXT NOT NULL,             -- started | succeeded | failed | skipped | already-done
                                           -- | refused | not-run | would-run | interrupted
        reason TEXT,
        exit_code INTEGER,
        output TEXT,
        reboot_requested INTEGER NOT NULL DEFAULT 0,
        started TEXT NOT NULL,
        finished TEXT
    );
    CREATE INDEX runs_by_action ON runs (action_id, version, outcome);
    CREATE INDEX runs_by_import ON runs (import_id);
    """,
    # 2: identify an export by its signed statement, not by its bundle file's bytes (which
    # re-encoding changes without touching the signature). Records made before keep only the
    # bundle's digest, and are still matched by it.
    """
    ALTER TABLE distributors ADD COLUMN last_statement_sha256 TEXT;
    ALTER TABLE imports ADD COLUMN statement_sha256 TEXT;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

INTERRUPTED_REASON = (
    "the agent stopped while this action was running (crash, kill or power loss); "
    "its result is unknown"
)


def _ts(when: datetime) -> str:
    return when.isoformat(timespec="microseconds")


@dataclass(frozen=True)
class DistributorRecord:
    fingerprint: str
    name: str
    public_key_pem: str
    may_sign: frozenset[str]
    enrolled: str
    approved: str | None
    approved_how: str | None
    last_sequence: int
    last_export_id: str | None
    last_export_sha256: str | None
    last_statement_sha256: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "name": self.name,
            "maySign": sorted(self.may_sign),
            "enrolled": self.enrolled,
            "approved": self.approved,
            "approvedHow": self.approved_how,
            "lastSequence": self.last_sequence,
            "lastExportId": self.last_export_id,
        }


@dataclass(frozen=True)
class RunKey:
    """What makes two runs "the same action version": id, version and payload digest."""

    action_id: str
    version: int
    payload_sha256: str


@dataclass(frozen=True)
class RunRecord:
    """One run row. ``outcome`` is one of the values in the schema's comment, or
    ``not-retried`` (a failed execute held back by the retry policy)."""

    id: int
    import_id: int
    export_id: str
    action_id: str
    version: int
    name: str
    mode: str
    payload_sha256: str
    outcome: str
    reason: str | None
    exit_code: int | None
    output: str | None
    reboot_requested: bool
    started: str
    finished: str | None

    @property
    def key(self) -> RunKey:
        return RunKey(self.action_id, self.version, self.payload_sha256)

    def to_json_dict(self, *, with_output: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.action_id,
            "version": self.version,
            "name": self.name,
            "mode": self.mode,
            "payloadSha256": self.payload_sha256,
            "outcome": self.outcome,
            "reason": self.reason,
            "exitCode": self.exit_code,
            "rebootRequested": self.reboot_requested,
            "started": self.started,
            "finished": self.finished,
            "exportId": self.export_id,
        }
        if with_output:
            data["output"] = self.output
        return data


@dataclass(frozen=True)
class ImportRecord:
    id: int
    started: str
    finished: str | None
    media: str
    export_id: str | None
    sequence: int | None
    distributor: str | None
    export_sha256: str | None
    dry_run: bool
    status: str
    error: dict[str, Any] | None
    receipt_path: str | None
    reboot: str | None
    statement_sha256: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "import": self.id,
            "started": self.started,
            "finished": self.finished,
            "media": self.media,
            "exportId": self.export_id,
            "sequence": self.sequence,
            "distributor": self.distributor,
            "dryRun": self.dry_run,
            "status": self.status,
            "error": self.error,
            "receipt": self.receipt_path,
            "reboot": self.reboot,
        }


@dataclass(frozen=True)
class RunHistory:
    """What earlier imports did, as the planner needs it (a pure value)."""

    succeeded: frozenset[RunKey]
    interrupted: dict[RunKey, str]
    """Runs found interrupted, with when they started."""
    failed: dict[RunKey, int] = field(default_factory=dict)
    """How many times each action version that never succeeded ran and failed."""


class Journal:
    """The open journal. Use :meth:`open`; close it (or use it as a context manager)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, path: Path) -> Journal:
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open the journal: {exc}", subject=str(path)) from None
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")
        journal = cls(conn)
        journal.migrate(subject=str(path))
        return journal

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- schema ----------------------------------------------------------------------------------

    def schema_version(self) -> int:
        return migrations.schema_version(self.conn)

    def migrate(self, *, subject: str = "journal") -> int:
        try:
            return migrations.migrate(self.conn, MIGRATIONS)
        except migrations.SchemaTooNew as exc:
            raise StateError(
                f"journal schema {exc.found} is newer than this agent ({exc.supported})",
                subject=subject,
                hint="upgrade airseal-agent",
            ) from None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One durable commit for everything inside the block (or nothing on error)."""
        conn = self.conn
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, list(params))
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    # -- distributors ----------------------------------------------------------------------------

    def add_distributor(
        self,
        fingerprint: str,
        name: str,
        public_key_pem: str,
        may_sign: Iterable[str],
        *,
        now: datetime,
        approved_how: str | None = None,
    ) -> DistributorRecord:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO distributors (fingerprint, name, public_key_pem, may_sign, enrolled, "
                "approved, approved_how) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    fingerprint,
                    name,
                    public_key_pem,
                    ",".join(sorted(may_sign)),
                    _ts(now),
                    _ts(now) if approved_how else None,
                    approved_how,
                ],
            )
        record = self.distributor(fingerprint)
        assert record is not None
        return record

    def update_distributor(
        self, fingerprint: str, *, name: str, may_sign: Iterable[str]
    ) -> DistributorRecord:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE distributors SET name = ?, may_sign = ? WHERE fingerprint = ?",
                [name, ",".join(sorted(may_sign)), fingerprint],
            )
        record = self.distributor(fingerprint)
        assert record is not None
        return record

    def distributor(self, fingerprint: str) -> DistributorRecord | None:
        rows = self._rows("SELECT * FROM distributors WHERE fingerprint = ?", [fingerprint])
        return _distributor(rows[0]) if rows else None

    def distributors(self) -> list[DistributorRecord]:
        return [_distributor(r) for r in self._rows("SELECT * FROM distributors ORDER BY name")]

    def approve(self, fingerprint: str, how: str, *, now: datetime) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE distributors SET approved = ?, approved_how = ? WHERE fingerprint = ?",
                [_ts(now), how, fingerprint],
            )

    def accept_export(
        self,
        fingerprint: str,
        sequence: int,
        export_id: str,
        sha256: str,
        *,
        statement_sha256: str,
    ) -> None:
        """Remember the newest export accepted from a distributor (replay protection): its
        sequence, id, bundle file digest and signed statement digest (its identity)."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE distributors SET last_sequence = ?, last_export_id = ?, "
                "last_export_sha256 = ?, last_statement_sha256 = ? "
                "WHERE fingerprint = ? AND last_sequence <= ?",
                [sequence, export_id, sha256, statement_sha256, fingerprint, sequence],
            )

    # -- imports ---------------------------------------------------------------------------------

    def begin_import(self, media: str, *, now: datetime, dry_run: bool) -> int:
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO imports (started, media, dry_run, status) VALUES (?, ?, ?, ?)",
                [_ts(now), media, int(dry_run), "running"],
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def set_import_export(
        self,
        import_id: int,
        *,
        export_id: str,
        sequence: int,
        distributor: str,
        sha256: str,
        statement_sha256: str,
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE imports SET export_id = ?, sequence = ?, distributor = ?, "
                "export_sha256 = ?, statement_sha256 = ? WHERE id = ?",
                [export_id, sequence, distributor, sha256, statement_sha256, import_id],
            )

    def finish_import(
        self,
        import_id: int,
        status: str,
        *,
        now: datetime,
        error: dict[str, Any] | None = None,
        receipt_path: str | None = None,
        receipt: bytes | None = None,
        reboot: str | None = None,
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE imports SET status = ?, finished = ?, error = ?, receipt_path = ?, "
                "receipt = ?, reboot = ? WHERE id = ?",
                [
                    status,
                    _ts(now),
                    json.dumps(error) if error else None,
                    receipt_path,
                    receipt.decode() if receipt else None,
                    reboot,
                    import_id,
                ],
            )

    def set_reboot(self, import_id: int, reboot: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE imports SET reboot = ? WHERE id = ?", [reboot, import_id])

    def imports(self, *, limit: int = 20) -> list[ImportRecord]:
        rows = self._rows("SELECT * FROM imports ORDER BY id DESC LIMIT ?", [limit])
        return [_import(r) for r in rows]

    def import_record(self, import_id: int) -> ImportRecord:
        return _import(self._rows("SELECT * FROM imports WHERE id = ?", [import_id])[0])

    # -- runs ------------------------------------------------------------------------------------

    def add_runs(self, rows: Iterable[dict[str, Any]], *, now: datetime) -> list[int]:
        """Insert run rows (keys of the ``runs`` table) in one commit; returns their ids."""
        ids: list[int] = []
        with self.transaction() as conn:
            for row in rows:
                record = {
                    "exit_code": None,
                    "output": None,
                    "reason": None,
                    "reboot_requested": 0,
                    "finished": None,
                    "started": _ts(now),
                    **row,
                }
                columns = ", ".join(record)
                marks = ", ".join("?" for _ in record)
                cursor = conn.execute(
                    f"INSERT INTO runs ({columns}) VALUES ({marks})",  # noqa: S608 (our own keys)
                    list(record.values()),
                )
                assert cursor.lastrowid is not None
                ids.append(cursor.lastrowid)
        return ids

    def finish_runs(self, results: Iterable[tuple[int, dict[str, Any]]], *, now: datetime) -> None:
        """Record how runs ended: ``(run id, {outcome, reason, exit_code, output, ...})``."""
        with self.transaction() as conn:
            for run_id, fields in results:
                record = {"finished": _ts(now), **fields}
                if "reboot_requested" in record:
                    record["reboot_requested"] = int(bool(record["reboot_requested"]))
                assignments = ", ".join(f"{k} = ?" for k in record)
                conn.execute(
                    f"UPDATE runs SET {assignments} WHERE id = ?",  # noqa: S608 (our own keys)
                    [*record.values(), run_id],
                )

    def runs_for_import(self, import_id: int) -> list[RunRecord]:
        rows = self._rows("SELECT * FROM runs WHERE import_id = ? ORDER BY id", [import_id])
        return [_run(r) for r in rows]

    def history(self) -> RunHistory:
        succeeded = frozenset(
            RunKey(r["action_id"], r["version"], r["payload_sha256"])
            for r in self._rows(
                "SELECT DISTINCT action_id, version, payload_sha256 FROM runs "
                "WHERE outcome = 'succeeded'"
            )
        )
        interrupted: dict[RunKey, str] = {}
        for r in self._rows(
            "SELECT action_id, version, payload_sha256, started FROM runs "
            "WHERE outcome IN ('interrupted', 'started') ORDER BY id"
        ):
            key = RunKey(r["action_id"], r["version"], r["payload_sha256"])
            if key not in succeeded:
                interrupted[key] = r["started"]
        failed: dict[RunKey, int] = {}
        for r in self._rows(
            "SELECT action_id, version, payload_sha256, COUNT(*) AS times FROM runs "
            "WHERE outcome = 'failed' GROUP BY action_id, version, payload_sha256"
        ):
            key = RunKey(r["action_id"], r["version"], r["payload_sha256"])
            if key not in succeeded:
                failed[key] = r["times"]
        return RunHistory(succeeded, interrupted, failed)

    def unfinished_runs(self) -> list[RunRecord]:
        """Runs marked started that never finished (a crash, when no command holds the lock)."""
        rows = self._rows("SELECT * FROM runs WHERE outcome = 'started' ORDER BY id")
        return [_run(r) for r in rows]

    def recover_interrupted(self, *, now: datetime) -> list[RunRecord]:
        """Mark unfinished runs and imports interrupted; return the runs. Call with the lock."""
        found = self.unfinished_runs()
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET outcome = 'interrupted', reason = ?, finished = ? "
                "WHERE outcome = 'started'",
                [INTERRUPTED_REASON, _ts(now)],
            )
            conn.execute(
                "UPDATE imports SET status = 'interrupted', finished = ? WHERE status = 'running'",
                [_ts(now)],
            )
        return found

    def interrupted_runs(self, *, limit: int = 50) -> list[RunRecord]:
        """Crashed runs not since made good by a successful run of the same action version."""
        rows = self._rows(
            "SELECT * FROM runs r WHERE outcome = 'interrupted' AND NOT EXISTS ("
            "SELECT 1 FROM runs s WHERE s.outcome = 'succeeded' AND s.action_id = r.action_id "
            "AND s.version = r.version AND s.payload_sha256 = r.payload_sha256 AND s.id > r.id) "
            "ORDER BY id DESC LIMIT ?",
            [limit],
        )
        return [_run(r) for r in rows]

    def pending_reboot(self) -> ImportRecord | None:
        rows = self._rows(
            "SELECT * FROM imports WHERE reboot IN ('pending', 'failed') ORDER BY id DESC LIMIT 1"
        )
        return _import(rows[0]) if rows else None


def _distributor(row: dict[str, Any]) -> DistributorRecord:
    return DistributorRecord(
        **{**row, "may_sign": frozenset(p for p in row["may_sign"].split(",") if p)}
    )


def _run(row: dict[str, Any]) -> RunRecord:
    return RunRecord(**{**row, "reboot_requested": bool(row["reboot_requested"])})


def _import(row: dict[str, Any]) -> ImportRecord:
    data = dict(row)
    data.pop("receipt", None)
    data["dry_run"] = bool(data["dry_run"])
    data["error"] = json.loads(data["error"]) if data["error"] else None
    return ImportRecord(**data)
