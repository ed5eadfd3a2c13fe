"""`airseal agents enroll|list|remove`: which endpoint agents' receipts count in fleet status."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from airseal._internal.cli import examples, json_option
from airseal.appliance.cli import cli, exit_codes
from airseal.appliance.cli.session import open_appliance
from airseal.appliance.cli.ui import emit_json
from airseal.appliance.errors import UsageError


@examples(
    'airseal agents enroll --id 6c1f0a2b --key agent.pub',
    'airseal agents list',
)
@cli.group(name="agents")
def agents_group() -> None:
    """Endpoint agents enrolled here: only their receipts count in fleet status."""


@examples(
    'airseal agents enroll --id 6c1f0a2b --key agent.pub --name "ws-042"',
    'airseal agents enroll --from-receipt /media/usb/airseal/receipts/6c1f0a2b/export-1.json',
)
@agents_group.command(name="enroll")
@click.option("--id", "agent_id", help="The agent id (`airseal-agent identity` on the endpoint).")
@click.option(
    "--key",
    "key_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The agent's public key (agent.pub, brought by an administrator).",
)
@click.option(
    "--from-receipt",
    "receipt_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Enrol the agent and key a receipt on media carries (shown first, for approval).",
)
@click.option("--name", help="A name for people (default: the agent id, or the receipt's host).")
@click.option("--yes", is_flag=True, help="With --from-receipt: approve without asking.")
@json_option
@click.pass_context
def agents_enroll(
    ctx: click.Context,
    agent_id: str | None,
    key_path: Path | None,
    receipt_path: Path | None,
    name: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Enrol an agent: --id with --key, or --from-receipt RECEIPT_FILE.

    --from-receipt shows the agent id and key fingerprint first; declining exits 1 with nothing
    changed. Receipts of an agent not enrolled are kept aside (`airseal receipts list
    --unenrolled`); enrolling it counts those its key signed. An enrolled key is never replaced:
    remove the agent first when its endpoint was re-installed.
    """
    appliance = open_appliance()
    if receipt_path is not None:
        if agent_id or key_path:
            raise UsageError("--from-receipt goes without --id and --key")
        identity = appliance.receipt_identity(receipt_path)
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError("not on a terminal: compare the fingerprint, then add --yes")
            click.echo(f"The receipt {receipt_path} was signed by:", err=True)
            for line in identity.describe():
                click.echo(f"  {line}", err=True)
            click.echo(
                "Compare the fingerprint with `airseal-agent identity` on that endpoint.", err=True
            )
            if not click.confirm("Enrol this agent with this key?", err=True):
                click.echo("Not enrolled: nothing changed.", err=True)
                ctx.exit(exit_codes.VERIFICATION_FAILED)  # refused by the operator
        result = appliance.enroll_from_receipt(identity, name=name)
    else:
        if not agent_id or not key_path:
            raise UsageError("give --id and --key, or --from-receipt")
        result = appliance.enroll_agent(agent_id, key_path, name=name)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo("\n".join(result.describe()))


@examples(
    'airseal agents list',
    'airseal agents list --json',
)
@agents_group.command(name="list")
@json_option
def agents_list(as_json: bool) -> None:
    """The enrolled agents, then the agents whose receipts wait for enrolment."""
    appliance = open_appliance()
    agents = appliance.list_agents()
    listing = appliance.list_receipts()
    if as_json:
        emit_json({"enrolled": [a.to_dict() for a in agents], "unenrolled": listing.unenrolled})
        return
    if not agents:
        click.echo("No agent enrolled. Enrol one with `airseal agents enroll --id ID --key FILE`.")
    for agent in agents:
        click.echo("\n".join(agent.describe()))
    if listing.unenrolled:
        click.echo("")
        click.echo("\n".join(listing.unenrolled_lines()))


@examples(
    'airseal agents remove 6c1f0a2b',
)
@agents_group.command(name="remove")
@click.argument("agent_id")
@json_option
def agents_remove(agent_id: str, as_json: bool) -> None:
    """Withdraw AGENT_ID's enrolment (its receipts stop counting; they stay stored) and discard
    the receipts kept aside for that id."""
    removal = open_appliance().remove_agent(agent_id)
    if as_json:
        emit_json(removal.to_dict())
    else:
        click.echo("\n".join(removal.describe()))
