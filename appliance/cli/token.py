"""`airseal token`: what a PKCS#11 module sees (slots, tokens, serials, PIN state, free memory).

Thin over the service's :meth:`~airseal.appliance.service.Appliance.list_tokens`, whose
:class:`~airseal.appliance.service.TokenTable` words the table for the TUI too; errors reach the
operator through the CLI's `main`.
Register with ``cli.add_command(token)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import click
from rich.console import Console
from rich.table import Table

from airseal._internal.cli import emit_json, examples, json_option
from airseal.appliance.cli.options import module_option
from airseal.appliance.cli.session import appliance_without_home
from airseal.appliance.service import TOKEN_COLUMNS, TokenTable

PIN_ENV = "AIRSEAL_PIN"


def pin_from_env_or_prompt(what: str = "the token") -> Callable[[], str]:
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


def render_tokens(tokens: TokenTable) -> Table:
    table = Table(title=tokens.title, title_justify="left")
    right = {"Slot", "Free public", "Free private"}
    for column in TOKEN_COLUMNS:
        table.add_column(
            column,
            justify="right" if column in right else "left",
            no_wrap=column in {"Label", "Serial"},
        )
    for row in tokens.rows():
        table.add_row(*row)
    return table


@examples(
    'airseal token list --module /usr/lib/softhsm/libsofthsm2.so',
)
@click.group("token")
def token() -> None:
    """PKCS#11 tokens and HSMs (SoftHSM2, YubiKey via libykcs11, OpenSC cards, vendor HSMs)."""


@examples(
    'airseal token list --module /usr/lib/softhsm/libsofthsm2.so',
    'AIRSEAL_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so airseal token list --json',
)
@token.command("list")
@module_option(required=True)
@json_option
def list_command(module: str, as_json: bool) -> None:
    """List the slots and tokens a PKCS#11 module sees. Needs no PIN."""
    tokens = appliance_without_home().list_tokens(module)
    if as_json:
        emit_json(tokens.to_json())
        return
    if not tokens.tokens:
        click.echo(tokens.empty_text)
        return
    Console(width=max(120, Console().width)).print(render_tokens(tokens))
