"""`airseal export` (appliance) and `airseal media check` (the courier's check: no keys)."""

from __future__ import annotations

from pathlib import Path

import click

from airseal._internal.cli import json_option
from airseal.appliance.cli import cli, exit_codes
from airseal.appliance.cli.session import appliance_without_home, open_appliance
from airseal.appliance.cli.ui import emit_json, stderr
from airseal.appliance.service.records import FAT32_MAX_FILE_SIZE


@cli.command(name="export")
@click.option("--to", "target", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Mount point (or folder) of the media.")
@click.option("--action", "action_ids", multiple=True,
              help="Action id to export (repeatable; default: every current action).")
@click.option("--valid-days", type=click.IntRange(1, 3650),
              help="Days the export stays valid on endpoints (default: setting export.valid-days).")
@click.option("--key", "key_name", required=True, help="Key that signs the export statement.")
@click.option("--allow-unknown-capacity", is_flag=True,
              help="Write even when the free space of the media cannot be determined.")
@click.option("--split-threshold", type=click.IntRange(1024, FAT32_MAX_FILE_SIZE),
              default=None, hidden=True,
              help="Split payloads above this many bytes (default: 4 GiB - 1 on FAT32 or an "
                   "unidentified filesystem, no split on exFAT and others).")
@json_option
def export_command(target: Path, action_ids: tuple[str, ...], valid_days: int | None,
                   key_name: str, allow_unknown_capacity: bool, split_threshold: int | None,
                   as_json: bool) -> None:
    """Write signed actions to media atomically, read every byte back, then sign the export.

    A crash or a pulled stick leaves the previous export, or media that `airseal media check`
    reports as incomplete.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    appliance = open_appliance()
    with Progress(TextColumn("[bold]Export"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=stderr, transient=True,
                  disable=as_json or not stderr.is_terminal) as progress:
        task = progress.add_task("export", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        summary = appliance.export(
            target, key_name, action_ids=list(action_ids) or None, valid_days=valid_days,
            split_threshold=split_threshold, allow_unknown_capacity=allow_unknown_capacity,
            on_progress=advance,
        )
    if as_json:
        emit_json(summary.to_dict())
        return
    click.echo(f"Exported {len(summary.actions)} action(s) to {target}/airseal "
               f"(export {summary.export_id}, sequence {summary.sequence})")
    click.echo(f"  {summary.files} files, {summary.bytes_written} bytes, read back OK, "
               f"valid until {summary.expires:%Y-%m-%d %H:%M} UTC")


@cli.group(name="media")
def media_group() -> None:
    """USB media: the courier's check."""


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
