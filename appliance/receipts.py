"""Receipts import: what each endpoint did with each export, verified, then stored.

Couriers bring sticks back with ``airseal/receipts/<agent-id>/<export-id>.json`` files, written
and signed by agents (:mod:`airseal.agent.receipts`). Each is verified before anything of it is
kept:

1. the file obeys the media rules (name, size, plain file:
:func:`airseal.media.rules.receipt_problem`,
   read through :class:`airseal.media.reader.DirectorySource`, which follows no link);
2. it is a DSSE bundle whose statement is a receipt (:mod:`airseal.media.receipt`), and whose
   signature verifies with the agent key the receipt carries;
3. the agent and export ids match the file's path;
4. receipt identity: when the agent id is enrolled (:mod:`airseal.appliance.enrolment`), the
   signing key is the enrolled one; a receipt under an enrolled id with another key is refused
   and never replaces the enrolled key (the endpoint was re-installed, and an administrator must
   enrol its new key, or someone impersonates it);
5. the export exists in this appliance's ``exports`` table, and its sequence and signing key are
   the ones the receipt names.

A receipt that passes every check but whose agent id is not enrolled proves only that someone
holds the key it carries: it is kept aside as *unenrolled* (never counted in fleet status) until
the operator enrols that agent, after checking its key fingerprint.

A refused receipt is reported with its file and check and nothing of it is stored; the others are
still imported. Importing the same receipt twice changes nothing; a newer receipt for the same
agent and export (the agent imported the export again) replaces the older one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from airseal.appliance import audit
from airseal.appliance.home import Home
from airseal.errors import AirsealError
from airseal.media import layout
from airseal.media.limits import MAX_RECEIPT_BYTES
from airseal.media.reader import DirectorySource
from airseal.media.receipt import ReceiptPredicate, read_receipt_statement, receipt_media_path
from airseal.media.rules import EntryKind, receipt_problem
from airseal.trustroot.bundle import parse_bundle
from airseal.trustroot.dsse import Statement
from airseal.trustroot.errors import KeyFormatError, VerificationError
from airseal.trustroot.keys import fingerprint, load_public_key
from airseal.trustroot.verify import verify_dsse_bundle

RECEIPTS_ON_MOUNT = layout.on_mount(layout.RECEIPTS_DIR)
MAX_UNENROLLED_RECEIPTS = 10_000
"""Receipts kept aside at most: anyone can sign receipts for made-up agent ids."""


class ReceiptRefused(VerificationError):
    """A receipt did not verify; nothing of it was stored."""

    title = "Receipt refused"
    check = "receipt"
    hint = "the receipt was not written by a genuine agent for one of this appliance's exports"


class AgentKeyChanged(ReceiptRefused):
    """The receipt names an enrolled agent but is signed with another key."""

    title = "Receipt identity refused"
    check = "receipt identity"
    hint = (
        "this agent id is enrolled with another key: the endpoint was re-installed (an "
        "administrator must remove and enrol it again), or someone impersonates it"
    )


class UnknownExport(ReceiptRefused):
    title = "Unknown export"
    check = "export"
    hint = "the receipt answers an export this appliance did not write (another appliance?)"


@dataclass(frozen=True)
class VerifiedReceipt:
    path: str
    predicate: ReceiptPredicate
    key_fingerprint: str
    public_key_pem: str
    sha256: str
    bundle: bytes
    enrolled: bool
    """The agent id is enrolled with this key; otherwise the receipt is kept aside."""


@dataclass(frozen=True)
class ReceiptResult:
    path: str
    status: str
    """imported | updated | unchanged | unenrolled (kept aside) | refused"""
    agent_id: str | None = None
    export_id: str | None = None
    outcome: str | None = None
    """The receipt's own status: completed | partial | refused (what the agent did)."""
    error: AirsealError | None = None
    key_fingerprint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "agent_id": self.agent_id,
            "export_id": self.export_id,
            "outcome": self.outcome,
            "key_fingerprint": self.key_fingerprint,
            "error": None
            if self.error is None
            else {
                "title": self.error.title,
                "check": getattr(self.error, "check", None),
                "detail": self.error.detail,
                "message": str(self.error),
                "hint": self.error.hint or None,
            },
        }


