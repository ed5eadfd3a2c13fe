"""Terminal plumbing shared by the CLI commands: prompts, progress, JSON output.

rich takes about 50 ms to import, a quarter of a small `verify-blob`: it loads when something is
printed through it or a progress bar is shown, not with this module. ``stderr`` (the rich console
on stderr) is still importable by that name; it is created on first use.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from airseal._internal.cli import emit_json as shared_emit_json
from airseal._internal.cli import table_lines as table_lines
from airseal.appliance.errors import PasswordError

if TYPE_CHECKING:
    from rich.console import Console

BAR_MIN_BYTES = 8 * 1024 * 1024
"""Smaller files get no progress bar: they are done (about 10 ms locally, 0.25 s from a slow
USB stick) before a bar would be worth loading rich for."""


@functools.cache
def stderr_console() -> Console:
    """The rich console on stderr (one per process)."""
    from rich.console import Console

    return Console(stderr=True)


def __getattr__(name: str) -> Console:
    if name == "stderr":
        return stderr_console()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _stderr_may_be_a_terminal() -> bool:
    """False when rich would certainly say stderr is no terminal (no tty, none of the variables
    that make rich pretend one): then it need not be imported to be asked."""
    return sys.stderr.isatty() or any(
        name in os.environ for name in ("FORCE_TERMINAL", "TTY_COMPATIBLE", "FORCE_COLOR")
    )


class TerminalPrompter:
    """Answers secret prompts with a hidden terminal prompt (never echoed, never logged)."""

    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        if not sys.stdin.isatty():
            raise PasswordError(
                f"{prompt}: no terminal to ask on",
                hint="set COSIGN_PASSWORD (keys) or AIRSEAL_PIN (tokens) in the environment",
            )
        value: str = click.prompt(
            prompt, hide_input=True, confirmation_prompt=confirm, err=True, show_default=False
        )
        return value

    def notice(self, message: str) -> None:
        stderr_console().print(f"[bold yellow]{message}[/]")


MIB = 1024 * 1024


def _progress(console: Console) -> Any:
    """rich's Progress with bars in MiB (rich's DownloadColumn shows decimal GB, "0.1/1.0 GB"
    for a 500 MiB export). rich and these columns load only when a bar is shown."""
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class MiBColumn(ProgressColumn):
        """``123.4/500.0 MiB``: binary units, the ones file sizes on media are reasoned in."""

        def render(self, task: Task) -> Text:
            done = task.completed / MIB
            if task.total is None:
                return Text(f"{done:.1f} MiB", style="progress.download")
            return Text(f"{done:.1f}/{task.total / MIB:.1f} MiB", style="progress.download")

    class MiBSpeedColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            text = "" if speed is None else f"{speed / MIB:.1f} MiB/s"
            return Text(text, style="progress.data.speed")

    return Progress(
        TextColumn("[bold]{task.description:<24}"),
        BarColumn(),
        MiBColumn(),
        MiBSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


@contextmanager
def byte_progress(label: str, total: int, *, enabled: bool = True) -> Iterator[Any]:
    """A progress bar on stderr in MiB; yields a callback taking a byte count. ``label`` names
    the phase (``hash tool.bin``)."""
    if (
        not enabled
        or total < BAR_MIN_BYTES
        or not _stderr_may_be_a_terminal()
        or not stderr_console().is_terminal
    ):
        yield lambda n: None
        return
    with _progress(stderr_console()) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


@contextmanager
def export_progress(*, enabled: bool = True) -> Iterator[Callable[[int, int, int], None]]:
    """Two bars for an export's two phases, ``write`` and ``read back`` (they overlap: each
    file is read back from the media while the next is written); yields the writer's
    ``(written, read_back, total)`` callback."""
    if not enabled or not _stderr_may_be_a_terminal() or not stderr_console().is_terminal:
        yield lambda written, verified, total: None
        return
    with _progress(stderr_console()) as progress:
        write = progress.add_task("write", total=None)
        read_back = progress.add_task("read back", total=None)

        def update(written: int, verified: int, total: int) -> None:
            progress.update(write, completed=written, total=total)
            progress.update(read_back, completed=verified, total=total)

        yield update


def file_size(path: Path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def emit_json(data: Any) -> None:
    """The one JSON writer of both CLIs (camelCase, ``schemaVersion``): docs/json.md."""
    shared_emit_json(data)
