"""Terminal plumbing shared by the CLI commands: prompts, progress, JSON output.

rich takes about 50 ms to import, a quarter of a small `verify-blob`: it loads when something is
printed through it or a progress bar is shown, not with this module. ``stderr`` (the rich console
on stderr) is still importable by that name; it is created on first use.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

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


@contextmanager
def byte_progress(label: str, total: int, *, enabled: bool = True) -> Iterator[Any]:
    """A rich progress bar on stderr; yields a callback taking a byte count."""
    if (
        not enabled
        or total < BAR_MIN_BYTES
        or not _stderr_may_be_a_terminal()
        or not stderr_console().is_terminal
    ):
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=stderr_console(),
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


def file_size(path: Path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))