@dataclass
class ReceiptImportReport:
    mount: str
    results: list[ReceiptResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def refused(self) -> list[ReceiptResult]:
        return [r for r in self.results if r.status == "refused"]

    @property
    def ok(self) -> bool:
        return not self.refused

    def lines(self) -> list[str]:
        """One line per receipt, then the totals (both front ends show these)."""
        lines = []
        for result in self.results:
            if result.status == "refused":
                assert result.error is not None
                lines.append(result.error.diagnostics())
            elif result.status == "unenrolled":
                lines.append(
                    f"unenrolled {result.agent_id}  export {result.export_id}: kept aside, not "
                    f"counted (key {result.key_fingerprint}; enrol the agent to count it)"
                )
            else:
                lines.append(
                    f"{result.status:<9} {result.agent_id}  export {result.export_id}: "
                    f"{result.outcome}"
                )
        unenrolled = self.count("unenrolled")
        aside = f"{unenrolled} unenrolled (kept aside), " if unenrolled else ""
        lines.append(
            f"{len(self.results)} receipt(s): {self.count('imported')} imported, "
            f"{self.count('updated')} updated, {self.count('unchanged')} unchanged, "
            f"{aside}{self.count('refused')} refused"
        )
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "mount": self.mount,
            "found": len(self.results),
            "imported": self.count("imported"),
            "updated": self.count("updated"),
            "unchanged": self.count("unchanged"),
            "unenrolled": self.count("unenrolled"),
            "refused": self.count("refused"),
            "receipts": [r.to_dict() for r in self.results],
        }


def verify_receipt(db: sqlite_utils.Database, data: bytes, path: str) -> VerifiedReceipt:
    """Checks 2-4 of the module docstring for one receipt (``path`` relative to the mount)."""
    bundle = parse_bundle(data, subject=path)
    envelope = bundle.dsse_envelope
    if envelope is None:
        raise ReceiptRefused("is not a DSSE bundle", subject=path, check="bundle")
    claimed = read_receipt_statement(
        Statement.from_payload(envelope.payload, subject=path), subject=path
    )
    try:
        key = load_public_key(claimed.agent_key.encode(), subject=path)
    except KeyFormatError as exc:
        raise ReceiptRefused(
            f"carries an unusable agent key ({exc.detail})", subject=path, check="agent-key"
        ) from None
    predicate = read_receipt_statement(verify_dsse_bundle(key, bundle, subject=path), subject=path)
    key_fp = fingerprint(key)
    expected = layout.on_mount(
        f"{layout.RECEIPTS_DIR}/{predicate.agent_id}/{predicate.export_id}.json"
    )
    if path != expected:
        raise ReceiptRefused(
            f"is signed for agent {predicate.agent_id} and export {predicate.export_id}, which "
            f"belong at {expected}",
            subject=path,
            check="path",
        )
    enrolled = db.execute(
        "SELECT key_fingerprint FROM enrolled_agents WHERE id = ?", [predicate.agent_id]
    ).fetchone()
    if enrolled is not None and enrolled[0] != key_fp:
        raise AgentKeyChanged(
            f"agent {predicate.agent_id} is enrolled with key {enrolled[0]}, but this receipt "
            f"is signed with key {key_fp}",
            subject=path,
        )
    export = db.execute(
        "SELECT sequence, key_fingerprint FROM exports WHERE id = ?", [predicate.export_id]
    ).fetchone()
    if export is None:
        raise UnknownExport(f"no export {predicate.export_id} on this appliance", subject=path)
    sequence, distributor = export
    if sequence != predicate.sequence or distributor != predicate.distributor:
        raise ReceiptRefused(
            f"names export {predicate.export_id} with sequence {predicate.sequence} from "
            f"{predicate.distributor}; this appliance wrote it with sequence {sequence} from "
            f"{distributor}",
            subject=path,
            check="export",
        )
    return VerifiedReceipt(
        path,
        predicate,
        key_fp,
        claimed.agent_key,
        hashlib.sha256(data).hexdigest(),
        data,
        enrolled is not None,
    )


