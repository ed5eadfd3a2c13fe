"""`airseal file ...` (intake, integrity check 1 of 3) and `airseal config ...` (site policy)."""

from __future__ import annotations

from pathlib import Path

import click

from airseal._internal.cli import json_option
from airseal.appliance.cli import cli
from airseal.appliance.cli.session import open_appliance
from airseal.appliance.cli.ui import byte_progress, emit_json, file_size
from airseal.appliance.service.records import VendorSignature


@cli.group(name="file")
def file_group() -> None:
    """Distribution files in the appliance store (verified on the way in)."""


@file_group.command(name="add")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--signature",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Vendor's cosign detached signature (needs --key).",
)
@click.option(
    "--bundle",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Vendor's Sigstore bundle (with --key, or keyless identity options).",
)
@click.option("--key", "key_arg", help="Vendor public key: PEM file or key name in the home.")
@click.option("--certificate-identity", help="Keyless: expected signer identity.")
@click.option(
    "--certificate-identity-regexp",
    help="Keyless: regular expression for the signer identity (unanchored, as cosign).",
)
@click.option("--certificate-oidc-issuer", help="Keyless: expected OIDC issuer.")
@click.option(
    "--certificate-oidc-issuer-regexp",
    help="Keyless: regular expression for the OIDC issuer (unanchored, as cosign).",
)
@click.option(
    "--trusted-root",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Keyless: trusted_root.json (default: public-good, shipped).",
)
@click.option("--name", help="Name for the payload on media (default: the file's name).")
@json_option
def file_add(
    path: Path,
    signature: Path | None,
    bundle: Path | None,
    key_arg: str | None,
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

    \b
    Examples:
      airseal file add app.tar.gz --signature app.tar.gz.sig --key vendor.pub
      airseal file add app.tar.gz --bundle app.tar.gz.sigstore.json \\
          --certificate-identity-regexp '^https://github\\.com/acme/app/' \\
          --certificate-oidc-issuer https://token.actions.githubusercontent.com
    """
    appliance = open_appliance()
    key = None
    if key_arg:
        key, _ = appliance.verification_key(key_arg)
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
    with byte_progress(f"Adding {path.name}", file_size(path)) as advance:
        stored = appliance.add_file(path, vendor, name=name, on_progress=advance)
    if as_json:
        emit_json(stored.to_dict())
        return
    check = f"verified ({stored.method}, {stored.signer})" if stored.verified else "NOT verified"
    click.echo(f"Added {stored.name}  sha256 {stored.sha256}  {stored.size} bytes  {check}")


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
    for s in stored:
        mark = s.method if s.verified else "unverified"
        click.echo(f"{s.sha256[:16]}  {s.size:>12}  {mark:<16}  {s.name}")


@cli.group(name="config")
def config_group() -> None:
    """Site policy settings."""


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
