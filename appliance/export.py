"""Export: put signed actions on USB media, atomically, with one signature per export.

The media work (staging, FAT32 splitting, read-back, the atomic swap) is
:mod:`airseal.media.writer`;
this module chooses the actions, reserves the next sequence number for the signing key, signs the
export statement once, and records the result. The sequence number is reserved *before* writing
and never reused, so it only ever grows per key even when an export fails half-way.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from airseal.appliance import audit, settings
from airseal.appliance.actions import ActionRecord, current_actions, get_action
from airseal.appliance.errors import UsageError
from airseal.appliance.home import Home
from airseal.appliance.intake import store_path
from airseal.appliance.keystore import get_key, open_signer
from airseal.appliance.prompts import Prompter
from airseal.appliance.tlog_store import LogAppender
from airseal.media import layout
from airseal.media.writer import ActionToExport, ExportHeader, ExportResult, write_export
from airseal.trustroot.bundle import bundle_to_json, sign_statement
from airseal.trustroot.dsse import Statement


@dataclass(frozen=True)
class ExportSummary:
    export_id: str
    sequence: int
    target: Path
    key_name: str
    key_fingerprint: str
    created: datetime
    expires: datetime
    actions: tuple[tuple[str, int], ...]
    files: int
    bytes_written: int
    duration_seconds: float
    read_back_ok: bool
    signatures: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id, "sequence": self.sequence, "target": str(self.target),
            "key": self.key_name, "fingerprint": self.key_fingerprint,
            "created": self.created.isoformat(), "expires": self.expires.isoformat(),
            "actions": [{"id": i, "version": v} for i, v in self.actions],
            "files": self.files, "bytes": self.bytes_written,
            "seconds": round(self.duration_seconds, 3), "read_back_ok": self.read_back_ok,
            "signatures": self.signatures,
        }


def select_actions(db: sqlite_utils.Database, action_ids: list[str] | None, now: datetime
                   ) -> list[ActionRecord]:
    """The latest version of each requested action (default: every current one)."""
    if action_ids:
        chosen = [get_action(db, action_id) for action_id in dict.fromkeys(action_ids)]
        for record in chosen:
            if record.revoked:
                raise UsageError(f"action {record.id} is revoked", subject=record.id)
            if record.expired(now):
                raise UsageError(f"action {record.id} expired on {record.valid_until}",
                                 subject=record.id, hint="edit it to sign a fresh version")
        return chosen
    chosen = current_actions(db, now)
    if not chosen:
        raise UsageError("there are no current actions to export",
                         hint="create one with `airseal action create`")
    return chosen


def _reserve_sequence(db: sqlite_utils.Database, fingerprint: str) -> int:
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT last_sequence FROM export_sequences WHERE key_fingerprint = ?",
                           [fingerprint]).fetchone()
        sequence = (row[0] if row else 0) + 1
        conn.execute("INSERT OR REPLACE INTO export_sequences (key_fingerprint, last_sequence) "
                     "VALUES (?, ?)", [fingerprint, sequence])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return int(sequence)


def export_to_media(
    home: Home,
    db: sqlite_utils.Database,
    target: Path,
    key_name: str,
    prompter: Prompter,
    *,
    action_ids: list[str] | None = None,
    valid_days: int | None = None,
    split_threshold: int = layout.FAT32_MAX_FILE_SIZE,
    allow_unknown_capacity: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> ExportSummary:
    now = now or datetime.now(UTC)
    target = Path(target)
    if not target.is_dir():
        raise UsageError(f"{target} is not a folder", hint="give the mount point of the media")
    record = get_key(db, key_name)
    chosen = select_actions(db, action_ids, now)
    days = valid_days if valid_days is not None else settings.get_int(db, "export.valid-days")
    if not 1 <= days <= 3650:
        raise UsageError("--valid-days must be between 1 and 3650")
    to_export = [
        ActionToExport(
            id=r.id, version=r.version, name=r.name, bundle=r.bundle.encode(),
            payload=store_path(home, r.payload_sha256), payload_name=r.predicate.payload.name,
        )
        for r in chosen
    ]
    signatures = 0
    with open_signer(home, record, prompter) as signer, LogAppender(home, db, prompter) as log:

        def sign(statement: Statement) -> bytes:
            nonlocal signatures
            signatures += 1
            return log.attach(
                bundle_to_json(sign_statement(signer, statement)),
                signer.public_key,
                f"export statement {signatures}",
            )

        header = ExportHeader(
            export_id=uuid.uuid4().hex, sequence=_reserve_sequence(db, record.fingerprint),
            created=now, expires=now + timedelta(days=days), appliance_id=home.appliance_id,
            distributor=record.fingerprint,
        )
        try:
            result: ExportResult = write_export(
                target, to_export, header, sign, split_threshold=split_threshold,
                on_progress=on_progress, allow_unknown_capacity=allow_unknown_capacity,
            )
        except Exception as error:
            audit.record(home, db, "export.failed", str(target),
                         {"export_id": header.export_id, "sequence": header.sequence,
                          "error": type(error).__name__})
            raise
    summary = ExportSummary(
        export_id=result.export_id, sequence=result.sequence, target=target, key_name=key_name,
        key_fingerprint=record.fingerprint, created=header.created, expires=header.expires,
        actions=tuple((r.id, r.version) for r in chosen), files=len(result.files) + 1,
        bytes_written=result.bytes_written, duration_seconds=result.duration_seconds,
        read_back_ok=result.read_back_ok, signatures=signatures,
    )
    db.table("exports").insert({
        "id": summary.export_id, "sequence": summary.sequence, "key_name": key_name,
        "key_fingerprint": record.fingerprint, "created": header.created.isoformat(),
        "expires": header.expires.isoformat(), "target": str(target),
        "actions": json.dumps([{"id": i, "version": v} for i, v in summary.actions]),
        "files": summary.files, "bytes": summary.bytes_written,
    })
    audit.record(home, db, "export", str(target),
                 {"export_id": summary.export_id, "sequence": summary.sequence, "key": key_name,
                  "actions": len(summary.actions), "bytes": summary.bytes_written})
    return summary


def list_exports(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [
        {**row, "actions": json.loads(row["actions"])}
        for row in db.table("exports").rows_where(order_by="created desc")
    ]