def _store(db: sqlite_utils.Database, receipt: VerifiedReceipt, now: datetime) -> str:
    """Store a verified receipt; returns imported | updated | unchanged."""
    p = receipt.predicate
    stamp = now.isoformat(timespec="seconds")
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT 1 FROM agents WHERE id = ?", [p.agent_id]).fetchone() is None:
            conn.execute(
                "INSERT INTO agents (id, key_fingerprint, public_key_pem, hostname, os, "
                "first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    p.agent_id,
                    receipt.key_fingerprint,
                    receipt.public_key_pem,
                    p.hostname,
                    p.os,
                    stamp,
                    stamp,
                ],
            )
        else:
            conn.execute(
                "UPDATE agents SET hostname = ?, os = ?, last_seen = ? WHERE id = ?",
                [p.hostname, p.os, stamp, p.agent_id],
            )
        existing = conn.execute(
            "SELECT sha256, finished FROM receipts WHERE agent_id = ? AND export_id = ?",
            [p.agent_id, p.export_id],
        ).fetchone()
        if existing is not None and (
            existing[0] == receipt.sha256 or datetime.fromisoformat(existing[1]) > p.finished
        ):
            conn.execute("COMMIT")
            return "unchanged"
        conn.execute(
            "DELETE FROM receipt_actions WHERE agent_id = ? AND export_id = ?",
            [p.agent_id, p.export_id],
        )
        conn.execute(
            "INSERT OR REPLACE INTO receipts (agent_id, export_id, status, refusal, reboot, "
            "started, finished, imported, sha256, predicate, bundle) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                p.agent_id,
                p.export_id,
                p.status,
                json.dumps(p.refusal.to_json_dict()) if p.refusal else None,
                p.reboot,
                p.started.isoformat(),
                p.finished.isoformat(),
                stamp,
                receipt.sha256,
                json.dumps(p.to_json_dict(), sort_keys=True),
                receipt.bundle.decode(),
            ],
        )
        conn.executemany(
            "INSERT INTO receipt_actions (agent_id, export_id, action_id, version, outcome, "
            "reason, exit_code, reboot_requested) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    p.agent_id,
                    p.export_id,
                    a.id,
                    a.version,
                    a.outcome,
                    a.reason,
                    a.exit_code,
                    int(a.reboot_requested),
                )
                for a in p.actions
            ],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return "updated" if existing is not None else "imported"


def _keep_aside(db: sqlite_utils.Database, receipt: VerifiedReceipt, now: datetime) -> str:
    """Keep a receipt of an agent not enrolled; returns unenrolled | unchanged."""
    p = receipt.predicate
    kept = db.execute(
        "SELECT sha256 FROM unenrolled_receipts WHERE agent_id = ? AND export_id = ? "
        "AND key_fingerprint = ?",
        [p.agent_id, p.export_id, receipt.key_fingerprint],
    ).fetchone()
    if kept is not None and kept[0] == receipt.sha256:
        return "unchanged"
    if kept is None:
        (waiting,) = db.execute("SELECT COUNT(*) FROM unenrolled_receipts").fetchone()
        if waiting >= MAX_UNENROLLED_RECEIPTS:
            raise ReceiptRefused(
                f"{waiting} receipts of agents not enrolled are already kept aside; enrol or "
                "remove agents before more are kept",
                subject=receipt.path,
                check="unenrolled limit",
            )
    with db.conn:
        db.conn.execute(
            "INSERT OR REPLACE INTO unenrolled_receipts (agent_id, export_id, key_fingerprint, "
            "public_key_pem, hostname, os, status, finished, received, sha256, bundle) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                p.agent_id,
                p.export_id,
                receipt.key_fingerprint,
                receipt.public_key_pem,
                p.hostname,
                p.os,
                p.status,
                p.finished.isoformat(),
                now.isoformat(timespec="seconds"),
                receipt.sha256,
                receipt.bundle.decode(),
            ],
        )
    return "unenrolled"


