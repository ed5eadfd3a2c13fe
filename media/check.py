"""The courier's check: is this stick complete and undamaged? No keys needed.

It reads ``airseal/export.sigstore.json`` **without verifying its signature** and uses the
statement inside as a packing list: every listed file must be present with the listed size and
SHA-256, nothing unlisted may sit under ``airseal/`` (except valid receipts), nothing may be a
symlink or special file, split payloads must re-join to their payload digest, the transparency
log's files (when listed) must be well-formed and agree with each other, and no folder of an
interrupted export may be left over.

This decides *completeness*, not *authenticity*: anyone can write a statement that matches the
files next to it. Whether the export was signed by a trusted distributor, is fresh and is not a
replay is decided by the agent, which verifies the bundle before trusting a byte of it. The
report says so in its ``authenticity`` field, so nobody mistakes "complete" for "genuine".
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from airseal.media import layout
from airseal.media.errors import BadMedia, MediaReadError, MissingFile
from airseal.media.reader import DirectorySource, MediaSource, read_export_bundle
from airseal.media.rules import EntryKind, Finding
from airseal.media.statement import ExportContents, read_export_statement
from airseal.media.verdict import MediaVerdict, ProgressCallback, verify_media_files
from airseal.trustroot.bundle import parse_bundle
from airseal.trustroot.dsse import IN_TOTO_PAYLOAD_TYPE, Statement
from airseal.trustroot.errors import VerificationError
from airseal.trustroot.untrusted_json import DEPTH_CHECK

Status = Literal["complete", "incomplete", "damaged"]
AUTHENTICITY_NOTE = (
    "not checked: this check reads the export statement without verifying its signature; "
    "the agent verifies it before anything is used"
)
STATEMENT_ON_MOUNT = layout.on_mount(layout.STATEMENT_NAME)


@dataclass(frozen=True)
class CheckReport:
    """What the check found. ``status`` is ``complete`` only when every list is empty."""

    status: Status
    mount: str
    export_id: str | None = None
    sequence: int | None = None
    created: datetime | None = None
    expires: datetime | None = None
    expired: bool | None = None
    """``None`` when no ``now`` was given to the check."""
    actions: int = 0
    files_checked: int = 0
    bytes_checked: int = 0
    receipts: int = 0
    missing: tuple[Finding, ...] = ()
    damaged: tuple[Finding, ...] = ()
    extra: tuple[Finding, ...] = ()
    unsafe: tuple[Finding, ...] = ()
    leftovers: tuple[Finding, ...] = ()
    authenticity: str = AUTHENTICITY_NOTE

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.unsafe + self.damaged + self.extra + self.missing + self.leftovers

    def to_json_dict(self) -> dict[str, Any]:
        def findings(items: Sequence[Finding]) -> list[dict[str, str]]:
            return [{"path": f.path, "check": f.check, "reason": f.reason} for f in items]

        return {
            "status": self.status,
            "mount": self.mount,
            "exportId": self.export_id,
            "sequence": self.sequence,
            "created": _iso(self.created),
            "expires": _iso(self.expires),
            "expired": self.expired,
            "actions": self.actions,
            "filesChecked": self.files_checked,
            "bytesChecked": self.bytes_checked,
            "receipts": self.receipts,
            "missing": findings(self.missing),
            "damaged": findings(self.damaged),
            "extra": findings(self.extra),
            "unsafe": findings(self.unsafe),
            "leftovers": findings(self.leftovers),
            "authenticity": self.authenticity,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict(), indent=2)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass
class _Collected:
    verdict: MediaVerdict = field(default_factory=MediaVerdict)
    leftovers: list[Finding] = field(default_factory=list)
    contents: ExportContents | None = None


def _status(c: _Collected) -> Status:
    v = c.verdict
    if v.damaged or v.extra or v.unsafe:
        return "damaged"
    if v.missing or c.leftovers or c.contents is None:
        return "incomplete"
    return "complete"


def read_statement_unverified(source: MediaSource) -> ExportContents:
    """The export statement on the media, parsed but **not verified** (see module docstring).

    Raises :class:`MissingFile` when there is none, other :class:`BadMedia` errors when it is
    unsafe, oversized or malformed.
    """
    data = read_export_bundle(source)
    try:
        bundle = parse_bundle(data, subject=STATEMENT_ON_MOUNT)
        envelope = bundle.dsse_envelope
        if envelope is None:
            raise BadMedia("is not a DSSE bundle", subject=STATEMENT_ON_MOUNT, check="statement")
        if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise BadMedia(
                f"payload type {envelope.payload_type!r} is not {IN_TOTO_PAYLOAD_TYPE}",
                subject=STATEMENT_ON_MOUNT,
                check="statement",
            )
        statement = Statement.from_payload(envelope.payload, subject=STATEMENT_ON_MOUNT)
    except BadMedia:
        raise
    except VerificationError as exc:
        # Everything wrong inside the statement file is the statement check, except nesting too
        # deep to parse at all, which keeps its own name.
        check = DEPTH_CHECK if exc.check == DEPTH_CHECK else "statement"
        raise BadMedia(exc.detail, subject=STATEMENT_ON_MOUNT, check=check) from None
    return read_export_statement(statement, subject=STATEMENT_ON_MOUNT)


def _log_files_problems(source: MediaSource, contents: ExportContents) -> list[Finding]:
    """The transparency log's files (``airseal/log/``), when listed, are well-formed and agree
    with each other and the listing (the proofs are for the checkpoint's size and origin, their
    entries are of the exported action bundles and below that size). Keyless, like the
    rest of this check: whether they are the site log's, and consistent with what an endpoint
    saw, only the agent can tell."""
    from airseal.trustroot.tlog.checkpoint import Checkpoint, SignedNote
    from airseal.trustroot.tlog.media_proofs import (
        CHECKPOINT_PATH,
        HASHES_PATH,
        LOG_FILES,
        MAX_CHECKPOINT_BYTES,
        MAX_HASHES_BYTES,
        MAX_PROOFS_BYTES,
        PROOFS_PATH,
        MediaProofs,
    )

    listed = contents.by_path()
    present = [path for path in LOG_FILES if path in listed]
    if not present:
        return []
    note_subject, proofs_subject = layout.on_mount(CHECKPOINT_PATH), layout.on_mount(PROOFS_PATH)
    hashes_subject = layout.on_mount(HASHES_PATH)
    if len(present) != len(LOG_FILES):
        return [Finding(layout.on_mount(present[0]), "tlog.proofs",
                        f"the export lists only {', '.join(present)} of the log's files "
                        f"{', '.join(LOG_FILES)}")]
    try:
        text = source.read_bytes(note_subject, max_size=MAX_CHECKPOINT_BYTES).decode("utf-8")
        point = Checkpoint.parse(SignedNote.parse(text).body)
    except (VerificationError, UnicodeDecodeError, ValueError) as exc:
        return [Finding(note_subject, "tlog.checkpoint", f"is not a signed checkpoint ({exc})")]
    try:
        proofs = MediaProofs.parse(source.read_bytes(proofs_subject, max_size=MAX_PROOFS_BYTES),
                                   source.read_bytes(hashes_subject, max_size=MAX_HASHES_BYTES),
                                   subject=proofs_subject, hashes_subject=hashes_subject)
    except VerificationError as exc:
        return [Finding(exc.subject or proofs_subject, exc.check or "tlog.proofs", exc.detail)]
    if (proofs.origin, proofs.tree_size) != (point.origin, point.size):
        return [Finding(proofs_subject, "tlog.proofs",
                        f"the proofs are for {proofs.origin} size {proofs.tree_size}, the "
                        f"checkpoint for {point.describe()}")]
    bundles = {action.bundle for action in contents.predicate.actions}
    stray = sorted({entry.bundle for entry in proofs.entries} - bundles)
    if stray:
        return [Finding(proofs_subject, "tlog.proofs",
                        f"carries log entries for {stray[0]}, which is not an action bundle "
                        "of this export")]
    if any(entry.log_index >= point.size for entry in proofs.entries):
        return [Finding(proofs_subject, "tlog.proofs",
                        f"carries a log entry at or beyond the checkpoint's size {point.size}")]
    return _actions_outside_the_log(source, contents, proofs.log_id, point.origin,
                                    {entry.bundle for entry in proofs.entries})


def _actions_outside_the_log(source: MediaSource, contents: ExportContents, log_id: bytes,
                             origin: str, logged: set[str]) -> list[Finding]:
    """Each action bundle that ``log/proofs.json`` carries no entry for: every endpoint that
    checks the site log refuses the whole media for it, so the courier hears it here. Its own
    ``tlogEntries`` all of another log (signed with ``--rekor-url``) are named as such
    (``tlog.logid``); nothing is verified, as in the rest of this check."""
    from airseal.media.limits import MAX_ACTION_BUNDLE_BYTES
    from airseal.trustroot.tlog.bundle_logs import bundle_logs, describe_logs
    from airseal.trustroot.untrusted_json import load_json

    found = []
    for action in contents.predicate.actions:
        if action.bundle in logged:
            continue
        subject = layout.on_mount(action.bundle)
        try:
            data = source.read_bytes(subject, max_size=MAX_ACTION_BUNDLE_BYTES)
            logs = bundle_logs(load_json(data, subject=subject, error=BadMedia), log_id,
                               subject=subject)
        except (BadMedia, MediaReadError, VerificationError) as exc:
            found.append(Finding(subject, exc.check or "tlog.entry", exc.detail))
            continue
        if logs.only_other_logs:
            found.append(Finding(subject, "tlog.logid", (
                f"its log entries are of another log ({describe_logs(logs.other_logs)}), not "
                f"of {origin}, the log this media proves itself in: endpoints that check that "
                "log refuse the media; sign the action again at the appliance without "
                "--rekor-url, and export again")))
        else:
            found.append(Finding(subject, "tlog.entry", (
                f"has no entry of log {origin} in log/proofs.json: endpoints that check that "
                "log refuse the media; sign the action again at the appliance, and export "
                "again")))
    return found


def check_media(
    media: str | os.PathLike[str] | MediaSource,
    *,
    now: datetime | None = None,
    on_progress: ProgressCallback | None = None,
) -> CheckReport:
    """Check the media at ``media`` (a mount point or a :class:`MediaSource`).

    Raises :class:`airseal.media.errors.MediaReadError` only when the media cannot be read at all;
    everything wrong *on* the media is reported in the :class:`CheckReport`.
    """
    source = media if isinstance(media, MediaSource) else DirectorySource(media)
    mount = str(getattr(source, "root", media))
    collected = _Collected()
    verdict = collected.verdict

    try:
        top = source.list_dir("")
    except BadMedia as exc:
        verdict.record(Finding(exc.subject or ".", exc.check, exc.detail))
        return CheckReport(status="damaged", mount=mount, damaged=tuple(verdict.damaged))
    for entry in top:
        if layout.is_leftover_name(entry.name):
            collected.leftovers.append(
                Finding(
                    entry.path,
                    "leftover",
                    "left behind by an interrupted export; the next export removes it",
                )
            )
    media_dir = next((e for e in top if e.name == layout.MEDIA_DIR), None)
    if media_dir is None:
        verdict.missing.append(
            Finding(layout.MEDIA_DIR, "present", "there is no airseal/ folder: no export here")
        )
    elif media_dir.kind is not EntryKind.DIRECTORY:
        verdict.unsafe.append(
            Finding(layout.MEDIA_DIR, "entry-type", f"is a {media_dir.kind.value}, not a folder")
        )
    else:
        try:
            collected.contents = read_statement_unverified(source)
        except MissingFile as exc:
            verdict.missing.append(
                Finding(
                    exc.subject or STATEMENT_ON_MOUNT,
                    "present",
                    "there is no export statement (an export was interrupted or never written)",
                )
            )
        except (BadMedia, MediaReadError) as exc:
            finding = Finding(exc.subject or STATEMENT_ON_MOUNT, exc.check, exc.detail)
            if exc.check in ("entry-type", "name", "path"):
                verdict.unsafe.append(finding)
            else:
                verdict.damaged.append(finding)

    contents = collected.contents
    if contents is None:
        return CheckReport(
            status=_status(collected),
            mount=mount,
            missing=tuple(verdict.missing),
            damaged=tuple(verdict.damaged),
            unsafe=tuple(verdict.unsafe),
            leftovers=tuple(collected.leftovers),
        )

    files = verify_media_files(source, contents, on_progress=on_progress)
    collected.verdict = files
    if not files.damaged and not files.missing:
        files.damaged.extend(_log_files_problems(source, contents))
    predicate = contents.predicate
    return CheckReport(
        status=_status(collected),
        mount=mount,
        export_id=predicate.export_id,
        sequence=predicate.sequence,
        created=predicate.created,
        expires=predicate.expires,
        expired=None if now is None else now >= predicate.expires,
        actions=len(predicate.actions),
        files_checked=files.files_checked,
        bytes_checked=files.bytes_checked,
        receipts=files.receipts,
        missing=tuple(files.missing),
        damaged=tuple(files.damaged),
        extra=tuple(files.extra),
        unsafe=tuple(files.unsafe),
        leftovers=tuple(collected.leftovers),
    )
