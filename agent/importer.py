"""The import pipeline: the thin shell that reads media, asks the pure decisions, stages and runs.

Stages, in order (a test or a front end can watch them through ``hook(stage, importer)``):

``export-verified``   check 2: export statement signature, trusted signer, freshness, sequence
``files-verified``    check 2: listing rules and every file's digest (airseal.media.reader)
``actions-verified``  check 2: each action's own signed statement, matched to the listing
``approved``          distributor identified and approved (first time only)
``planned``           OS, validity window, idempotence, conditions: run or skip, with reasons
``staged``            check 3: payloads copied to private staging, re-joined, hashed, compared;
                      archives' member lists judged
``before-run:<id>``   just before an action's payload is hashed again and used
``after-run:<id>``    after it ran
then the receipt goes onto the media and, if an action asks for it, the reboot command runs.

Until ``staged`` has passed nothing is run and nothing is written anywhere but the journal, the
staging folder and, once the export statement has authenticated, the signed receipt on the media:
every refusal before that point leaves the endpoint as it was. A refusal is returned in the
report (``status == "refused"``, ``error`` naming the file and the check), not raised; operational
failures (state, key password, unreadable media) are raised. The caller holds the state lock
(:class:`airseal.agent.lock.StateLock`) for the whole run.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from airseal.agent import platforms
from airseal.agent.approval import Approver, approval_request
from airseal.agent.archive import ArchiveLimits, archive_kind, check_members, extract, read_members
from airseal.agent.archive import run_target as archive_run_target
from airseal.agent.conditions import HostFacts
from airseal.agent.errors import (
    ActionFailed,
    DistributorNotApproved,
    ImportRefused,
)
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
from airseal.agent.placement import (
    PreparedDownload,
    commit,
    discard,
    flush_everything,
    flush_folders,
    prepare_download,
)
from airseal.agent.plan import PlannedAction, plan_actions, segments
from airseal.agent.receipts import ReceiptError, sign_receipt, write_receipt
from airseal.agent.report import ActionReport, ImportReport, error_json
from airseal.agent.staging import (
    StagedPayload,
    Staging,
    copy_verified,
    memory_staging_parent,
    new_file,
    open_verified,
)
from airseal.agent.state import AgentState
from airseal.agent.trust import TrustSource
from airseal.agent.verification import (
    SequenceRecord,
    VerifiedAction,
    VerifiedExport,
    check_sequence,
    verify_action_bundle,
    verify_export_bundle,
)
from airseal.errors import AirsealError
from airseal.media import layout
from airseal.media.limits import MAX_ACTION_BUNDLE_BYTES, MAX_EXPORT_BUNDLE_BYTES
from airseal.media.reader import MediaSource, verify_media_files
from airseal.trustroot.errors import VerificationError
from airseal.trustroot.signer import Signer

StageHook = Callable[[str, "Importer"], None]
SignerSupplier = Callable[[], Signer]
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ImportOptions:
    dry_run: bool = False
    retry_interrupted: bool = False
    allow_reboot: bool = True
    """``False`` (``--no-reboot``): a needed reboot is recorded as pending, not started."""
    write_receipt: bool = True
    archive_limits: ArchiveLimits = field(default_factory=ArchiveLimits)


def host_facts(state: AgentState) -> HostFacts:
    """This machine, as conditions see it."""
    return HostFacts(
        os=platforms.current_os(),
        hostname=socket.gethostname(),
        groups=frozenset(state.config.groups),
        path_exists=os.path.exists,
    )


class Importer:
    """One import of one media. Build it, call :meth:`run` once, read the report."""

    def __init__(
        self,
        state: AgentState,
        journal: Journal,
        trust: TrustSource,
        source: MediaSource,
        *,
        approver: Approver,
        clock: Clock,
        host: HostFacts,
        signer: SignerSupplier | None,
        receipt_mount: Path | None,
        options: ImportOptions = ImportOptions(),
        hook: StageHook | None = None,
        media_label: str | None = None,
    ) -> None:
        self.state = state
        self.journal = journal
        self.trust = trust
        self.source = source
        self.approver = approver
        self.clock = clock
        self.host = host
        self.options = options
        self.receipt_mount = receipt_mount
        self.media_label = media_label or str(receipt_mount or "media")
        self._signer_supplier = signer
        self._signer: Signer | None = None
        self._hook = hook
        self.now = clock()
        self.export: VerifiedExport | None = None
        self.actions: list[VerifiedAction] = []
        self.planned: tuple[PlannedAction, ...] = ()
        self.staging: Staging | None = None
        self.staged: dict[str, StagedPayload] = {}
        self.reports: dict[str, ActionReport] = {}
        self.report: ImportReport | None = None

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> ImportReport:
        interrupted = self.journal.recover_interrupted(now=self.now)
        import_id = self.journal.begin_import(
            self.media_label, now=self.now, dry_run=self.options.dry_run
        )
        report = ImportReport(import_id, self.media_label, self.now)
        report.interrupted = [r.to_json_dict(with_output=False) for r in interrupted]
        self.report = report
        try:
            self._verify_and_run(report)
        except VerificationError as error:
            report.status = "refused"
            report.error = error
            for entry in self.reports.values():
                if entry.outcome == "would-run":
                    entry.outcome, entry.reason = "not-run", None
        except AirsealError as error:
            self._finish_failed(report, error, "failed")
            raise
        except KeyboardInterrupt:
            self._finish_failed(report, None, "interrupted")
            raise
        except BaseException:
            self._finish_failed(report, None, "failed")
            raise
        report.actions = list(self.reports.values())
        report.finished = self.clock()
        reboot_command = self._decide_reboot(report)
        receipt = self._write_receipt(report)
        self.journal.finish_import(
            import_id,
            report.status,
            now=report.finished,
            error=error_json(report.error) if report.error else None,
            receipt_path=report.receipt_path,
            receipt=receipt,
            reboot=report.reboot,
        )
        if reboot_command is not None:
            problem = run_reboot(reboot_command)
            if problem is not None:
                report.warnings.append(f"the reboot command failed: {problem}")
                self.journal.set_reboot(import_id, "failed")
        return report

    def _finish_failed(
        self, report: ImportReport, error: AirsealError | None, status: str
    ) -> None:
        self.journal.finish_import(
            report.import_id,
            status,
            now=self.clock(),
            error=error_json(error) if error is not None else None,
        )

    def hook(self, stage: str) -> None:
        if self._hook is not None:
            self._hook(stage, self)

    # -- check 2 ---------------------------------------------------------------------------------

    def _verify_and_run(self, report: ImportReport) -> None:
        export = self._verify_export(report)
        self._verify_files(export)
        self._verify_actions(export)
        self._approve(export, report)
        if not self.options.dry_run:
            self.journal.accept_export(
                export.distributor.fingerprint,
                export.sequence,
                export.export_id,
                export.bundle_sha256,
            )
        self.planned = plan_actions(
            self.actions,
            self.host,
            now=self.now,
            history=self.journal.history(),
            retry_interrupted=self.options.retry_interrupted,
        )
        for item in self.planned:
            entry = self.reports[item.action.id]
            entry.mode = item.action.predicate.mode
            entry.outcome = "would-run" if item.runs else item.decision
            entry.reason = item.reason
        self.hook("planned")
        self._journal_decisions(export)
        if self.options.dry_run:
            report.status = "dry-run"
            return
        if any(item.runs for item in self.planned):
            self._load_signer()
        self._stage_and_run(export, report)

    def _verify_export(self, report: ImportReport) -> VerifiedExport:
        subject = layout.on_mount(layout.STATEMENT_NAME)
        data = self.source.read_bytes(subject, max_size=MAX_EXPORT_BUNDLE_BYTES)
        export = verify_export_bundle(data, self.trust, now=self.now, subject=subject)
        self.export = export
        predicate = export.contents.predicate
        report.export_id, report.sequence = export.export_id, export.sequence
        report.distributor = export.distributor.fingerprint
        report.distributor_name = export.distributor.name
        self.journal.set_import_export(
            report.import_id,
            export_id=export.export_id,
            sequence=export.sequence,
            distributor=export.distributor.fingerprint,
            sha256=export.bundle_sha256,
        )
        for listed in predicate.actions:
            self.reports[listed.id] = ActionReport(
                listed.id, listed.version, listed.name, "unknown", "not-run"
            )
        known = self.journal.distributor(export.distributor.fingerprint)
        record = (
            SequenceRecord(known.last_sequence, known.last_export_id, known.last_export_sha256)
            if known is not None
            else None
        )
        report.repeat = check_sequence(export, record) == "repeat"
        self.hook("export-verified")
        return export

    def _verify_files(self, export: VerifiedExport) -> None:
        verify_media_files(self.source, export.contents).raise_first()
        self.hook("files-verified")

    def _verify_actions(self, export: VerifiedExport) -> None:
        digests = export.contents.by_path()
        for listed in export.contents.predicate.actions:
            subject = layout.on_mount(listed.bundle)
            data = self.source.read_bytes(subject, max_size=MAX_ACTION_BUNDLE_BYTES)
            self.actions.append(
                verify_action_bundle(
                    data, listed, digests[listed.bundle].sha256, self.trust, subject=subject
                )
            )
        self.hook("actions-verified")

    def _approve(self, export: VerifiedExport, report: ImportReport) -> None:
        record = self.journal.distributor(export.distributor.fingerprint)
        if record is None or record.approved is None:
            if self.options.dry_run:
                report.warnings.append(
                    f"distributor {export.distributor.name} is not approved yet; a real import "
                    "asks for approval first"
                )
            else:
                request = approval_request(export, self.actions)
                if not self.approver(request):
                    raise DistributorNotApproved(
                        f"distributor {export.distributor.name} ({export.distributor.fingerprint}) "
                        f"was not approved ({self.approver.how})",
                        subject=export.subject,
                    )
                self.journal.approve(
                    export.distributor.fingerprint, self.approver.how, now=self.clock()
                )
                report.approved_now = True
        self.hook("approved")

    def _journal_decisions(self, export: VerifiedExport) -> None:
        # An action held back because an earlier run crashed is a skip in the journal: the
        # journal's "interrupted" rows are the crashes themselves.
        rows = [
            self._run_row(
                item.action,
                "skipped"
                if item.decision == "interrupted"
                else self.reports[item.action.id].outcome,
                item.reason,
            )
            for item in self.planned
            if not item.runs or self.options.dry_run
        ]
        if rows:
            ids = self.journal.add_runs(rows, now=self.now)
            self.journal.finish_runs(((i, {}) for i in ids), now=self.now)

    def _run_row(self, action: VerifiedAction, outcome: str, reason: str | None) -> dict[str, Any]:
        assert self.report is not None and self.export is not None
        p = action.predicate
        return {
            "import_id": self.report.import_id,
            "export_id": self.export.export_id,
            "action_id": p.id,
            "version": p.version,
            "name": p.name,
            "mode": p.mode,
            "payload_sha256": p.payload.sha256,
            "outcome": outcome,
            "reason": reason,
        }

    def _load_signer(self) -> Signer:
        if self._signer is None:
            if self._signer_supplier is None:
                raise ReceiptError("no agent key is available to sign receipts")
            self._signer = self._signer_supplier()
        return self._signer

    # -- check 3 and running ---------------------------------------------------------------------

    def _stage_and_run(self, export: VerifiedExport, report: ImportReport) -> None:
        to_run = [item for item in self.planned if item.runs]
        if not to_run:
            report.status = "completed"
            return
        with Staging(
            self.state.staging_dir,
            f"import-{report.import_id}",
            owner_tag=self.state.agent_id,
            memory_parent=memory_staging_parent(self.host.os),
        ) as staging:
            self.staging = staging
            for item in to_run:
                action = item.action
                self.staged[action.id] = staging.stage(
                    self.source, action.listed, action.predicate.payload.sha256
                )
            self._check_archives(to_run)
            self.hook("staged")
            for group in segments(self.planned):
                if group[0].action.predicate.mode == "download":
                    self._run_downloads(group)
                else:
                    self._run_execute(group[0], staging)
        self.staging = None
        failed = any(r.outcome == "failed" for r in self.reports.values())
        report.status = "partial" if failed else "completed"

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
        entry = self.reports[action.id]
        for name in ("outcome", "reason", "exit_code", "output", "reboot_requested"):
            if name in fields:
                setattr(entry, name, fields[name])
        return fields

    def _run_downloads(self, group: list[PlannedAction]) -> None:
        ids = self.journal.add_runs(
            [self._run_row(item.action, "started", None) for item in group], now=self.clock()
        )
        prepared: list[tuple[PlannedAction, int, PreparedDownload]] = []
        for item, run_id in zip(group, ids, strict=True):
            action = item.action
            self.hook(f"before-run:{action.id}")
            assert action.predicate.download is not None
            try:
                ready = prepare_download(
                    self.staged[action.id],
                    action.predicate.download,
                    self.host.os,
                    privileged=is_privileged(),
                    subject=action.subject,
                )
            except ActionFailed as exc:
                self._finish(run_id, action, outcome="failed", reason=exc.message())
                continue
            except ImportRefused as refusal:
                for _, _, waiting in prepared:
                    discard(waiting)
                self._finish(run_id, action, outcome="refused", reason=str(refusal))
                for other, other_id in zip(group, ids, strict=True):
                    if self.reports[other.action.id].outcome == "would-run":
                        self._finish(other_id, other.action, outcome="not-run", reason=None)
                raise
            prepared.append((item, run_id, ready))
        flush_everything([ready.temporary for _, _, ready in prepared])
        results: list[tuple[int, dict[str, Any]]] = []
        for item, run_id, ready in prepared:
            try:
                commit(ready)
            except ActionFailed as exc:
                fields = self._record(item.action, outcome="failed", reason=exc.message())
            else:
                fields = self._record(item.action, outcome="succeeded", reason=None)
            results.append((run_id, fields))
        flush_folders([ready for _, _, ready in prepared])
        self.journal.finish_runs(results, now=self.clock())
        for item, _, _ in prepared:
            self.hook(f"after-run:{item.action.id}")

    def _run_execute(self, item: PlannedAction, staging: Staging) -> None:
        action = item.action
        p = action.predicate
        assert p.execute is not None
        options = p.execute
        (run_id,) = self.journal.add_runs(
            [self._run_row(action, "started", None)], now=self.clock()
        )
        self.hook(f"before-run:{action.id}")
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
                    "AIRSEAL_EXPORT_ID": self.export.export_id if self.export else "",
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
        self.hook(f"after-run:{action.id}")

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

    def _decide_reboot(self, report: ImportReport) -> tuple[str, ...] | None:
        if report.status not in ("completed", "partial"):
            return None
        needed = False
        for action in self.actions:
            entry = self.reports[action.id]
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

    def _write_receipt(self, report: ImportReport) -> bytes | None:
        if (
            self.export is None
            or self.options.dry_run
            or not self.options.write_receipt
            or self.receipt_mount is None
        ):
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
                export_bundle_sha256=self.export.bundle_sha256,
            )
            report.receipt_path = write_receipt(
                self.receipt_mount, self.state.agent_id, self.export.export_id, data
            )
        except AirsealError as exc:
            report.warnings.append(f"receipt not written: {exc}")
            return None
        return data