def admit_unenrolled(db: sqlite_utils.Database, agent_id: str, now: datetime) -> int:
    """Move the receipts kept aside for ``agent_id`` into fleet status, now that it is enrolled:
    each is verified again (the enrolled key must have signed it); those signed with another key
    are dropped. Returns how many were stored."""
    rows = db.execute(
        "SELECT export_id, bundle FROM unenrolled_receipts WHERE agent_id = ? ORDER BY finished",
        [agent_id],
    ).fetchall()
    stored = 0
    for export_id, bundle in rows:
        path = layout.on_mount(receipt_media_path(agent_id, export_id))
        try:
            receipt = verify_receipt(db, bundle.encode(), path)
        except AirsealError:
            continue
        if receipt.enrolled:
            _store(db, receipt, now)
            stored += 1
    with db.conn:
        db.conn.execute("DELETE FROM unenrolled_receipts WHERE agent_id = ?", [agent_id])
    return stored


def _receipt_files(source: DirectorySource, report: ReceiptImportReport) -> list[tuple[str, int]]:
    if source.stat(RECEIPTS_ON_MOUNT) is None:
        return []
    files = []
    prefix = layout.MEDIA_DIR + "/"
    for entry in source.walk(RECEIPTS_ON_MOUNT):
        if entry.kind is EntryKind.DIRECTORY:
            continue
        if entry.kind is not EntryKind.FILE or entry.links > 1:
            report.results.append(
                ReceiptResult(
                    entry.path,
                    "refused",
                    error=ReceiptRefused(
                        f"is a {entry.kind.value if entry.links <= 1 else 'hard link'}, not a "
                        "plain file",
                        subject=entry.path,
                        check="entry-type",
                    ),
                )
            )
            continue
        problem = receipt_problem(entry.path[len(prefix) :], entry.size)
        if problem is not None:
            report.results.append(
                ReceiptResult(
                    entry.path,
                    "refused",
                    error=ReceiptRefused(problem, subject=entry.path, check="name"),
                )
            )
            continue
        files.append((entry.path, entry.size))
    return files


def import_receipts(
    home: Home, db: sqlite_utils.Database, mount: Path, *, now: datetime | None = None
) -> ReceiptImportReport:
    """Verify and store every receipt on the media at ``mount``; refusals are reported, not
    raised (:class:`airseal.media.errors.MediaReadError` only when the media cannot be read at
    all)."""
    now = now or datetime.now(UTC)
    source = DirectorySource(mount)
    report = ReceiptImportReport(str(mount))
    for path, _size in _receipt_files(source, report):
        try:
            data = source.read_bytes(path, max_size=MAX_RECEIPT_BYTES)
            receipt = verify_receipt(db, data, path)
            keep = _store if receipt.enrolled else _keep_aside
            status = keep(db, receipt, now)
        except AirsealError as error:
            # One hostile receipt must not cost the genuine ones beside it: report and go on.
            report.results.append(ReceiptResult(path, "refused", error=error))
            continue
        p = receipt.predicate
        report.results.append(
            ReceiptResult(
                path, status, p.agent_id, p.export_id, p.status,
                key_fingerprint=receipt.key_fingerprint,
            )
        )
    audit.record(
        home,
        db,
        "receipts.import",
        str(mount),
        {
            "imported": report.count("imported"),
            "updated": report.count("updated"),
            "unchanged": report.count("unchanged"),
            "unenrolled": [r.path for r in report.results if r.status == "unenrolled"],
            "refused": [r.path for r in report.refused],
        },
        now=now,
    )
    return report


# -- listing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiptListing:
    """Fleet status (enrolled agents only) and, apart, the agents whose receipts wait for
    enrolment."""

    actions: list[dict[str, Any]]
    agents: list[dict[str, Any]]
    receipts: list[dict[str, Any]]
    unenrolled: list[dict[str, Any]] = field(default_factory=list)

    def unenrolled_lines(self) -> list[str]:
        """The receipts kept aside, one line per agent id and key (host names escaped)."""
        from airseal.appliance.enrolment import shown

        lines = ["Unenrolled (receipts kept aside, not counted):"]
        for row in self.unenrolled:
            clash = row["keys_for_id"] > 1
            lines.append(
                f"  {row['agent_id']}  {shown(row['hostname'])} ({row['os']})  key "
                f"{row['key_fingerprint']}  {row['receipts']} receipt(s)"
                + (f"  WARNING: {row['keys_for_id']} keys claim this id" if clash else "")
            )
        lines.append(
            "  enrol one with `airseal agents enroll --from-receipt FILE` (or --id and --key)"
        )
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "actions": self.actions,
            "agents": self.agents,
            "receipts": self.receipts,
            "unenrolled": self.unenrolled,
        }


