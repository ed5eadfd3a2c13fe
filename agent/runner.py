"""The import's shell after check 2: it acts on a :class:`VerifiedMedia` and nothing else.

Stages, in order (each announced through the hook the importer passes in):

``approved``          every counted signer identified and approved (first time only)
``planned``           OS, validity window, idempotence, conditions: run or skip, with reasons
``staged``            check 3: payloads copied from the same media source to private staging,
                      re-joined, hashed, compared; archives' member lists judged
``before-run:<id>``   just before an action's payload is hashed again and used
``after-run:<id>``    after it ran

then, for the importer to call once the report is final, the reboot decision and the signed
receipt, written through the media source. Refusals (:class:`VerificationError`) are raised for
the importer to report; every journal row for an action is written here.

The export's sequence is accepted (journalled as the distributor's newest) only once the import
is decided: when nothing is to run, or when check 3 has passed for every payload that will. A
copy refused before that point (a payload swapped after check 2) leaves the sequence as it was,
so the genuine media still imports.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from airseal.agent import platforms
from airseal.agent.approval import Approver, approval_request, name_warnings
from airseal.agent.archive import ArchiveLimits, archive_kind, check_members, extract, read_members
from airseal.agent.archive import run_target as archive_run_target
from airseal.agent.conditions import HostFacts
from airseal.agent.destinations import OpenFolders
from airseal.agent.errors import ActionFailed, DistributorNotApproved, ImportRefused
from airseal.agent.execution import (
    Account,
    chown_tree,
    current_user,
    is_privileged,
    resolve_account,
    run_program,
    run_reboot,
)
from airseal.agent.journal import Journal
from airseal.agent.leftovers import clear_placements, record_placements
from airseal.agent.placement import (
    PreparedDownload,
    check_destination,
    commit,
    discard,
    flush_everything,
    flush_folders,
    prepare_download,
    temporary_name,
)
from airseal.agent.plan import PlannedAction, plan_actions, segments
from airseal.agent.receipts import ReceiptError, sign_receipt, write_receipt
from airseal.agent.report import ActionReport, ImportReport
from airseal.agent.staging import (
    StagedPayload,
    Staging,
    copy_verified,
    memory_staging_parent,
    new_file,
    open_verified,
)
from airseal.agent.state import AgentState
from airseal.agent.trust import TrustedKey
from airseal.agent.verification import VerifiedAction, VerifiedExport, VerifiedMedia
from airseal.errors import AirsealError
from airseal.media.reader import MediaSource
from airseal.trustroot.digest import chunk_buffer
from airseal.trustroot.signer import Signer

SignerSupplier = Callable[[], Signer]
Clock = Callable[[], datetime]
StageAnnouncer = Callable[[str], None]


@dataclass(frozen=True)
class ImportOptions:
    dry_run: bool = False
    retry_interrupted: bool = False
    allow_reboot: bool = True
    """``False`` (``--no-reboot``): a needed reboot is recorded as pending, not started."""
    write_receipt: bool = True
    archive_limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    unlock_in_background: bool = False
    """Decrypt the agent key on a second thread while check 2 runs (only when getting the
    password asks nobody: a prompt stays first, on the main thread; see
    :meth:`ActionRunner.unlocking`)."""


def _signer_role(carrier: TrustedKey | None) -> str:
    """How a signer is named to the user: the export's distributor, or an action signer whose
    actions another distributor's export carries."""
    if carrier is None:
        return "distributor"
    return f"action signer (in an export from {carrier.name})"


