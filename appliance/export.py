"""Export: put signed actions on USB media, atomically, with one signature per export.

The media work (staging, FAT32 splitting, read-back, the atomic swap) is
:mod:`airseal.media.writer`;
this module chooses the actions, reserves the next sequence number for the signing key, signs the
export statement once, and records the result. The sequence number is reserved *before* writing
and never reused, so it only ever grows per key even when an export fails half-way: such a
failure, or a cancellation (Ctrl-C), is in the audit log as ``export.failed`` /
``export.cancelled`` with the sequence it used up, so a gap in the sequences is explained.

Before the key is unlocked (a password or PIN asked for) the target must take a file: a
write-protected stick fails at once, not after the operator typed the password.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from airseal._internal.atomic import write_atomic
from airseal.appliance import audit, settings
from airseal.appliance.actions import ActionRecord, current_actions, get_action
from airseal.appliance.errors import UsageError
from airseal.appliance.home import Home
from airseal.appliance.intake import read_vendor_evidence, store_path
from airseal.appliance.keystore import get_key, open_signer
from airseal.appliance.prompts import Prompter
from airseal.appliance.tlog_store import EXPORT_SUBJECT, LogAppender, LogError, MediaLogFiles
from airseal.errors import AirsealError
from airseal.media.errors import MediaIOError
from airseal.media.parity import par2_tool
from airseal.media.writer import (
    ActionToExport,
    ExportHeader,
    ExportResult,
    ExtraFile,
    write_export,
)
from airseal.trustroot.bundle import bundle_to_json, sign_statement
from airseal.trustroot.dsse import Statement

log = logging.getLogger(__name__)


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
    """Files the export statement lists (action bundles, payloads, payload parts): what
    `airseal media check` counts as files checked."""
    listed_bytes: int
    """Their bytes: what `airseal media check` counts as bytes checked."""
    statement_bytes: int
    """The signed export statement, written beside the listed files (not listed in itself)."""
    repair_bytes: int
    """PAR2 repair data in ``airseal-repair/`` (0: setting export.parity-percent is 0)."""
    repair_seconds: float
    bytes_written: int
    """Everything written: the listed files and the statement."""
    duration_seconds: float
    read_back_ok: bool
    signatures: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id, "sequence": self.sequence, "target": str(self.target),
            "key": self.key_name, "fingerprint": self.key_fingerprint,
            "created": self.created.isoformat(), "expires": self.expires.isoformat(),
            "actions": [{"id": i, "version": v} for i, v in self.actions],
            "files": self.files, "listed_bytes": self.listed_bytes,
            "statement_bytes": self.statement_bytes, "bytes_written": self.bytes_written,
            "repair_bytes": self.repair_bytes, "repair_seconds": round(self.repair_seconds, 3),
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


def check_writable(target: Path) -> None:
    """Create and remove a probe file in ``target``: a read-only mount or a write-protected
    stick is refused before any key is unlocked."""
    probe = target / f".airseal-probe-{secrets.token_hex(4)}"  # (uuids name exports only)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        probe.unlink()
    except OSError as error:
        raise MediaIOError(
            f"the media cannot be written ({error.strerror or error})",
            subject=str(target),
            check="writable",
            hint="remove the write protection or remount the media read-write, then export again",
        ) from None


def _record_failure(home: Home, db: sqlite_utils.Database, target: Path,
                    header: ExportHeader | None, error: BaseException) -> None:
    """An export that did not finish, in the audit log: cancelled or failed, and whether it used
    up a sequence number (reserved numbers are never reused)."""
    cancelled = isinstance(error, KeyboardInterrupt) or type(error).__name__ == "Abort"
    detail: dict[str, Any] = {"error": type(error).__name__}
    if isinstance(error, AirsealError):
        detail["message"] = error.message()  # our messages never carry secrets
    if header is not None:
        detail.update(export_id=header.export_id, sequence=header.sequence,
                      sequence_used_up=True)
    else:
        detail["sequence_used_up"] = False
    audit.record(home, db, "export.cancelled" if cancelled else "export.failed", str(target),
                 detail)


def export_to_media(
    home: Home,
    db: sqlite_utils.Database,
    target: Path,
    key_name: str,
    prompter: Prompter,
    *,
    action_ids: list[str] | None = None,
    valid_days: int | None = None,
    split_threshold: int | None = None,
    allow_unknown_capacity: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
    on_phases: Callable[[int, int, int], None] | None = None,
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
            vendor=read_vendor_evidence(home, r.payload_sha256),
        )
        for r in chosen
    ]
    refuse_actions_outside_site_log(home, db, chosen)
    parity_percent = settings.get_int(db, "export.parity-percent")
    if parity_percent:
        par2_tool()  # a missing par2 is said before any key is unlocked
    check_writable(target)
    log.info("export to %s: %d action(s), key %s, valid %d days; the media is writable",
             target, len(chosen), key_name, days)
    extra_files, site_versions = _site_files(home, db, prompter, now)
    signatures = 0
    signed: dict[str, bytes] = {}
    header: ExportHeader | None = None
    try:
        with open_signer(home, record, prompter) as signer, \
                LogAppender(home, db, prompter) as tlog, _scratch(home, tlog.enabled) as scratch:

            log_files = _log_files(home, tlog, db, to_export)
            if log_files is not None:  # their log entries travel in log/proofs.json instead
                to_export = [replace(action, bundle=bundle)
                             for action, bundle in zip(to_export, log_files.bundles, strict=True)]

            def sign(statement: Statement) -> bytes:
                nonlocal signatures
                signatures += 1
                bundle = tlog.attach(
                    bundle_to_json(sign_statement(signer, statement)),
                    signer.public_key,
                    f"{EXPORT_SUBJECT} {signatures}",
                )
                signed[hashlib.sha256(bundle).hexdigest()] = bundle
                if log_files is not None and tlog.logged[-1] != log_files.size:
                    raise LogError(
                        f"the export statement was logged as entry {tlog.logged[-1]}, not "
                        f"{log_files.size}: something else was signed while this export was "
                        "written, so its proofs would not hold", hint="export again")
                return bundle

            header = ExportHeader(
                export_id=uuid.uuid4().hex, sequence=_reserve_sequence(db, record.fingerprint),
                created=now, expires=now + timedelta(days=days), appliance_id=home.appliance_id,
                distributor=record.fingerprint,
            )
            log.info("export %s: sequence %d reserved for key %s", header.export_id,
                     header.sequence, record.fingerprint[:16])
            result: ExportResult = write_export(
                target, to_export, header, sign, split_threshold=split_threshold,
                on_progress=on_progress, allow_unknown_capacity=allow_unknown_capacity,
                on_phases=on_phases,
                extra_files=[*extra_files, *_log_extra_files(log_files, scratch)],
                parity_percent=parity_percent, parity_scratch=_parity_scratch(home, parity_percent),
            )
            # After the export statement, which must be the entry right after the checkpoint on
            # the media (media_log_files), that checkpoint being the one the witnesses cosigned:
            # the export's TUF timestamp (airseal.appliance.site_log) and the audit chain's
            # anchor. The media is committed by now: a failure here must not report the export
            # as failed (`airseal log anchor` retries the anchor; `airseal log verify` names
            # metadata files that do not match their entries).
            try:
                if site_versions:
                    from airseal.appliance.site_log import metadata_entries

                    tlog.append_own(
                        lambda log_signer: metadata_entries(log_signer, site_versions))
                tlog.anchor_audit()  # the chain up to (not yet including) this export
            except AirsealError as exc:
                log.warning("export %s is complete, but logging after it failed (%s): run "
                            "`airseal log anchor`", header.export_id, exc)
    except BaseException as error:
        log.info("export to %s did not finish (%s)", target, type(error).__name__)
        _record_failure(home, db, target, header, error)
        raise
    assert header is not None
    listed_bytes = sum(written.size for written in result.files)
    summary = ExportSummary(
        export_id=result.export_id, sequence=result.sequence, target=target, key_name=key_name,
        key_fingerprint=record.fingerprint, created=header.created, expires=header.expires,
        actions=tuple((r.id, r.version) for r in chosen), files=len(result.files),
        listed_bytes=listed_bytes, statement_bytes=result.bytes_written - listed_bytes,
        bytes_written=result.bytes_written, duration_seconds=result.duration_seconds,
        repair_bytes=result.parity.bytes if result.parity else 0,
        repair_seconds=result.parity.seconds if result.parity else 0.0,
        read_back_ok=result.read_back_ok, signatures=signatures,
    )
    statement = signed.get(result.bundle_sha256)
    if statement is not None:
        keep_export_statement(home, summary.export_id, statement)
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


def export_statement_path(home: Home, export_id: str) -> Path:
    """Where the appliance keeps each export's signed statement, exactly as the media got it:
    the bytes receipts name by digest, and what `airseal evidence export` shows auditors."""
    return home.root / "exports" / f"{export_id}.sigstore.json"


def keep_export_statement(home: Home, export_id: str, bundle: bytes) -> None:
    path = export_statement_path(home, export_id)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    write_atomic(path, bundle, mode=0o644)


def _scratch(home: Home, needed: bool) -> Any:
    """A private folder under the home for files written before they are copied to media
    (only made when the export carries the log's files)."""
    import tempfile
    from contextlib import nullcontext

    if not needed:
        return nullcontext("")
    base = home.root / "tmp"
    base.mkdir(mode=0o700, exist_ok=True)
    return tempfile.TemporaryDirectory(dir=base)


def _parity_scratch(home: Home, percent: int) -> Path | None:
    """Where the repair data's copies of split payloads' parts go: beside the store (the same
    filesystem, so a reflink where it allows), not a RAM-backed /tmp."""
    if not percent:
        return None
    base = home.root / "tmp"
    base.mkdir(mode=0o700, exist_ok=True)
    return base


def _log_files(home: Home, tlog: LogAppender, db: sqlite_utils.Database,
               actions: list[ActionToExport]
               ) -> MediaLogFiles | None:
    """The log's checkpoint and proofs for this export (``None`` without a log)."""
    if not tlog.enabled:
        return None
    from airseal.appliance.tlog_store import TransparencyLog, media_log_files
    from airseal.appliance.witnesses import cosigned_note

    tree = TransparencyLog(db.conn)
    from airseal.media.layout import action_bundle_path

    files = media_log_files(
        tree, [(f"action {a.id} v{a.version}", action_bundle_path(a.id), a.bundle)
               for a in actions],
        cosigned_note(home, tree),
    )
    for subject in files.missing:
        log.warning("%s carries no log entry (signed before the log existed): endpoints that "
                     "require the log will refuse it; edit the action to sign it again", subject)
    return files


class ActionOutsideSiteLog(LogError):
    """An export with the appliance's log on would carry an action whose signatures are not in
    that log: every endpoint that trusts the site log refuses it (it knows no other log)."""

    title = "Action not in the site's log"


def refuse_actions_outside_site_log(home: Home, db: sqlite_utils.Database,
                                    chosen: list[ActionRecord]) -> None:
    """Before anything is unlocked, sent or written: with this appliance's log on, the export
    statement must go to that log (``--rekor-url`` is refused) and each action must carry at
    least one entry of it. An action logged only in another Rekor (``--rekor-url``), or signed
    before the log existed, is refused naming the action and where its entries are; endpoints
    would refuse the whole media for it (``tlog.logid`` / ``tlog.entry``), after the courier
    carried it. Without a log of its own nothing is checked: endpoints then know no log."""
    from airseal.appliance.rekor_client import current_target
    from airseal.appliance.tlog_store import log_info
    from airseal.trustroot.tlog.bundle_logs import bundle_logs, describe_logs

    info = log_info(db.conn)
    if info is None:
        return
    target = current_target()
    if target is not None:
        raise UsageError(
            f"this appliance keeps the site's transparency log ({info.origin}): the export "
            f"statement is logged there, right after the checkpoint the media carries, not in "
            f"{target.url}", check="tlog.export",
            hint="export without --rekor-url / --signing-config")
    names: dict[bytes, str] | None = None
    for record in chosen:
        logs = bundle_logs(json.loads(record.bundle), info.log_id)
        if logs.site_entries:
            continue
        subject = f"action {record.id} v{record.version}"
        again = (f"sign it again in the site log: `airseal action edit {record.id}` (a new "
                 "version, logged in this appliance's log; no --rekor-url), approve it again if "
                 "the site needs more signatures, then export; or leave it out (--action)")
        if logs.unlogged:
            raise ActionOutsideSiteLog(
                f"carries no entry of this appliance's log {info.origin} (it was signed before "
                "the log existed): endpoints that trust the site log refuse the media",
                subject=subject, check="tlog.entry", hint=again)
        if names is None:
            names = _rekor_names(home, db)
        raise ActionOutsideSiteLog(
            f"is logged only in another log ({describe_logs(logs.other_logs, names)}; signed "
            f"with --rekor-url), not in this appliance's log {info.origin} "
            f"(log id {info.log_id.hex()[:16]}...): endpoints that trust the site log accept "
            "only its entries and would refuse the media",
            subject=subject, check="tlog.logid", hint=again)


def _rekor_names(home: Home, db: sqlite_utils.Database) -> dict[bytes, str]:
    """Log id to ``baseUrl`` of the ``tlogs`` the trusted root in use lists (to name the Rekor
    an action was logged in); empty when it cannot be read: the log id is named anyway."""
    import base64

    from airseal.appliance.sigstore_roots import trusted_root_in_use

    try:
        document = json.loads(trusted_root_in_use(None, lambda: (home, db)).document)
        return {base64.b64decode(t["logId"]["keyId"]): str(t["baseUrl"])
                for t in document.get("tlogs") or []}
    except (AirsealError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _log_extra_files(files: MediaLogFiles | None, scratch: str) -> list[ExtraFile]:
    if files is None:
        return []
    folder = Path(scratch)
    extra = []
    for path, data in files.files():
        local = folder / path.replace("/", "-")
        local.write_bytes(data)
        extra.append(ExtraFile(path, local))
    return extra


def _site_files(home: Home, db: sqlite_utils.Database, prompter: Prompter, now: datetime
                ) -> tuple[list[ExtraFile], list[Any]]:
    """The site repository's metadata under ``tuf/``, with a timestamp signed for this export
    (none when the appliance has no site repository: pinned-key sites), and the metadata
    versions signed for it, to be logged after the export statement."""
    from airseal.appliance.site import SiteRepository

    site = SiteRepository(home, db, prompter)
    if not site.exists:
        return [], []
    versions = site.refresh_timestamp(now=now, log=False)
    return [ExtraFile(path, source) for path, source in site.media_files()], versions


@dataclass(frozen=True)
class ExportRecord:
    """One export this appliance started, as `airseal export list` shows it: written (from the
    exports table) or failed / cancelled (from the audit log, with the sequence it used up)."""

    sequence: int | None
    export_id: str | None
    created: str
    key: str | None
    actions: tuple[tuple[str, int], ...]
    target: str
    result: str
    """``written``, ``failed`` or ``cancelled``."""
    files: int | None = None
    bytes: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence, "export_id": self.export_id, "created": self.created,
            "key": self.key, "actions": [{"id": i, "version": v} for i, v in self.actions],
            "destination": self.target, "result": self.result, "files": self.files,
            "bytes": self.bytes, "error": self.error,
        }


def list_exports(db: sqlite_utils.Database) -> list[ExportRecord]:
    """Every export, newest first: written ones, and the ones that failed or were cancelled."""
    records = [
        ExportRecord(
            sequence=row["sequence"], export_id=row["id"], created=row["created"],
            key=row["key_name"],
            actions=tuple((a["id"], a["version"]) for a in json.loads(row["actions"])),
            target=row["target"], result="written", files=row["files"], bytes=row["bytes"],
        )
        for row in db.table("exports").rows
    ]
    for ts, action, subject, details in db.execute(
        "SELECT ts, action, subject, details FROM audit "
        "WHERE action IN ('export.failed', 'export.cancelled')"
    ).fetchall():
        detail = json.loads(details)
        records.append(ExportRecord(
            sequence=detail.get("sequence"), export_id=detail.get("export_id"), created=ts,
            key=None, actions=(), target=subject,
            result="cancelled" if action == "export.cancelled" else "failed",
            error=detail.get("message") or detail.get("error"),
        ))
    return sorted(records, key=lambda r: _instant(r.created), reverse=True)


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
