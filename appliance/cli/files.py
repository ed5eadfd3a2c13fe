"""`airseal file ...` (intake, integrity check 1 of 3) and `airseal config ...` (site policy)."""

from __future__ import annotations

from pathlib import Path

import click

from airseal._internal.cli import examples, json_option
from airseal._internal.times import normalise_timestamp
from airseal.appliance.cli import cli
from airseal.appliance.cli.options import vendor_signature_options
from airseal.appliance.cli.session import open_appliance
from airseal.appliance.cli.ui import byte_progress, emit_json, file_size, table_lines
from airseal.appliance.service.records import VendorSignature


@examples(
    'airseal file add tool.tar.gz --key vendor.pub --signature tool.sig',
    'airseal file list',
)
@cli.group(name="file")
def file_group() -> None:
    """Distribution files in the appliance store (verified on the way in)."""


@examples(
    'airseal file add tool.tar.gz',
    'airseal file add tool.tar.gz --key vendor.pub --signature tool.sig',
    'airseal file add tool.tar.gz --bundle tool.sigstore.json --name tool-1.2.tar.gz',
    'airseal file add app.tar.gz --bundle app.tar.gz.sigstore.json \\',
    "    --certificate-identity-regexp '^https://github\\.com/acme/app/' \\",
    '    --certificate-oidc-issuer https://token.actions.githubusercontent.com',
)
@file_group.command(name="add")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@vendor_signature_options
@click.option("--name", help="Name for the payload on media (default: the file's name).")
@json_option
def file_add(
    path: Path,
    signature: Path | None,
    bundle: Path | None,
    key_arg: str | None,
    module: str | None,
    certificate_identity: str | None,
    certificate_identity_regexp: str | None,
    certificate_oidc_issuer: str | None,
    certificate_oidc_issuer_regexp: str | None,
    trusted_root: Path | None,
    name: str | None,
    as_json: bool,
) -> None:
    """Verify PATH's vendor signature (when given) and copy it into the store.

    With the setting intake.require-signature=true, files without one are refused.
    A refused file leaves nothing in the store. The vendor's signature (with its public key,
    or the trusted root used for a keyless bundle) is kept and travels on the media with
    every action that uses the file, so endpoints check it again.
    """
    appliance = open_appliance()
    key = None
    if key_arg:
        key, _ = appliance.verification_key(key_arg, module)
    vendor = VendorSignature(
        signature=signature,
        bundle=bundle,
        key=key,
        identity=certificate_identity,
        issuer=certificate_oidc_issuer,
        trusted_root=trusted_root,
        identity_regexp=certificate_identity_regexp,
        issuer_regexp=certificate_oidc_issuer_regexp,
    )
    root = None
    if vendor.method == "keyless":
        root = appliance.keyless_trusted_root(trusted_root)
        click.echo(root.describe(), err=True)
    with byte_progress(f"copy and hash {path.name}", file_size(path)) as advance:
        stored = appliance.add_file(path, vendor, name=name, on_progress=advance)
    if as_json:
        emit_json(stored.to_dict() | ({"trustedRoot": root.to_json()} if root else {}))
        return
    check = f"verified ({stored.method}, {stored.signer})" if stored.verified else "NOT verified"
    click.echo(f"Added {stored.name}  sha256 {stored.sha256}  {stored.size} bytes  {check}")


@examples(
    'airseal file list',
    'airseal file list --json',
)
@file_group.command(name="list")
@json_option
def file_list(as_json: bool) -> None:
    """Files in the store, newest first."""
    stored = open_appliance().list_files()
    if as_json:
        emit_json([s.to_dict() for s in stored])
        return
    if not stored:
        click.echo("The store is empty. Add a file with `airseal file add PATH`.")
        return
    click.echo("\n".join(table_lines(
        ("SHA256", "BYTES", "INTAKE", "ADDED", "NAME"),
        [(s.sha256[:16], str(s.size), s.method if s.verified else "unverified",
          normalise_timestamp(str(s.added)), s.name) for s in stored],
    )))


@examples(
    'airseal config get',
    'airseal config set intake.require-signature true',
)
@cli.group(name="config")
def config_group() -> None:
    """Site policy settings."""


@examples(
    'airseal config get',
    'airseal config get export.valid-days --json',
)
@config_group.command(name="get")
@click.argument("name", required=False)
@json_option
def config_get(name: str | None, as_json: bool) -> None:
    """Show one setting, or all of them."""
    appliance = open_appliance()
    values = appliance.settings(name)
    if as_json:
        emit_json(values)
        return
    for n, value in values.items():
        click.echo(f"{n} = {value}    # {appliance.setting_description(n)}")


@examples(
    'airseal config set intake.require-signature true',
    'airseal config set export.valid-days 30',
)
@config_group.command(name="set")
@click.argument("name")
@click.argument("value")
def config_set(name: str, value: str) -> None:
    """Change a setting (audited).

    \b
    Examples:
      airseal config set intake.require-signature true
      airseal config set verify.require-tlog true
    """
    open_appliance().set_setting(name, value)
    click.echo(f"{name} = {value}")
