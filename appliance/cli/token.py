"""`airseal token`: what a PKCS#11 module sees (slots, tokens, serials, PIN state, free memory).

Thin over :mod:`airseal.appliance.signers.pkcs11`; errors reach the operator through the CLI's
`main`.
Register with ``cli.add_command(token)``.
"""

from __future__ import annotations

import json
import os

import click
from rich.console import Console
from rich.table import Table

from airseal.appliance.signers.pkcs11 import PinProvider, TokenInfo, list_tokens

PIN_ENV = "AIRSEAL_PIN"
MODULE_ENV = "AIRSEAL_PKCS11_MODULE"


def pin_from_env_or_prompt(what: str = "the token") -> PinProvider:
    """A ``pin_provider`` for the CLI: ``AIRSEAL_PIN`` if set, else a hidden prompt.

    Called only when the token needs the PIN; the PIN is never echoed, logged or passed in argv.
    """

    def provide() -> str:
        pin = os.environ.get(PIN_ENV)
        if pin:
            return pin
        value: str = click.prompt(f"PIN for {what}", hide_input=True, err=True)
        return value

    return provide


def render_tokens(infos: list[TokenInfo], module_path: str) -> Table:
    table = Table(title=f"Tokens in {module_path}", title_justify="left")
    table.add_column("Slot", justify="right")
    table.add_column("Label", no_wrap=True)
    table.add_column("Serial", no_wrap=True)
    table.add_column("Manufacturer")
    table.add_column("Model")
    table.add_column("Free public", justify="right")
    table.add_column("Free private", justify="right")
    table.add_column("State")
    for info in infos:
        table.add_row(
            str(info.slot_id),
            info.label or "-",
            info.serial or "-",
            info.manufacturer,
            info.model,
            info.public_memory,
            info.private_memory,
            info.state,
        )
    return table


@click.group("token")
def token() -> None:
    """PKCS#11 tokens and HSMs (SoftHSM2, YubiKey via libykcs11, OpenSC cards, vendor HSMs)."""


@token.command("list")
@click.option(
    "--module",
    "module_path",
    required=True,
    envvar=MODULE_ENV,
    metavar="PATH",
    help=f"PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so (or set {MODULE_ENV}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(module_path: str, as_json: bool) -> None:
    """List the slots and tokens a PKCS#11 module sees. Needs no PIN."""
    infos = list_tokens(module_path)
    if as_json:
        click.echo(json.dumps([info.to_dict() for info in infos], indent=2))
        return
    if not infos:
        click.echo(f"No token is present in {module_path}.")
        return
    Console(width=max(120, Console().width)).print(render_tokens(infos, module_path))
