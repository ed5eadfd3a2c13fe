"""Reading the audit log for display (the chain itself is checked by
:mod:`airseal.appliance.audit`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    ts: str
    actor: str
    action: str
    subject: str
    details: dict[str, Any]

    def details_text(self) -> str:
        """``key=value`` pairs, sorted, as one line."""
        return " ".join(f"{k}={v}" for k, v in sorted(self.details.items()))


def recent_entries(
    db: sqlite_utils.Database, *, limit: int = 500, search: str | None = None
) -> list[AuditEntry]:
    """The newest ``limit`` entries, newest first; ``search`` matches action, subject, actor
    or details (case-insensitive substring)."""
    query = "SELECT seq, ts, actor, action, subject, details FROM audit"
    params: list[Any] = []
    if search:
        query += (
            " WHERE instr(lower(action || ' ' || subject || ' ' || actor || ' ' || details),"
            " lower(?)) > 0"
        )
        params.append(search)
    query += " ORDER BY seq DESC LIMIT ?"
    params.append(limit)
    entries = []
    for seq, ts, actor, action, subject, details in db.execute(query, params).fetchall():
        try:
            parsed = json.loads(details)
        except ValueError:
            parsed = {"raw": details}
        entries.append(
            AuditEntry(
                int(seq),
                ts,
                actor,
                action,
                subject,
                parsed if isinstance(parsed, dict) else {"value": parsed},
            )
        )
    return entries
