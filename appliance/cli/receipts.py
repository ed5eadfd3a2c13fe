"""`airseal receipts import|list`: what endpoints did with the exports, brought back on media."""

from __future__ import annotations

from pathlib import Path

import click

from airseal._internal.cli import examples, json_option
from airseal._internal.times import normalise_timestamp
from airseal.appliance.cli import cli, exit_codes
from airseal.appliance.cli.session import open_appliance
from airseal.appliance.cli.ui import emit_json


@examples(
    'airseal receipts import /media/usb',
    'airseal receipts list',
)
@cli.group(name="receipts")
def receipts_group() -> None:
    """Receipts written by endpoint agents: import them from media, list per action and agent."""


@examples(
    'airseal receipts import /media/usb',
    'airseal receipts import /media/usb --json',
)
@receipts_group.command(name="import")
@click.argument("mount", type=click.Path(exists=True, file_okay=False, path_type=Path))
@json_option
@click.pass_context
def receipts_import(ctx: click.Context, mount: Path, as_json: bool) -> None:
    """Verify and store the receipts on the media at MOUNT (exit 1 if any is refused).

    Each receipt must be signed by the key its agent is enrolled with (`airseal agents`) and
    answer an export this appliance wrote. Receipts of agents not enrolled are kept aside, not
    counted, until the agent is enrolled.
    """
    report = open_appliance().import_receipts(mount)
    if as_json:
        emit_json(report.to_dict())
    else:
        *lines, total = report.lines()
        for result, line in zip(report.results, lines, strict=True):
            click.echo(line, err=result.status == "refused")
        click.echo(total)
    if not report.ok:
        ctx.exit(exit_codes.VERIFICATION_FAILED)


@examples(
    'airseal receipts list',
    'airseal receipts list --unenrolled --json',
)
@receipts_group.command(name="list")
@click.option(
    "--unenrolled", is_flag=True, help="Only the receipts kept aside (agent not enrolled)."
)
@json_option
def receipts_list(unenrolled: bool, as_json: bool) -> None:
    """Per-action and per-agent status from the receipts of enrolled agents; then, apart, the
    agents whose receipts wait for enrolment."""
    listing = open_appliance().list_receipts()
    if as_json:
        emit_json({"unenrolled": listing.unenrolled} if unenrolled else listing.to_dict())
        return
    if unenrolled:
        if listing.unenrolled:
            click.echo("\n".join(listing.unenrolled_lines()))
        else:
            click.echo("No receipts kept aside: every receipt came from an enrolled agent.")
        return
    if listing.unenrolled:
        click.echo("\n".join(listing.unenrolled_lines()))
    if not listing.receipts:
        click.echo("No receipts yet. Import them with `airseal receipts import DIR`.")
        return
    click.echo("Actions:")
    for action in listing.actions:
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(action["outcomes"].items()))
        click.echo(f"  {action['id']} v{action['version']:<3} {action['name'] or ''}  {counts}")
    click.echo("Agents:")
    for agent in listing.agents:
        failed = f", {agent['failed_actions']} failed action(s)" if agent["failed_actions"] else ""
        click.echo(
            f"  {agent['id']}  {agent['hostname']} ({agent['os']})  last: export "
            f"{agent['last_export']} {agent['last_status']} at "
            f"{normalise_timestamp(str(agent['last_finished']))}, "
            f"{agent['receipts']} receipt(s){failed}"
        )
        if agent["basis"] == "first-use":
            click.echo("    key pinned on first use, not verified by an administrator")