class ActionRunner:
    """Approval, planning, journal, staging and running of one verified media, then its reboot
    decision and receipt. One runner per import; :meth:`run` is called at most once."""

    def __init__(
        self,
        state: AgentState,
        journal: Journal,
        source: MediaSource,
        *,
        approver: Approver,
        clock: Clock,
        now: datetime,
        host: HostFacts,
        signer: SignerSupplier | None,
        options: ImportOptions,
        announce: StageAnnouncer,
    ) -> None:
        self.state = state
        self.journal = journal
        self.source = source
        self.approver = approver
        self.clock = clock
        self.now = now
        self.host = host
        self.options = options
        self._announce = announce
        self._signer_supplier = signer
        self._signer: Signer | None = None
        self.media: VerifiedMedia | None = None
        self.planned: tuple[PlannedAction, ...] = ()
        self.staged: dict[str, StagedPayload] = {}
        self._report: ImportReport | None = None
        self._entries: dict[str, ActionReport] = {}

    # -- approval, plan, journal -----------------------------------------------------------------

    def run(self, media: VerifiedMedia, report: ImportReport) -> None:
        """Everything after check 2; sets ``report.status`` unless a refusal is raised."""
        self.media, self._report = media, report
        self._entries = {entry.id: entry for entry in report.actions}
        for action in media.actions:
            if action.vendor is not None and action.id in self._entries:
                self._entries[action.id].vendor = action.vendor.signer
        report.warnings.extend(w for action in media.actions for w in name_warnings(action))
        self._approve(media, report)
        self.planned = plan_actions(
            media.actions,
            self.host,
            now=self.now,
            history=self.journal.history(),
            retry_interrupted=self.options.retry_interrupted,
            execute_retries=self.state.config.execute_retries,
        )
        for item in self.planned:
            entry = self._entries[item.action.id]
            entry.mode = item.action.predicate.mode
            entry.outcome = "would-run" if item.runs else item.decision
            entry.reason = item.reason
        self._announce("planned")
        self._journal_decisions()
        if self.options.dry_run:
            self._check_destinations([item for item in self.planned if item.runs])
            report.status = "dry-run"
            return
        if any(item.runs for item in self.planned):
            self._load_signer()
        self._stage_and_run(report)

    def _approve(self, media: VerifiedMedia, report: ImportReport) -> None:
        """Every counted signer must be approved: the export's distributor, and any other
        enrolled key whose signature on an action this import relies on."""
        for signer in media.unapproved:
            key = signer.key
            own = key.fingerprint == media.distributor.fingerprint
            carrier = None if own else media.distributor
            if self.options.dry_run:
                report.warnings.append(
                    f"{_signer_role(carrier)} {key.name} is not approved yet; a real import "
                    "asks for approval first"
                )
                continue
            request = approval_request(media.export, signer.actions, signer=key)
            if not self.approver(request):
                raise DistributorNotApproved(
                    f"{_signer_role(carrier)} {key.name} ({key.fingerprint}) was not "
                    f"approved ({self.approver.how})",
                    subject=signer.subject,
                )
            self.journal.approve(key.fingerprint, self.approver.how, now=self.clock())
            report.approved_now = True
        self._announce("approved")

    def _accept_export(self) -> None:
        """The import is decided: remember its sequence (replay protection from now on)."""
        assert self.media is not None
        export = self.media.export
        self.journal.accept_export(
            export.distributor.fingerprint,
            export.sequence,
            export.export_id,
            export.bundle_sha256,
            statement_sha256=export.statement_sha256,
        )

    def _journal_decisions(self) -> None:
        # An action held back because an earlier run crashed is a skip in the journal: the
        # journal's "interrupted" rows are the crashes themselves.
        rows = [
            self._run_row(
                item.action,
                "skipped"
                if item.decision == "interrupted"
                else self._entries[item.action.id].outcome,
                item.reason,
            )
            for item in self.planned
            if not item.runs or self.options.dry_run
        ]
        if rows:
            ids = self.journal.add_runs(rows, now=self.now)
            self.journal.finish_runs(((i, {}) for i in ids), now=self.now)

    def _run_row(self, action: VerifiedAction, outcome: str, reason: str | None) -> dict[str, Any]:
        assert self._report is not None and self.media is not None
        p = action.predicate
        return {
            "import_id": self._report.import_id,
            "export_id": self.media.export.export_id,
            "action_id": p.id,
            "version": p.version,
            "name": p.name,
            "mode": p.mode,
            "payload_sha256": p.payload.sha256,
            "outcome": outcome,
            "reason": reason,
        }

    def unlock(self) -> None:
        """Decrypt the agent key now: a real import unlocks it before it approves, plans or
        records anything, so a wrong password leaves the journal deciding nothing."""
        if self._signer_supplier is not None and not self.options.dry_run:
            self._load_signer()

    @contextlib.contextmanager
    def unlocking(self) -> Iterator[None]:
        """The agent key unlocked by the end of the block, before anything is approved,
        planned or recorded as decided (as :meth:`unlock` before the block).

        With ``unlock_in_background`` the key is decrypted on a second thread while the block
        (check 2) runs: scrypt (a quarter of a second of one core, the key's protection) then
        costs no wall time, as ``hashlib.scrypt`` releases the GIL. The block's end waits for
        it; a key error (a wrong password) is raised then and wins over any error of the
        block's, exactly as when the key was unlocked first."""
        background = (
            self.options.unlock_in_background
            and self._signer_supplier is not None
            and self._signer is None
            and not self.options.dry_run
        )
        if not background:
            self.unlock()
            yield
            return
        outcome: list[Signer | BaseException] = []
        supplier = self._signer_supplier
        assert supplier is not None

        def decrypt() -> None:
            try:
                outcome.append(supplier())
            except BaseException as error:  # handed to the main thread, raised there
                outcome.append(error)

        thread = threading.Thread(target=decrypt, name="airseal-agent-unlock", daemon=True)
        thread.start()
        try:
            yield
        finally:
            thread.join()
            (result,) = outcome
            if isinstance(result, BaseException):
                raise result
            self._signer = result

    def _load_signer(self) -> Signer:
        if self._signer is None:
            if self._signer_supplier is None:
                raise ReceiptError("no agent key is available to sign receipts")
            self._signer = self._signer_supplier()
        return self._signer

    # -- check 3 and running ---------------------------------------------------------------------

    def _stage_and_run(self, report: ImportReport) -> None:
        to_run = [item for item in self.planned if item.runs]
        if not to_run:
            self._accept_export()
            report.status = "partial" if report.failed_actions else "completed"
            return
        self._check_destinations(to_run)
        with Staging(
            self.state.staging_dir,
            f"import-{report.import_id}",
            owner_tag=self.state.agent_id,
            memory_parent=memory_staging_parent(self.host.os),
        ) as staging:
            with self.source.folders_held():
                for item in to_run:
                    action = item.action
                    self.staged[action.id] = staging.stage(
                        self.source, action.listed, action.predicate.payload.sha256
                    )
            self._check_archives(to_run)
            self._accept_export()
            self._announce("staged")
            for group in segments(self.planned):
                if group[0].action.predicate.mode == "download":
                    self._run_downloads(group)
                else:
                    self._run_execute(group[0], staging)
        report.status = "partial" if report.failed_actions else "completed"

    def _check_destinations(self, to_run: list[PlannedAction]) -> None:
        """Every download's destination against the endpoint's policy, before anything is
        staged, run or written: a refusal here leaves the endpoint as it was. Each folder is
        walked once for all the downloads into it."""
        with OpenFolders(self.state.config.destination, remember_missing=True) as folders:
            for item in to_run:
                options = item.action.predicate.download
                if options is None:
                    continue
                check_destination(
                    options,
                    self.host.os,
                    self.state.config.destination,
                    action=item.action.id,
                    subject=item.action.subject,
                    folders=folders,
                )

    def _check_archives(self, to_run: list[PlannedAction]) -> None:
        limits = self.options.archive_limits
        for item in to_run:
            p = item.action.predicate
            kind = archive_kind(p.payload.name)
            if p.mode != "execute" or kind is None:
                continue
            staged = self.staged[p.id]
            with open_verified(staged) as stream:
                check_members(
                    read_members(stream, kind, limits, subject=staged.subject),
                    self.host.os,
                    limits,
                    subject=staged.subject,
                )

    def _finish(self, run_id: int, action: VerifiedAction, **fields: Any) -> None:
        self.journal.finish_runs([(run_id, self._record(action, **fields))], now=self.clock())

    def _record(self, action: VerifiedAction, **fields: Any) -> dict[str, Any]:
        entry = self._entries[action.id]
        for name in ("outcome", "reason", "exit_code", "output", "reboot_requested"):
            if name in fields:
                setattr(entry, name, fields[name])
        return fields

    def _run_downloads(self, group: list[PlannedAction]) -> None:
        ids = self.journal.add_runs(
            [self._run_row(item.action, "started", None) for item in group], now=self.clock()
        )
        # Named and recorded before any is created: a kill from here on leaves only files the
        # next start knows are the agent's (airseal.agent.leftovers).
        temporaries: dict[str, tuple[str, str]] = {}
        for item in group:
            download = item.action.predicate.download
            assert download is not None
            folder, name = platforms.split_destination(download.dest, self.host.os)
            temporaries[item.action.id] = (folder, temporary_name(name))
        record_placements(self.state, list(temporaries.values()))
        with OpenFolders(self.state.config.destination) as folders:
            self._place_downloads(group, ids, temporaries, folders)

    def _place_downloads(
        self,
        group: list[PlannedAction],
        ids: list[int],
        temporaries: dict[str, tuple[str, str]],
        folders: OpenFolders,
    ) -> None:
        prepared: list[tuple[PlannedAction, int, PreparedDownload]] = []
        buffer = chunk_buffer()
        for item, run_id in zip(group, ids, strict=True):
            action = item.action
            self._announce(f"before-run:{action.id}")
            assert action.predicate.download is not None
            try:
                ready = prepare_download(
                    self.staged[action.id],
                    action.predicate.download,
                    self.host.os,
                    privileged=is_privileged(),
                    subject=action.subject,
                    action=action.id,
                    policy=self.state.config.destination,
                    temporary=temporaries[action.id][1],
                    folders=folders,
                    buffer=buffer,
                )
            except ActionFailed as exc:
                self._finish(run_id, action, outcome="failed", reason=exc.message())
                continue
            except ImportRefused as refusal:
                for _, _, waiting in prepared:
                    discard(waiting)
                clear_placements(self.state)
                self._finish(run_id, action, outcome="refused", reason=str(refusal))
                for other, other_id in zip(group, ids, strict=True):
                    if self._entries[other.action.id].outcome == "would-run":
                        self._finish(other_id, other.action, outcome="not-run", reason=None)
                raise
            prepared.append((item, run_id, ready))
        flush_everything([ready.temporary for _, _, ready in prepared])
        results: list[tuple[int, dict[str, Any]]] = []
        for item, run_id, ready in prepared:
            try:
                commit(ready, folders)
            except ActionFailed as exc:
                fields = self._record(item.action, outcome="failed", reason=exc.message())
            else:
                fields = self._record(item.action, outcome="succeeded", reason=None)
            results.append((run_id, fields))
        flush_folders([ready for _, _, ready in prepared], folders)
        self.journal.finish_runs(results, now=self.clock())
        clear_placements(self.state)
        for item, _, _ in prepared:
            self._announce(f"after-run:{item.action.id}")

    def _run_execute(self, item: PlannedAction, staging: Staging) -> None:
        action = item.action
        p = action.predicate
        assert p.execute is not None
        options = p.execute
        (run_id,) = self.journal.add_runs(
            [self._run_row(action, "started", None)], now=self.clock()
        )
        self._announce(f"before-run:{action.id}")
        account: Account | None = None
        base: Path | None = None
        private_base = False
        try:
            me = current_user()
            problem = platforms.run_as_problem(
                self.host.os, options.run_as, privileged=is_privileged(), current_user=me
            )
            if problem is not None:
                raise ActionFailed(problem, check="run-as")
            if options.run_as is not None and options.run_as != me:
                account = resolve_account(options.run_as)
                base = Path(tempfile.mkdtemp(prefix="airseal-run-"))
                private_base = True
            else:
                base = staging.folder(f"run-{action.id}")
            workdir = base / "files"
            os.mkdir(workdir, 0o700)
            reboot_flag = base / "reboot-requested"
            program = self._prepare_program(action, workdir)
            if account is not None:
                chown_tree(base, account)
            argv = platforms.command_line(self.host.os, str(program), options.args)
            env = platforms.run_environment(
                self.host.os,
                os.environ,
                home=account.home if account else os.path.expanduser("~"),
                user=account.name if account else me,
                extra={
                    "AIRSEAL_ACTION_ID": p.id,
                    "AIRSEAL_ACTION_VERSION": str(p.version),
                    "AIRSEAL_EXPORT_ID": self.media.export.export_id if self.media else "",
                    "AIRSEAL_REBOOT_FILE": str(reboot_flag),
                },
            )
            result = run_program(
                argv, cwd=workdir, env=env, account=account, timeout=options.timeout_seconds
            )
            flag_set = reboot_flag.exists()
        except ImportRefused as refusal:
            self._finish(run_id, action, outcome="refused", reason=str(refusal))
            raise
        except ActionFailed as exc:
            self._finish(run_id, action, outcome="failed", reason=exc.message())
            return
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            self._finish(run_id, action, outcome="failed", reason=f"{where}{exc.strerror or exc}")
            return
        finally:
            if private_base and base is not None:
                shutil.rmtree(base, ignore_errors=True)
        requested = platforms.reboot_requested(self.host.os, result.exit_code, flag_set)
        if result.timed_out:
            outcome, reason = "failed", f"timed out after {options.timeout_seconds} s"
        elif result.exit_code is not None and platforms.exit_code_succeeded(
            self.host.os, result.exit_code
        ):
            outcome, reason = "succeeded", None
        else:
            outcome, reason = "failed", f"exited with code {result.exit_code}"
        self._finish(
            run_id,
            action,
            outcome=outcome,
            reason=reason,
            exit_code=result.exit_code,
            output=result.output,
            reboot_requested=requested,
        )
        self._announce(f"after-run:{action.id}")

    def _prepare_program(self, action: VerifiedAction, workdir: Path) -> Path:
        """Put the verified payload (or its archive's content) in ``workdir``; the file to run."""
        p = action.predicate
        assert p.execute is not None
        staged = self.staged[p.id]
        kind = archive_kind(p.payload.name)
        if kind is not None:
            if p.execute.run is None:
                raise ActionFailed(
                    f"{p.payload.name} is an archive, and the action names no file in it to run"
                )
            with open_verified(staged) as stream:
                checked = extract(
                    stream,
                    kind,
                    workdir,
                    self.host.os,
                    self.options.archive_limits,
                    subject=staged.subject,
                )
            target = archive_run_target(checked, p.execute.run, self.host.os)
            if target is None:
                raise ActionFailed(f"{p.execute.run} is not a regular file in {p.payload.name}")
            program = workdir / target
            if hasattr(os, "chmod"):
                os.chmod(program, os.stat(program).st_mode & 0o777 | 0o700)
            return program
        if p.execute.run is not None:
            raise ActionFailed(
                f"the action runs {p.execute.run} inside an archive, but {p.payload.name} is "
                "not a tar or zip archive"
            )
        program = workdir / p.payload.name
        fd = new_file(program, 0o700)
        try:
            copy_verified(staged, fd)
        finally:
            os.close(fd)
        return program

    # -- after the run ---------------------------------------------------------------------------

    def reboot_command(self, report: ImportReport) -> tuple[str, ...] | None:
        """The reboot to start once the import is journalled, if an action needs one (recorded
        as ``pending`` instead under ``--no-reboot``)."""
        if report.status not in ("completed", "partial") or self.media is None:
            return None
        needed = False
        for action in self.media.actions:
            entry = self._entries[action.id]
            options = action.predicate.execute
            if options is None or entry.outcome not in ("succeeded", "failed"):
                continue
            if options.reboot == "always" or (
                options.reboot == "if-requested" and entry.reboot_requested
            ):
                needed = True
        if not needed:
            return None
        if not self.options.allow_reboot:
            report.reboot = "pending"
            return None
        report.reboot = "started"
        return self.state.reboot_command(self.host.os)

    def reboot(self, command: tuple[str, ...], report: ImportReport) -> None:
        problem = run_reboot(command)
        if problem is not None:
            report.warnings.append(f"the reboot command failed: {problem}")
            self.journal.set_reboot(report.import_id, "failed")

    def write_receipt(self, report: ImportReport, export: VerifiedExport | None) -> bytes | None:
        """Sign the final report and put it on the media; the signed bytes, or ``None`` when no
        receipt is due (no authenticated export, a dry run, receipts off) or it failed (a
        warning in the report: the import itself stands)."""
        if export is None or self.options.dry_run or not self.options.write_receipt:
            return None
        try:
            signer = self._load_signer()
            from airseal.trustroot.keys import spki_pem

            data = sign_receipt(
                report,
                signer,
                agent_id=self.state.agent_id,
                agent_key_pem=spki_pem(signer.public_key).decode(),
                hostname=self.host.hostname,
                os_name=self.host.os,
                export_bundle_sha256=export.bundle_sha256,
            )
            report.receipt_path = write_receipt(
                self.source, self.state.agent_id, export.export_id, data
            )
        except AirsealError as exc:
            report.warnings.append(f"receipt not written: {exc}")
            return None
        return data
