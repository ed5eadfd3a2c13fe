"""What `airseal-agent` prints for people: an import's report, outcome marks, signed names.

Kept apart from the command definitions (agent/cli.py) so that the commands stay thin; the text
of a run's outcome is the same in `import`, `status` and `history`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from airseal._internal.times import normalise_timestamp

if TYPE_CHECKING:
    from airseal.agent.report import ImportReport


def retries_text(retries: int) -> str:
    if retries == 0:
        return "0 (a failed execute action is never run again)"
    return f"{retries} (a failed execute action runs again up to {retries} times)"


MARKS = {
    "succeeded": "ok",
    "failed": "FAILED",
    "skipped": "skipped",
    "already-done": "done",
    "interrupted": "INTERRUPTED",
    "refused": "REFUSED",
    "not-run": "not run",
    "would-run": "would run",
    "not-retried": "NOT RETRIED",
}


def shown(name: str) -> str:
    """A signed name as the user may safely read it: escaped, with a warning, if it could
    deceive (bidi controls, invisible characters, mixed scripts)."""
    from airseal.media.confusables import shown_with_warning

    return shown_with_warning(name)


def escaped(text: str) -> str:
    from airseal.media.confusables import escape_confusables

    return escape_confusables(text)


def print_report(report: ImportReport) -> None:
    for leftover in report.cleaned_up:
        click.echo(f"Removed what an earlier, killed import left: {leftover}", err=True)
    for run in report.interrupted:
        click.echo(
            f"An earlier import was interrupted while {shown(run['name'])} v{run['version']} ran "
            f"(started {normalise_timestamp(run['started'])}); its result is unknown.",
            err=True,
        )
    if report.export_id is None:
        click.echo(f"Import of {report.media}: {report.status}")
        return
    who = f" from {report.distributor_name}" if report.distributor_name else ""
    again = " (again)" if report.repeat else ""
    click.echo(
        f"Export {report.export_id} (sequence {report.sequence}){who}{again}: {report.status}"
    )
    for action in report.actions:
        mark = MARKS.get(action.outcome, action.outcome)
        line = f"  {mark:<12} {shown(action.name)} v{action.version}"
        if action.reason:
            line += f": {escaped(action.reason)}"
        click.echo(line)
    if report.receipt_path:
        click.echo(f"Receipt: {report.receipt_path}")
    if report.reboot == "started":
        click.echo("Rebooting: an action asked for it.")
    elif report.reboot == "pending":
        click.echo("A reboot is needed (not started: --no-reboot).")
