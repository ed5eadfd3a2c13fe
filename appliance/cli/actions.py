"""`airseal action create|edit|list|show|revoke`: signed node actions."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Any

import click

from airseal._internal.cli import json_option
from airseal.appliance.cli import cli
from airseal.appliance.cli.session import open_appliance
from airseal.appliance.cli.ui import emit_json
from airseal.appliance.service.records import ActionRecord, ActionSpec
from airseal.media.confusables import shown_with_warning


def action_options(required: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The fields of a node action, shared by create (some required) and edit (all optional)."""
    options = [
        click.option("--name", required=required, help='"(Purpose)Name", e.g. "(Install)Agent".'),
        click.option("--description", help="Free text shown to endpoint users."),
        click.option("--label", help="A short label to group actions."),
        click.option(
            "--file",
            "file_ref",
            required=required,
            help="Payload: a stored file's SHA-256 (or 8+ digit prefix) or a path.",
        ),
        click.option(
            "--os",
            "os_name",
            type=click.Choice(["linux", "macos", "windows"]),
            required=required,
            help="Target operating system.",
        ),
        click.option(
            "--mode",
            type=click.Choice(["execute", "download"]),
            required=required,
            help="Distribution option.",
        ),
        click.option("--if-missing", multiple=True, help="Run only if this path is missing."),
        click.option("--if-exists", multiple=True, help="Run only if this path exists."),
        click.option("--host", help="Run only on hosts whose name matches this glob."),
        click.option("--group", help="Run only on endpoints in this group."),
        click.option("--run", help="Execute: file inside the archive to run."),
        click.option("--args", "args_text", help='Execute: arguments, shell-quoted ("-q --x").'),
        click.option("--run-as", help="Execute: account to run as."),
        click.option(
            "--timeout",
            type=click.IntRange(1, 7 * 24 * 3600),
            help="Execute: seconds before the run is stopped (default 3600).",
        ),
        click.option(
            "--reboot",
            type=click.Choice(["never", "if-requested", "always"]),
            help="Execute: reboot option (default never).",
        ),
        click.option("--dest", help="Download: absolute destination path on the endpoint."),
        click.option(
            "--file-mode", "--mode-bits", "file_mode", help="Download: permission bits, e.g. 0644."
        ),
        click.option("--owner", help="Download: owning account."),
        click.option(
            "--valid-days",
            type=click.IntRange(1, 3650),
            help="Validity window in days (default: setting action.valid-days).",
        ),
        click.option(
            "--require-vendor-signature/--no-require-vendor-signature",
            "require_vendor_signature",
            default=None,
            help="Endpoints refuse the action unless the vendor's signature, checked at intake, "
            "travels with it and holds again there (signed into the action).",
        ),
    ]

    def apply(function: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            function = option(function)
        return function

    return apply


def _spec(kw: dict[str, Any]) -> ActionSpec:
    args = kw.pop("args_text", None)
    if_missing, if_exists = kw.pop("if_missing", ()), kw.pop("if_exists", ())
    return ActionSpec(
        name=kw["name"],
        description=kw["description"],
        label=kw["label"],
        os=kw["os_name"],
        mode=kw["mode"],
        file=kw["file_ref"],
        if_missing=tuple(if_missing) or None,
        if_exists=tuple(if_exists) or None,
        host=kw["host"],
        group=kw["group"],
        run=kw["run"],
        args=tuple(shlex.split(args)) if args is not None else None,
        run_as=kw["run_as"],
        timeout=kw["timeout"],
        reboot=kw["reboot"],
        dest=kw["dest"],
        file_mode=kw["file_mode"],
        owner=kw["owner"],
        valid_days=kw["valid_days"],
        require_vendor_signature=kw["require_vendor_signature"],
    )


@cli.group(name="action")
def action_group() -> None:
    """Signed actions: what endpoints should run or receive."""


@action_group.command(name="create")
@action_options(required=True)
@click.option("--key", "key_name", required=True, help="Signing key name.")
@json_option
def action_create(key_name: str, as_json: bool, **kw: Any) -> None:
    """Create and sign an action (an in-toto statement in a DSSE bundle).

    \b
    Examples:
      airseal action create --name "(Install)Agent" --os linux --mode execute \\
          --file agent.tar.gz --run install.sh --key release --require-vendor-signature
    """
    record = open_appliance().create_action(_spec(kw), key_name)
    _print(record, as_json, "Created")


@action_group.command(name="edit")
@click.argument("action_id")
@action_options(required=False)
@click.option("--key", "key_name", help="Signing key (default: the one that signed it).")
@json_option
def action_edit(action_id: str, key_name: str | None, as_json: bool, **kw: Any) -> None:
    """Sign a new version of ACTION_ID with the given fields changed."""
    record = open_appliance().edit_action(action_id, _spec(kw), key_name)
    _print(record, as_json, "Signed")


@action_group.command(name="list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked actions.")
@click.option("--versions", is_flag=True, help="Every version, not only the latest.")
@json_option
def action_list(include_revoked: bool, versions: bool, as_json: bool) -> None:
    """The actions (latest versions)."""
    records = open_appliance().list_actions(
        include_revoked=include_revoked, all_versions=versions
    )
    if as_json:
        emit_json([r.summary() for r in records])
        return
    if not records:
        click.echo("No actions. Create one with `airseal action create`.")
    for r in records:
        state = "REVOKED " if r.revoked else ""
        name = shown_with_warning(r.name)
        click.echo(f"{r.id}  v{r.version:<3} {r.os:<8} {r.mode:<9} {state}{name}")


@action_group.command(name="show")
@click.argument("action_id")
@click.option("--version", type=int, help="A specific version (default: latest).")
@click.option("--bundle", "show_bundle", is_flag=True, help="Print the signed bundle JSON.")
@json_option
def action_show(action_id: str, version: int | None, show_bundle: bool, as_json: bool) -> None:
    """Show an action's signed fields."""
    record = open_appliance().get_action(action_id, version)
    if show_bundle:
        click.echo(record.bundle, nl=False)
        return
    if as_json:
        emit_json(record.details())
        return
    click.echo(json.dumps(record.details(), indent=2))


@action_group.command(name="revoke")
@click.argument("action_id")
@click.option("--reason", default="revoked by operator", show_default=True)
@json_option
def action_revoke(action_id: str, reason: str, as_json: bool) -> None:
    """Revoke every version of an action: no later export carries it."""
    count = open_appliance().revoke_action(action_id, reason)
    if as_json:
        emit_json({"id": action_id, "revoked_versions": count})
    else:
        click.echo(f"Revoked {action_id} ({count} version(s))")


def _print(record: ActionRecord, as_json: bool, verb: str) -> None:
    if as_json:
        emit_json(record.summary())
    else:
        click.echo(
            f"{verb} action {record.id} v{record.version}: {shown_with_warning(record.name)} "
            f"({record.os}, {record.mode}), valid until {record.valid_until}"
        )
