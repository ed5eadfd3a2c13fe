"""`airseal action create|edit|list|show|revoke`: signed node actions."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from airseal._internal.cli import examples, json_option
from airseal._internal.times import normalise_timestamp
from airseal.appliance.cli import cli
from airseal.appliance.cli.options import rekor_options, signing_key_option
from airseal.appliance.cli.session import open_appliance
from airseal.appliance.cli.ui import emit_json, table_lines
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
        args=_shell_words(args, "--args") if args is not None else None,
        run_as=kw["run_as"],
        timeout=kw["timeout"],
        reboot=kw["reboot"],
        dest=kw["dest"],
        file_mode=kw["file_mode"],
        owner=kw["owner"],
        valid_days=kw["valid_days"],
        require_vendor_signature=kw["require_vendor_signature"],
    )


def _shell_words(text: str, flag: str) -> tuple[str, ...]:
    """``text`` split as a POSIX shell would; an unclosed quote is the user's error, named."""
    try:
        return tuple(shlex.split(text))
    except ValueError as error:  # shlex's only failure: "No closing quotation" / "No escaped..."
        raise click.BadParameter(
            f"{str(error).lower()} in {text!r}: quote each argument, e.g. '-q \"two words\"'",
            param_hint=f"'{flag}'",
        ) from None


@examples(
    'airseal action create --name "(Install)Tool" --file tool.tar.gz --os linux \\',
    '    --mode execute --run install.sh --key ops',
    'airseal action list',
)
@cli.group(name="action")
def action_group() -> None:
    """Signed actions: what endpoints should run or receive."""


@examples(
    'airseal action create --name "(Install)Tool" --file tool.tar.gz --os linux \\',
    '    --mode execute --run install.sh --args \'--quiet --prefix "/opt/my tool"\' --key ops',
    'airseal action create --name "(Config)Motd" --file motd --os linux \\',
    '    --mode download --dest /etc/motd --file-mode 0644 --key ops',
)
@action_group.command(name="create")
@action_options(required=True)
@signing_key_option(required=True)
@rekor_options
@json_option
def action_create(
    key_name: str, rekor_url: str | None, rekor_key: str | None, signing_config: Path | None,
    as_json: bool, **kw: Any
) -> None:
    """Create and sign an action (an in-toto statement in a DSSE bundle).

    \b
    Examples:
      airseal action create --name "(Install)Agent" --os linux --mode execute \\
          --file agent.tar.gz --run install.sh --key release --require-vendor-signature
    """
    appliance = open_appliance()
    with appliance.using_rekor(rekor_url, rekor_key, signing_config):
        record = appliance.create_action(_spec(kw), key_name)
    _print(record, as_json, "Created")


@examples(
    'airseal action edit 3f2a9c01d4e5 --valid-days 30',
    'airseal action edit 3f2a9c01d4e5 --file tool-1.3.tar.gz --key ops',
)
@action_group.command(name="edit")
@click.argument("action_id")
@action_options(required=False)
@signing_key_option(required=False)
@rekor_options
@json_option
def action_edit(
    action_id: str, key_name: str | None, rekor_url: str | None, rekor_key: str | None,
    signing_config: Path | None, as_json: bool, **kw: Any,
) -> None:
    """Sign a new version of ACTION_ID with the given fields changed (--key: default the key
    that signed it)."""
    appliance = open_appliance()
    with appliance.using_rekor(rekor_url, rekor_key, signing_config):
        record = appliance.edit_action(action_id, _spec(kw), key_name)
    _print(record, as_json, "Signed")


@examples(
    'airseal action list',
    'airseal action list --all --versions --json',
    'airseal action list --awaiting-approval    # two-person rule: "1 of 2"',
)
@action_group.command(name="list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked actions.")
@click.option("--versions", is_flag=True, help="Every version, not only the latest.")
@click.option("--awaiting-approval", "awaiting", is_flag=True,
              help="Only current actions with fewer distributor signatures than the site "
              "policy's action threshold (the two-person rule), with their count.")
@json_option
def action_list(include_revoked: bool, versions: bool, awaiting: bool, as_json: bool) -> None:
    """The actions (latest versions)."""
    if awaiting:
        if include_revoked or versions:
            raise click.UsageError("--awaiting-approval lists current actions only: drop "
                                   "--all and --versions")
        waiting = open_appliance().actions_awaiting_approval()
        if as_json:
            emit_json({"schemaVersion": 1, "items": [a.to_json() for a in waiting]})
        elif not waiting:
            click.echo("No action awaits approval.")
        else:
            click.echo("\n".join(a.describe() for a in waiting))
        return
    records = open_appliance().list_actions(
        include_revoked=include_revoked, all_versions=versions
    )
    if as_json:
        emit_json([r.summary() for r in records])
        return
    if not records:
        click.echo("No actions. Create one with `airseal action create`.")
        return
    click.echo("\n".join(table_lines(
        ("ID", "VERSION", "OS", "MODE", "VALID UNTIL", "STATE", "NAME"),
        [(r.id, f"v{r.version}", r.os, r.mode, normalise_timestamp(str(r.valid_until)),
          "revoked" if r.revoked else "current", shown_with_warning(r.name)) for r in records],
    )))


@examples(
    'airseal action show 3f2a9c01d4e5',
    'airseal action show 3f2a9c01d4e5 --version 2 --bundle > action.sigstore.json',
)
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


@examples(
    'airseal action revoke 3f2a9c01d4e5',
    'airseal action revoke 3f2a9c01d4e5 --reason "superseded by 1.3"',
)
@action_group.command(name="revoke")
@click.argument("action_id")
@click.option("--reason", default="revoked by operator", show_default=True,
              help="Why (kept in the audit log).")
@json_option
def action_revoke(action_id: str, reason: str, as_json: bool) -> None:
    """Revoke every version of an action: no later export carries it."""
    count = open_appliance().revoke_action(action_id, reason)
    if as_json:
        emit_json({"id": action_id, "revoked_versions": count})
    else:
        click.echo(f"Revoked {action_id} ({count} version(s))")


@action_group.command(name="approve")
@click.argument("action_id")
@click.option("--key", "second_key", required=True,
              help="The second distributor's key (not the one that signed the action).")
@json_option
def action_approve(action_id: str, second_key: str, as_json: bool) -> None:
    """Add a second distributor's signature to an action (the two-person rule: endpoints count
    distinct trusted keys against the site policy's action threshold).

    \b
    Examples:
      airseal action approve 3f2a9c --key dist-b
      airseal distributor set-threshold 2    # require two distinct keys on every action
    """
    record = open_appliance().approve_action(action_id, second_key)
    if as_json:
        emit_json({"schemaVersion": 1, **record.summary()})
    else:
        click.echo(f"Approved {record.id} v{record.version} with key {second_key}")


def _print(record: ActionRecord, as_json: bool, verb: str) -> None:
    if as_json:
        emit_json(record.summary())
    else:
        click.echo(
            f"{verb} action {record.id} v{record.version}: {shown_with_warning(record.name)} "
            f"({record.os}, {record.mode}), valid until "
            f"{normalise_timestamp(str(record.valid_until))}"
        )