def _rows(
    db: sqlite_utils.Database, sql: str, params: list[Any] | None = None
) -> list[dict[str, Any]]:
    cursor = db.execute(sql, params or [])
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def list_unenrolled(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """One row per (agent id, key) whose receipts are kept aside; ``keys_for_id`` above 1 means
    several keys claim the same agent id: ask the endpoint which one is its own."""
    return _rows(
        db,
        "SELECT u.agent_id, u.key_fingerprint, MAX(u.hostname) AS hostname, MAX(u.os) AS os, "
        "COUNT(*) AS receipts, MAX(u.received) AS last_received, "
        "(SELECT COUNT(DISTINCT v.key_fingerprint) FROM unenrolled_receipts v "
        " WHERE v.agent_id = u.agent_id) AS keys_for_id "
        "FROM unenrolled_receipts u GROUP BY u.agent_id, u.key_fingerprint "
        "ORDER BY u.agent_id, u.key_fingerprint",
    )


def list_receipts(db: sqlite_utils.Database) -> ReceiptListing:
    """Per-action status (how many agents did what with each action version), per-agent status
    (its latest receipt and totals) and every receipt: of enrolled agents only. Receipts of
    agents not (or no longer) enrolled are listed apart, never counted."""
    outcomes = _rows(
        db,
        "SELECT ra.action_id, ra.version, ra.outcome, COUNT(*) AS agents, "
        "(SELECT name FROM actions a WHERE a.id = ra.action_id AND a.version = ra.version) "
        "AS name FROM receipt_actions ra WHERE ra.agent_id IN (SELECT id FROM enrolled_agents) "
        "GROUP BY ra.action_id, ra.version, ra.outcome "
        "ORDER BY ra.action_id, ra.version, ra.outcome",
    )
    actions: dict[tuple[str, int], dict[str, Any]] = {}
    for row in outcomes:
        entry = actions.setdefault(
            (row["action_id"], row["version"]),
            {
                "id": row["action_id"],
                "version": row["version"],
                "name": row["name"],
                "outcomes": {},
            },
        )
        entry["outcomes"][row["outcome"]] = row["agents"]
    for entry in actions.values():
        entry["agents"] = sum(entry["outcomes"].values())
    agents = _rows(
        db,
        "SELECT g.id, g.hostname, g.os, g.key_fingerprint, g.first_seen, g.last_seen, "
        "e.name, e.basis, "
        "(SELECT COUNT(*) FROM receipts r WHERE r.agent_id = g.id) AS receipts, "
        "(SELECT r.export_id FROM receipts r WHERE r.agent_id = g.id "
        " ORDER BY r.finished DESC LIMIT 1) AS last_export, "
        "(SELECT r.status FROM receipts r WHERE r.agent_id = g.id "
        " ORDER BY r.finished DESC LIMIT 1) AS last_status, "
        "(SELECT r.finished FROM receipts r WHERE r.agent_id = g.id "
        " ORDER BY r.finished DESC LIMIT 1) AS last_finished, "
        "(SELECT COUNT(*) FROM receipt_actions ra WHERE ra.agent_id = g.id "
        " AND ra.outcome = 'failed') AS failed_actions "
        "FROM agents g JOIN enrolled_agents e ON e.id = g.id ORDER BY g.hostname, g.id",
    )
    receipts = _rows(
        db,
        "SELECT agent_id, export_id, status, refusal, reboot, started, finished, imported "
        "FROM receipts WHERE agent_id IN (SELECT id FROM enrolled_agents) "
        "ORDER BY finished DESC",
    )
    for row in receipts:
        row["refusal"] = json.loads(row["refusal"]) if row["refusal"] else None
        row["actions"] = _rows(
            db,
            "SELECT action_id AS id, version, outcome, reason, exit_code, reboot_requested "
            "FROM receipt_actions WHERE agent_id = ? AND export_id = ? ORDER BY action_id",
            [row["agent_id"], row["export_id"]],
        )
    return ReceiptListing(list(actions.values()), agents, receipts, list_unenrolled(db))
