"""`airseal export` (appliance), `airseal media check` (the courier's check: no keys) and
`airseal media repair` (PAR2 repair data written with the export: no keys)."""

from __future__ import annotations

from pathlib import Path

import click

from airseal._internal.cli import examples, json_option
from airseal._internal.times import normalise_timestamp, utc_text
from airseal.appliance.cli import cli, exit_codes
from airseal.appliance.cli.options import rekor_options, signing_key_option
from airseal.appliance.cli.session import appliance_without_home, open_appliance
from airseal.appliance.cli.ui import emit_json, export_progress, table_lines
from airseal.appliance.service.records import FAT32_MAX_FILE_SIZE


@examples(
    'airseal export --to /media/usb --key ops',
    'airseal export --to /media/usb --key ops --action 3f2a9c01d4e5 --valid-days 7',
    'airseal export list',
)
@cli.group(name="export", invoke_without_command=True)
@click.option("--to", "target",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Mount point (or folder) of the media.  [required]")
@click.option("--action", "action_ids", multiple=True,
              help="Action id to export (repeatable; default: every current action).")
@click.option("--valid-days", type=click.IntRange(1, 3650),
              help="Days the export stays valid on endpoints (default: setting export.valid-days).")
@signing_key_option(required=False)
@click.option("--allow-unknown-capacity", is_flag=True,
              help="Write even when the free space of the media cannot be determined.")
@click.option("--split-threshold", type=click.IntRange(1024, FAT32_MAX_FILE_SIZE),
              default=None, hidden=True,
              help="Split payloads above this many bytes (default: 4 GiB - 1 on FAT32 or an "
                   "unidentified filesystem, no split on exFAT and others).")
@rekor_options
@json_option
@click.pass_context
def export_command(ctx: click.Context, target: Path | None, action_ids: tuple[str, ...],
                   valid_days: int | None, key_name: str | None, allow_unknown_capacity: bool,
                   split_threshold: int | None, rekor_url: str | None, rekor_key: str | None,
                   signing_config: Path | None, as_json: bool) -> None:
    """Write signed actions to media atomically, read every byte back, then sign the export
    (--to and --key are required); `airseal export list` shows the exports made so far.

    A crash or a pulled stick leaves the previous export, or media that `airseal media check`
    reports as incomplete. An export that fails or is cancelled is in the audit log and in
    `airseal export list`, with the sequence number it used up.
    """
    if ctx.invoked_subcommand is not None:
        if target or action_ids or valid_days or key_name or as_json or rekor_url or rekor_key \
                or signing_config:
            raise click.UsageError(f"export options go without `export {ctx.invoked_subcommand}`")
        return
    if target is None or key_name is None:
        missing = " and ".join(f for f, v in (("--to", target), ("--key", key_name)) if v is None)
        raise click.UsageError(f"Missing option {missing} (or a subcommand: `export list`).")
    appliance = open_appliance()
    with appliance.using_rekor(rekor_url, rekor_key, signing_config), \
            export_progress(enabled=not as_json) as phases:
        summary = appliance.export(
            target, key_name, action_ids=list(action_ids) or None, valid_days=valid_days,
            split_threshold=split_threshold, allow_unknown_capacity=allow_unknown_capacity,
            on_phases=phases,
        )
    if as_json:
        emit_json(summary.to_dict())
        return
    click.echo(f"Exported {len(summary.actions)} action(s) to {target}/airseal "
               f"(export {summary.export_id}, sequence {summary.sequence})")
    click.echo(f"  {summary.files} listed files, {summary.listed_bytes} bytes (what "
               f"`airseal media check` counts) + the signed export statement, "
               f"{summary.statement_bytes} bytes; read back OK")
    if summary.repair_bytes:
        click.echo(f"  repair data: {summary.repair_bytes} bytes in {target}/airseal-repair "
                   f"(`airseal media repair` or Debian's par2 restore damaged files)")
    click.echo(f"  valid until {utc_text(summary.expires)}")


EXPORT_COLUMNS = ("SEQ", "EXPORT", "CREATED", "ACTIONS", "RESULT", "DESTINATION")


@examples(
    'airseal export list',
    'airseal export list --json',
)
@export_command.command(name="list")
@json_option
def export_list(as_json: bool) -> None:
    """The exports made here, newest first: sequence, id, time, actions, destination, result
    (written, failed or cancelled; a failed export used up its sequence number)."""
    records = open_appliance().list_exports()
    if as_json:
        emit_json([r.to_dict() for r in records])
        return
    if not records:
        click.echo("No exports yet. Make one with `airseal export --to MOUNT --key NAME`.")
        return
    rows = [
        (
            "-" if r.sequence is None else str(r.sequence),
            (r.export_id or "-")[:12],
            normalise_timestamp(r.created),
            ", ".join(f"{i} v{v}" for i, v in r.actions) or "-",
            r.result if r.error is None else f"{r.result}: {r.error}",
            r.target,
        )
        for r in records
    ]
    click.echo("\n".join(table_lines(EXPORT_COLUMNS, rows)))


@examples(
    'airseal media check /media/usb',
    'airseal media repair /media/usb',
)
@cli.group(name="media")
def media_group() -> None:
    """USB media: the courier's check and repair."""


@examples(
    'airseal media check /media/usb',
    'airseal media check /media/usb --json',
)
@media_group.command(name="check")
@click.argument("mount", type=click.Path(exists=True, file_okay=False, path_type=Path))
@json_option
@click.pass_context
def media_check(ctx: click.Context, mount: Path, as_json: bool) -> None:
    """Is the media complete and undamaged? Needs no keys (authenticity is the agent's job).

    Exit 0 when complete; 1 with the list of missing, damaged, extra or unsafe files.
    """
    check = appliance_without_home().check_media(mount)
    if as_json:
        emit_json(check.to_json())
    else:
        click.echo("\n".join(check.describe()), err=not check.ok)
    if not check.ok:
        ctx.exit(exit_codes.VERIFICATION_FAILED)


@examples(
    'airseal media repair /media/usb',
    'airseal media repair /media/usb --json',
)
@media_group.command(name="repair")
@click.argument("mount", type=click.Path(exists=True, file_okay=False, path_type=Path))
@json_option
@click.pass_context
def media_repair(ctx: click.Context, mount: Path, as_json: bool) -> None:
    """Repair damaged or missing files from the PAR2 repair data the export wrote
    (airseal-repair/), then run the courier's check. Needs no keys; writes only inside MOUNT.

    Exit 0 when the media is complete afterwards; 1 when the damage is beyond the repair data's
    limit (it says how much is short) or the check still fails; 3 when there is no repair data
    or par2 is not installed.
    """
    repair = appliance_without_home().repair_media(mount)
    if as_json:
        emit_json(repair.to_json())
    else:
        click.echo("\n".join(repair.describe()), err=not repair.ok)
    if not repair.ok:
        ctx.exit(exit_codes.VERIFICATION_FAILED)
