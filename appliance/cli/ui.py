"""Terminal plumbing shared by the CLI commands: prompts, progress, JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

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


@contextmanager
def byte_progress(label: str, total: int, *, enabled: bool = True) -> Iterator[Any]:
    """A rich progress bar on stderr; yields a callback taking a byte count."""
    if not enabled or not stderr.is_terminal:
        yield lambda n: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=stderr,
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
