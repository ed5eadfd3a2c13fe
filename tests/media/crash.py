"""Kill an export in a real child process, at a chosen step or after a chosen delay.

The child is forked from the test process (so it needs no start-up time and shares the
in-memory signing key) and killed with SIGKILL: no handler, no cleanup, no flushing of Python
buffers, exactly what a crash or a yanked power cord does to the process.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from airseal.media import layout
from airseal.media.check import CheckReport, check_media
from airseal.media.writer import ActionToExport, ExportResult, StepCallback, write_export
from airseal.trustroot.signer import PrivateKeySigner

from .helpers import SPLIT_THRESHOLD, export_header, signing_callback, standard_actions

ExportRun = Callable[[StepCallback | None], object]


@dataclass(frozen=True)
class ChildOutcome:
    killed: bool
    exit_code: int | None
    seconds: float
    steps: tuple[str, ...] = ()
    """The writer's steps the child announced before it ended (each written unbuffered before
    the step runs, so a kill cannot lose one that ran)."""

    def passed(self, step: str) -> bool:
        return step in self.steps


def run_export_in_child(
    run: ExportRun, *, kill_at_step: int | None = None, kill_after: float | None = None
) -> ChildOutcome:
    """Run ``run(on_step)`` in a forked child; SIGKILL it before step ``kill_at_step`` (1-based)
    from inside, or ``kill_after`` seconds after it was told to start, from outside."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    # The steps go to an unlinked file, not a pipe: a full pipe would block the child.
    log = tempfile.TemporaryFile()  # noqa: SIM115  (closed below, after the child is reaped)
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(ready_r)
            os.close(go_w)
            os.write(ready_w, b"r")
            os.read(go_r, 1)
            count = 0

            def on_step(what: str) -> None:
                nonlocal count
                os.write(log.fileno(), what.encode() + b"\n")
                count += 1
                if count == kill_at_step:
                    os.kill(os.getpid(), signal.SIGKILL)

            run(on_step)
            os._exit(0)
        except BaseException:
            traceback.print_exc(file=sys.stderr)
            os._exit(1)
    os.close(ready_w)
    os.close(go_r)
    os.read(ready_r, 1)
    os.close(ready_r)
    started = time.monotonic()
    os.write(go_w, b"g")
    os.close(go_w)
    if kill_after is not None:
        time.sleep(kill_after)
        os.kill(pid, signal.SIGKILL)  # a zombie if it already finished: harmless
    _pid, status = os.waitpid(pid, 0)
    seconds = time.monotonic() - started
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    log.seek(0)
    steps = tuple(log.read().decode().splitlines())
    log.close()
    return ChildOutcome(killed, exit_code, seconds, steps)


def assert_previous_or_incomplete(
    report: CheckReport, previous_id: str, new_id: str, *, finished: bool, where: str
) -> None:
    """The crash invariant: never damaged; complete only as the previous export (or the new
    one if the child actually finished); a statement present means no listed file is missing."""
    context = f"after a kill {where}: {report.status} {report.export_id} {report.findings}"
    assert report.status != "damaged", context
    if report.status == "complete":
        assert report.export_id == previous_id or (finished and report.export_id == new_id), context
    else:
        assert report.status == "incomplete", context
        if report.export_id is not None:
            assert report.export_id in (previous_id, new_id), context
            assert not report.missing, context
            assert report.leftovers, context


class ExportSeries:
    """Exports alternating between two action sets (same paths, different bytes)."""

    def __init__(self, mount: Path, signer: PrivateKeySigner, workdir: Path, size: int) -> None:
        self.mount = mount
        self.signer = signer
        self.sign = signing_callback(signer)
        self.sets: list[list[ActionToExport]] = []
        for index in range(2):
            folder = workdir / f"set-{index}"
            folder.mkdir()
            self.sets.append(
                standard_actions(
                    signer, folder, seed=10 * index, version=index + 1, split_size=size
                )
            )
        self.sequence = 0

    @property
    def current_id(self) -> str:
        return f"exp-{self.sequence}"

    def next_run(self, on_step: StepCallback | None = None) -> ExportResult:
        sequence = self.sequence + 1
        return write_export(
            self.mount,
            self.sets[sequence % 2],
            export_header(self.signer, f"exp-{sequence}", sequence),
            self.sign,
            split_threshold=SPLIT_THRESHOLD,
            on_step=on_step,
        )

    def advance(self) -> None:
        """Run the next export to completion in this process and check it is complete."""
        result = self.next_run()
        self.sequence += 1
        report = check_media(self.mount)
        assert (report.status, report.export_id) == ("complete", self.current_id), report.findings
        assert result.export_id == self.current_id

    def kill_next(self, *, at_step: int | None = None, after: float | None = None) -> str:
        """Kill the next export; return what the check saw ("complete" or "incomplete")."""
        previous, new = self.current_id, f"exp-{self.sequence + 1}"
        outcome = run_export_in_child(self.next_run, kill_at_step=at_step, kill_after=after)
        where = f"at step {at_step}" if at_step is not None else f"after {after:.4f} s"
        assert outcome.killed or outcome.exit_code == 0, f"child failed {where}: {outcome}"
        report = check_media(self.mount)
        # The new statement's move is the commit point: a kill after it (while the staging and
        # old folders are removed, or before the process exits) may leave the new export whole.
        commit = f"-> {layout.MEDIA_DIR}/{layout.STATEMENT_NAME}"
        committed = not outcome.killed or any(
            step.startswith("move ") and step.endswith(commit) for step in outcome.steps
        )
        assert_previous_or_incomplete(report, previous, new, finished=committed, where=where)
        if at_step is not None:
            assert outcome.killed, f"the export finished before step {at_step}"
        if not outcome.killed:
            self.sequence += 1  # it finished before the kill: that export is the current one
        self.advance()  # the next export succeeds whatever the kill left behind
        return report.status


def count_steps(tmp_path: Path, signer: PrivateKeySigner, size: int) -> list[str]:
    """The changes one export makes to media that already holds a complete export."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    work = tmp_path / "scratch-src"
    work.mkdir()
    probe = ExportSeries(scratch, signer, work, size)
    probe.advance()
    steps: list[str] = []
    probe.next_run(steps.append)
    return steps
