"""What an operator needs to see first: keys, actions, exports, receipts, the audit chain, and
what needs attention soon.

A read-only summary of the appliance database, computed with a handful of queries so that the
terminal UI can open on it without loading the signing stack. Time is injected (``now``): the
expiry warnings are plain functions of the data and the clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import sqlite_utils

from airseal.appliance import audit, settings
from airseal.appliance.home import Home

if TYPE_CHECKING:
    from airseal.appliance.site import SiteRepository

Topic = Literal["keys", "files", "actions", "export", "receipts", "audit", "settings", "site"]
Severity = Literal["error", "warning", "info"]

EXPIRING_SOON_DAYS = 14


@dataclass(frozen=True)
class Attention:
    """One thing the operator should look at, and where (``topic``) it is dealt with."""

    severity: Severity
    topic: Topic
    text: str


@dataclass(frozen=True)
class KeySummary:
    total: int
    by_backend: dict[str, int]
    tokens: int
    """Distinct hardware devices holding registered keys (PKCS#11 tokens and YubiKeys)."""
    names: tuple[str, ...]


@dataclass(frozen=True)
class ActionSummary:
    current: int
    expiring_soon: int
    expired: int
    revoked: int
    next_expiry: datetime | None


@dataclass(frozen=True)
class ExportBrief:
    export_id: str
    sequence: int
    created: datetime
    expires: datetime
    target: str
    actions: int
    key_name: str


@dataclass(frozen=True)
class AuditSummary:
    entries: int
    ok: bool
    problems: int
    head: str


@dataclass(frozen=True)
class DashboardSummary:
    appliance_id: str
    now: datetime
    keys: KeySummary
    files_total: int
    files_unverified: int
    actions: ActionSummary
    exports_total: int
    last_export: ExportBrief | None
    receipts_waiting: int | None
    """Exports whose receipts have not come back yet; ``None`` when receipts are not tracked."""
    audit: AuditSummary
    attention: tuple[Attention, ...]


def _keys(db: sqlite_utils.Database) -> KeySummary:
    by_backend: dict[str, int] = {}
    devices: set[str] = set()
    names: list[str] = []
    for name, backend, reference in db.execute(
        "SELECT name, backend, reference FROM keys ORDER BY name"
    ).fetchall():
        names.append(name)
        by_backend[backend] = by_backend.get(backend, 0) + 1
        if backend == "file":
            continue
        try:
            ref = json.loads(reference)
        except ValueError:
            ref = {}
        device = ref.get("token_serial") or ref.get("token_label") or ref.get("serial")
        devices.add(f"{backend}:{device}")
    return KeySummary(len(names), by_backend, len(devices), tuple(names))


def _actions(db: sqlite_utils.Database, now: datetime, soon: timedelta) -> ActionSummary:
    current = expiring = expired = revoked = 0
    next_expiry: datetime | None = None
    rows = db.execute(
        "SELECT valid_until, revoked FROM actions a WHERE version = "
        "(SELECT MAX(version) FROM actions b WHERE b.id = a.id)"
    ).fetchall()
    for valid_until, was_revoked in rows:
        if was_revoked:
            revoked += 1
            continue
        until = datetime.fromisoformat(valid_until)
        if until <= now:
            expired += 1
            continue
        current += 1
        if until <= now + soon:
            expiring += 1
        if next_expiry is None or until < next_expiry:
            next_expiry = until
    return ActionSummary(current, expiring, expired, revoked, next_expiry)


def _last_export(db: sqlite_utils.Database) -> tuple[int, ExportBrief | None]:
    total = int(db.execute("SELECT COUNT(*) FROM exports").fetchone()[0])
    row = db.execute(
        "SELECT id, sequence, created, expires, target, actions, key_name FROM exports "
        "ORDER BY created DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return total, None
    export_id, sequence, created, expires, target, actions, key_name = row
    return total, ExportBrief(
        export_id=export_id,
        sequence=int(sequence),
        created=datetime.fromisoformat(created),
        expires=datetime.fromisoformat(expires),
        target=target,
        actions=len(json.loads(actions)),
        key_name=key_name,
    )


def _receipts_waiting(db: sqlite_utils.Database) -> int | None:
    """Exports no agent has reported on yet (when the receipts table exists)."""
    if "receipts" not in db.table_names():
        return None
    columns = {c.name for c in db["receipts"].columns}
    if "export_id" not in columns:
        return None
    if "enrolled_agents" not in db.table_names():
        return None
    row = db.execute(  # only a receipt of an enrolled agent says an export arrived
        "SELECT COUNT(*) FROM exports e WHERE NOT EXISTS "
        "(SELECT 1 FROM receipts r WHERE r.export_id = e.id "
        "AND r.agent_id IN (SELECT id FROM enrolled_agents))"
    ).fetchone()
    return int(row[0])


def _attention(
    summary: DashboardSummary, db: sqlite_utils.Database, soon: timedelta
) -> list[Attention]:
    notes: list[Attention] = []
    if not summary.audit.ok:
        notes.append(
            Attention(
                "error",
                "audit",
                f"the audit chain is broken ({summary.audit.problems} problem(s)): keep the "
                "database for investigation",
            )
        )
    if summary.keys.total == 0:
        notes.append(Attention("warning", "keys", "no signing key: generate or import one"))
    acts = summary.actions
    if acts.expired:
        notes.append(
            Attention(
                "warning",
                "actions",
                f"{acts.expired} action(s) expired and are no longer exported: edit to re-sign",
            )
        )
    if acts.expiring_soon:
        notes.append(
            Attention(
                "warning",
                "actions",
                f"{acts.expiring_soon} action(s) expire within {soon.days} days",
            )
        )
    last = summary.last_export
    if last is not None:
        if last.expires <= summary.now:
            notes.append(
                Attention(
                    "warning",
                    "export",
                    f"the last export expired on {last.expires:%Y-%m-%d}: endpoints refuse "
                    "that media now; export again",
                )
            )
        elif last.expires <= summary.now + soon:
            notes.append(
                Attention(
                    "info",
                    "export",
                    f"the last export expires on {last.expires:%Y-%m-%d %H:%M} UTC",
                )
            )
    if summary.files_unverified:
        notes.append(
            Attention(
                "info",
                "files",
                f"{summary.files_unverified} stored file(s) carry no verified vendor signature",
            )
        )
    if not settings.get_flag(db, "intake.require-signature"):
        notes.append(
            Attention(
                "info",
                "settings",
                "intake accepts files without a vendor signature "
                "(setting intake.require-signature is false)",
            )
        )
    return notes


def summarize(
    home: Home,
    db: sqlite_utils.Database,
    *,
    now: datetime,
    expiring_within: timedelta = timedelta(days=EXPIRING_SOON_DAYS),
) -> DashboardSummary:
    """The dashboard's numbers and warnings at ``now`` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    chain = audit.verify_chain(home, db)
    files_total, files_unverified = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(verified = 0), 0) FROM files"
    ).fetchone()
    exports_total, last = _last_export(db)
    summary = DashboardSummary(
        appliance_id=home.appliance_id,
        now=now,
        keys=_keys(db),
        files_total=int(files_total),
        files_unverified=int(files_unverified),
        actions=_actions(db, now, expiring_within),
        exports_total=exports_total,
        last_export=last,
        receipts_waiting=_receipts_waiting(db),
        audit=AuditSummary(chain.entries, chain.ok, len(chain.problems), chain.head),
        attention=(),
    )
    notes = _attention(summary, db, expiring_within) + _site_attention(home, db, now)
    return DashboardSummary(**{**summary.__dict__, "attention": tuple(notes)})


def _site_attention(home: Home, db: sqlite_utils.Database, now: datetime) -> list[Attention]:
    """Site TUF roles near expiry: root and targets need their offline key holders (warn a
    month ahead), snapshot and timestamp only an export (warn three days ahead)."""
    from airseal.appliance.site import SiteRepository

    site = SiteRepository(home, db, _NoAsk())
    if not site.exists:
        return []
    notes = []
    status = site.status(now=now)
    for role in status.roles:
        days = role["expiresInDays"]
        ahead = 30 if role["role"] in ("root", "targets") else 3
        if days < 0:
            notes.append(Attention("error", "site", f"site {role['role']} expired on "
                                   f"{role['expires'][:10]}: endpoints refuse new media"))
        elif days <= ahead:
            fix = ("export again" if role["role"] in ("snapshot", "timestamp")
                   else "its key holders must sign a new version")
            notes.append(Attention("warning", "site", f"site {role['role']} expires in {days} "
                                   f"day(s) ({role['expires'][:10]}): {fix}"))
    for pending in status.pending:
        notes.append(Attention("info", "site", f"a {pending['role']} signing event waits for "
                               "signatures: airseal site sign"))
    notes.extend(_approval_attention(site, db, now))
    return notes


MAX_APPROVAL_NOTES = 3


def _approval_attention(site: SiteRepository, db: sqlite_utils.Database,
                        now: datetime) -> list[Attention]:
    """Current actions below the two-person rule's threshold: endpoints refuse them."""
    from airseal.appliance.actions import current_actions

    awaiting = site.awaiting_approval(current_actions(db, now), now=now)
    notes = [
        Attention("warning", "actions", f"action {a.action_id} {a.name} has {a.count} "
                  "approvals: endpoints refuse it until another distributor approves")
        for a in awaiting[:MAX_APPROVAL_NOTES]
    ]
    if len(awaiting) > MAX_APPROVAL_NOTES:
        notes.append(Attention("warning", "actions", f"{len(awaiting) - MAX_APPROVAL_NOTES} "
                               "more action(s) await approval"))
    return notes


class _NoAsk:
    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        raise RuntimeError("the dashboard never signs")

    def notice(self, message: str) -> None:
        pass
