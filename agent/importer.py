"""One import of one media: the pure check 2 (:mod:`airseal.agent.verification`) composed with the
shell that acts on its result (:mod:`airseal.agent.runner`).

The media enter once, as the :class:`airseal.media.reader.MediaSource` given to
:class:`Importer`: verification reads it, staging copies from it and the receipt is written
through it. Stages, in order (a test or a front end can watch them through
``hook(stage, importer)``):

``export-verified``   check 2: export statement signature, trusted signer, freshness, sequence
``files-verified``    check 2: listing rules and every file's digest (airseal.media.verdict)
``actions-verified``  check 2: each action's own signed statement, matched to the listing, and
                      the transparency log's proofs (consistency, then inclusion)
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

import logging
import os
import socket
from collections.abc import Callable

from airseal.agent import platforms
from airseal.agent.approval import Approver
from airseal.agent.conditions import HostFacts
from airseal.agent.journal import Journal
from airseal.agent.leftovers import remove_leftovers
from airseal.agent.log_state import last_checkpoint, store_checkpoint
from airseal.agent.report import ActionReport, ImportReport, error_json
from airseal.agent.runner import ActionRunner, Clock, ImportOptions, SignerSupplier
from airseal.agent.staging import StagedPayload
from airseal.agent.state import AgentState
from airseal.agent.trust import TrustSource
from airseal.agent.verification import (
    DistributorHistory,
    MediaVerifier,
    SequenceRecord,
    VerifiedExport,
    VerifiedMedia,
)
from airseal.errors import AirsealError
from airseal.media.reader import MediaSource
from airseal.trustroot.errors import VerificationError
from airseal.trustroot.tlog.media_proofs import VerifiedLog

__all__ = ["ImportOptions", "Importer", "StageHook", "host_facts", "remembered_distributors"]

StageHook = Callable[[str, "Importer"], None]
TrustProvider = Callable[[], TrustSource]
"""Makes the trust source during check 2 (TUF mode updates from the media first): a refusal it
raises is the import's refusal, reported like any other."""

log = logging.getLogger(__name__)


def host_facts(state: AgentState) -> HostFacts:
    """This machine, as conditions see it."""
    return HostFacts(
        os=platforms.current_os(),
        hostname=socket.gethostname(),
        groups=frozenset(state.config.groups),
        path_exists=os.path.exists,
    )


def remembered_distributors(journal: Journal) -> dict[str, DistributorHistory]:
    """What check 2 needs from the journal: each distributor's newest accepted export and
    whether it was approved, by fingerprint."""
    return {
        known.fingerprint: DistributorHistory(
            SequenceRecord(
                known.last_sequence,
                known.last_export_id,
                known.last_export_sha256,
                known.last_statement_sha256,
            ),
            approved=known.approved is not None,
        )
        for known in journal.distributors()
    }


class Importer:
    """One import of one media. Build it, call :meth:`run` once, read the report."""

    def __init__(
        self,
        state: AgentState,
        journal: Journal,
        trust: TrustSource | TrustProvider,
        source: MediaSource,
        *,
        approver: Approver,
        clock: Clock,
        host: HostFacts,
        signer: SignerSupplier | None,
        options: ImportOptions | None = None,
        hook: StageHook | None = None,
        media_label: str | None = None,
    ) -> None:
        if options is None:
            options = ImportOptions()
        self.state = state
        self.journal = journal
        self.trust = trust
        self.source = source
        self.clock = clock
        self.options = options
        self.media_label = media_label or source.label
        self._hook = hook
        self.now = clock()
        self.export: VerifiedExport | None = None
        self.log: VerifiedLog | None = None
        self.runner = ActionRunner(
            state,
            journal,
            source,
            approver=approver,
            clock=clock,
            now=self.now,
            host=host,
            signer=signer,
            options=options,
            announce=self.hook,
        )
        self.report: ImportReport | None = None

    @property
    def staged(self) -> dict[str, StagedPayload]:
        """Payloads staged so far (check 3), by action id."""
        return self.runner.staged

    def hook(self, stage: str) -> None:
        log.info("import %s: %s", self.media_label, stage)
        if self._hook is not None:
            self._hook(stage, self)

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> ImportReport:
        interrupted = self.journal.recover_interrupted(now=self.now)
        cleaned = (
            []
            if self.options.dry_run
            else remove_leftovers(self.state, self.runner.host.os, self.state.config.destination)
        )
        import_id = self.journal.begin_import(
            self.media_label, now=self.now, dry_run=self.options.dry_run
        )
        report = ImportReport(import_id, self.media_label, self.now)
        report.interrupted = [r.to_json_dict(with_output=False) for r in interrupted]
        report.cleaned_up = cleaned
        self.report = report
        try:
            # the agent key first (or, unattended, while check 2 runs): a wrong password ends
            # the import, recorded as failed, before any distributor is approved or any
            # sequence accepted
            with self.runner.unlocking():
                media = self._verify(report)
            self.runner.run(media, report)
        except VerificationError as error:
            report.status = "refused"
            report.error = error
            for entry in report.actions:
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
        if self.log is not None and report.status != "refused" and not self.options.dry_run:
            # the import was accepted: this endpoint has now seen the log up to here
            store_checkpoint(self.state.root, self.log.final, self.log.final_note)
        report.finished = self.clock()
        reboot_command = self.runner.reboot_command(report)
        receipt = self.runner.write_receipt(report, self.export)
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
            self.runner.reboot(reboot_command, report)
        return report

    def _verify(self, report: ImportReport) -> VerifiedMedia:
        """Check 2, step by step, recording what each step established."""
        trust = self.trust() if callable(self.trust) else self.trust
        verifier = MediaVerifier(
            self.source, trust, remembered_distributors(self.journal), now=self.now,
            previous_checkpoint=last_checkpoint(self.state.root),
        )
        export = verifier.authenticate_export()
        self._record_export(export, report)
        report.repeat = verifier.verify_sequence()
        self.hook("export-verified")
        verifier.verify_files()
        self.hook("files-verified")
        verifier.verify_actions()
        verifier.verify_vendor_signatures()
        self.log = verifier.verify_log()
        self.hook("actions-verified")
        return verifier.verified()

    def _record_export(self, export: VerifiedExport, report: ImportReport) -> None:
        """An authenticated export: into the report and the journal, with one entry per listed
        action (a refusal from here on still earns a receipt naming them)."""
        self.export = export
        report.export_id, report.sequence = export.export_id, export.sequence
        report.distributor = export.distributor.fingerprint
        report.distributor_name = export.distributor.name
        self.journal.set_import_export(
            report.import_id,
            export_id=export.export_id,
            sequence=export.sequence,
            distributor=export.distributor.fingerprint,
            sha256=export.bundle_sha256,
            statement_sha256=export.statement_sha256,
        )
        entries = {
            listed.id: ActionReport(listed.id, listed.version, listed.name, "unknown", "not-run")
            for listed in export.contents.predicate.actions
        }
        report.actions = list(entries.values())

    def _finish_failed(
        self, report: ImportReport, error: AirsealError | None, status: str
    ) -> None:
        self.journal.finish_import(
            report.import_id,
            status,
            now=self.clock(),
            error=error_json(error) if error is not None else None,
        )
