"""Terminal plumbing shared by the CLI commands: prompts, progress, JSON output."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from airseal._internal.cli import emit_json as shared_emit_json
from airseal._internal.cli import table_lines as table_lines
from airseal.appliance.errors import PasswordError

stderr = Console(stderr=True)


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
        stderr.print(f"[bold yellow]{message}[/]")


MIB = 1024 * 1024


class MiBColumn(ProgressColumn):
    """``123.4/500.0 MiB``: binary units, the ones file sizes on media are reasoned in (rich's
    DownloadColumn shows decimal GB, "0.1/1.0 GB" for a 500 MiB export)."""

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


def _progress(console: Console) -> Progress:
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
    if not enabled or not stderr.is_terminal:
        yield lambda n: None
        return
    with _progress(stderr) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


@contextmanager
def export_progress(*, enabled: bool = True) -> Iterator[Callable[[int, int, int], None]]:
    """Two bars for an export's two phases, ``write`` and ``read back`` (they overlap: each
    file is read back from the media while the next is written); yields the writer's
    ``(written, read_back, total)`` callback."""
    if not enabled or not stderr.is_terminal:
        yield lambda written, verified, total: None
        return
    with _progress(stderr) as progress:
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
