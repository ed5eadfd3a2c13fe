"""`airseal trustroot ...`: mirror the public Sigstore trust root and bring it into the air gap."""

from __future__ import annotations

from pathlib import Path

import click

from airseal._internal.cli import examples, json_option
from airseal.appliance.cli import cli
from airseal.appliance.cli.session import appliance_without_home, open_appliance
from airseal.appliance.cli.ui import emit_json

PUBLIC_GOOD_URL = "https://tuf-repo-cdn.sigstore.dev"  # sigstore-python's DEFAULT_TUF_URL


@examples(
    "airseal trustroot fetch --to /media/usb/sigstore-root      # on a connected machine",
    "airseal trustroot import /media/usb/sigstore-root          # in the air gap",
    "airseal trustroot status --json",
)
@cli.group(name="trustroot")
def trustroot() -> None:
    """The Sigstore trust root keyless verification uses: mirror, import, status."""


@trustroot.command(name="fetch", short_help="Connected machine: copy the TUF repository.")
@click.option(
    "--to", "to", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="New (or empty) folder to copy the repository into.",
)
@click.option(
    "--url", default=PUBLIC_GOOD_URL, show_default=True,
    help="TUF repository to copy (metadata at URL/, targets at URL/targets/).",
)
@click.option(
    "--root", "pinned_root", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Root to start from (default: the one packaged with sigstore-python).",
)
@json_option
def trustroot_fetch(to: Path, url: str, pinned_root: Path | None, as_json: bool) -> None:
    """Copy the whole TUF repository (every root, timestamp, snapshot, targets, delegations,
    target files) into a folder laid out as the CDN serves it, verifying it on the way.

    The folder appears complete or not at all. Carry it into the air gap and run
    `airseal trustroot import DIR` there.

    \b
    Examples:
      airseal trustroot fetch --to /media/usb/sigstore-root --json
      airseal trustroot fetch --to ./root-copy --url https://tuf-repo-cdn.sigstage.dev \\
          --root staging-root.json
    """

    def shown(path: str, size: int) -> None:
        if not as_json:
            click.echo(f"  fetched {path} ({size} bytes)", err=True)

    fetched = appliance_without_home().fetch_trust_root(
        url, to, pinned_root=pinned_root, on_file=shown
    )
    if as_json:
        emit_json(fetched.to_json())
    else:
        click.echo("\n".join(fetched.describe()))


@trustroot.command(name="import", short_help="Air gap: verify a copy and use its root.")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--root", "pinned_root", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Root to start the walk from (default: the newest imported root, else the one "
    "packaged with sigstore-python).",
)
@json_option
def trustroot_import(directory: Path, pinned_root: Path | None, as_json: bool) -> None:
    """Verify a copy made by `trustroot fetch` with python-tuf, at the real time, and make its
    trusted_root.json the one keyless verification uses.

    Expired, tampered, inconsistent (mixed versions) or rolled-back copies are refused, naming
    the role. The upstream metadata is kept in the home for auditors; the import is audited.

    \b
    Examples:
      airseal trustroot import /media/usb/sigstore-root
      airseal trustroot import /media/usb/sigstore-root --root 15.root.json --json
    """
    imported = open_appliance().import_trust_root(directory, pinned_root=pinned_root)
    if as_json:
        emit_json(imported.to_json())
    else:
        click.echo("\n".join(imported.describe()))


@trustroot.command(name="status", short_help="The root in use, its versions and age.")
@json_option
def trustroot_status(as_json: bool) -> None:
    """Which Sigstore trust root keyless verification uses, its versions and its age.

    \b
    Examples:
      airseal trustroot status
      airseal trustroot status --json
    """
    status = appliance_without_home().trust_root_status()
    if as_json:
        emit_json(status.to_json())
    else:
        click.echo("\n".join(status.describe()))
