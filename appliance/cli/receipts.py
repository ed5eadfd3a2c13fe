"""`airseal receipts import|list`: what endpoints did with the exports, brought back on media."""

from __future__ import annotations

from pathlib import Path

import click

from airseal._internal.cli import json_option
from airseal.appliance.cli import cli, exit_codes
from airseal.appliance.cli.session import open_appliance
from airseal.appliance.cli.ui import emit_json


@cli.group(name="receipts")
def receipts_group() -> None:
    """Receipts written by endpoint agents: import them from media, list per action and agent."""


@receipts_group.command(name="import")
@click.argument("mount", type=click.Path(exists=True, file_okay=False, path_type=Path))
@json_option
@click.pass_context
def receipts_import(ctx: click.Context, mount: Path, as_json: bool) -> None:
    """Verify and store the receipts on the media at MOUNT (exit 1 if any is refused).

    Each receipt must be signed by its agent's key (pinned the first time the agent is seen)
    and answer an export this appliance wrote.
    """
    report = open_appliance().import_receipts(mount)
    if as_json:
        emit_json(report.to_dict())
    else:
        for result in report.results:
            if result.status == "refused":
                assert result.error is not None
                click.echo(result.error.diagnostics(), err=True)
            else:
                click.echo(
                    f"{result.status:<9} {result.agent_id}  export {result.export_id}: "
                    f"{result.outcome}"
                )
        click.echo(
            f"{len(report.results)} receipt(s): {report.count('imported')} imported, "
            f"{report.count('updated')} updated, {report.count('unchanged')} unchanged, "
            f"{report.count('refused')} refused"
        )
    if not report.ok:
        ctx.exit(exit_codes.VERIFICATION_FAILED)


@receipts_group.command(name="list")
@json_option
def receipts_list(as_json: bool) -> None:
    """Per-action and per-agent status from the receipts imported so far."""
    listing = open_appliance().list_receipts()
    if as_json:
        emit_json(listing.to_dict())
        return
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
            f"{agent['last_export']} {agent['last_status']} at {agent['last_finished']}, "
            f"{agent['receipts']} receipt(s){failed}"
        )
