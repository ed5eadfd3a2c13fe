"""The `airseal` command line: thin over `appliance` services.

Errors are caught once, in :func:`main` (:func:`airseal._internal.cli.run_main`, shared with
`airseal-agent`): their user-facing text goes to stderr (no traceback) and their class picks the
exit code (:mod:`airseal.appliance.cli.exit_codes`).

Subcommands live in their own modules and are imported only when named (:class:`LazyGroup`,
click's documented pattern): `airseal audit verify` never loads the PKCS#11 or YubiKey stacks,
and `airseal --version` answers without loading the signing core.
"""

from __future__ import annotations

import importlib
import sys

import click

from airseal._internal.cli import examples, run_main, verbose_option
from airseal._internal.version import VERSION
from airseal.appliance.cli import exit_codes

# command name -> the module that defines it (and registers it on `cli` when imported)
_COMMAND_MODULES: dict[str, str] = {
    "init": "airseal.appliance.cli.commands",
    "audit": "airseal.appliance.cli.commands",
    "key": "airseal.appliance.cli.commands",
    "sign-blob": "airseal.appliance.cli.commands",
    "verify-blob": "airseal.appliance.cli.commands",
    "verify-blob-attestation": "airseal.appliance.cli.commands",
    "file": "airseal.appliance.cli.files",
    "config": "airseal.appliance.cli.files",
    "action": "airseal.appliance.cli.actions",
    "export": "airseal.appliance.cli.export",
    "media": "airseal.appliance.cli.export",
    "receipts": "airseal.appliance.cli.receipts",
    "agents": "airseal.appliance.cli.agents",
    "token": "airseal.appliance.cli.token",
    "piv": "airseal.appliance.cli.piv",
    "trustroot": "airseal.appliance.cli.trustroot",
    "site": "airseal.appliance.cli.site",
    "distributor": "airseal.appliance.cli.site",
    "log": "airseal.appliance.cli.log",
    "evidence": "airseal.appliance.cli.evidence",
    "witness": "airseal.appliance.cli.witness",
    "backup": "airseal.appliance.cli.backup",
    "restore": "airseal.appliance.cli.backup",
    # The TUI is a front end beside this CLI: found by name like every subcommand, so that the
    # appliance never imports it (import contract) and `airseal <command>` never loads Textual.
    "tui": "airseal.tui.command",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported the first time they are looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(_COMMAND_MODULES) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMAND_MODULES:
            module = importlib.import_module(_COMMAND_MODULES[cmd_name])
            if cmd_name not in self.commands:  # a group defined without `@cli.group`
                self.add_command(getattr(module, cmd_name))
        return super().get_command(ctx, cmd_name)


@examples(
    'airseal init',
    'airseal key generate ops',
    'airseal --help',
    'airseal -v export --to /media/usb --key ops',
)
@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(VERSION, prog_name="airseal")
@verbose_option
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Airseal: sign files and actions offline and carry them to air-gapped endpoints.

    With no command, opens the terminal UI on the appliance home ($AIRSEAL_HOME) when run on a
    terminal; otherwise prints this help and exits 2.
    """
    if ctx.invoked_subcommand is not None:
        return
    if _on_a_terminal():
        tui = cli.get_command(ctx, "tui")
        assert tui is not None
        ctx.exit(ctx.invoke(tui) or 0)
    click.echo(ctx.get_help())
    click.echo(
        "\nairseal: not on a terminal, so the terminal UI was not started; name a command "
        "(or run `airseal tui` on a terminal).",
        err=True,
    )
    ctx.exit(exit_codes.USAGE)


def _on_a_terminal() -> bool:
    """The TUI needs a terminal on both ends: never write escape codes into a pipe or a file."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def register_all() -> None:
    """Import every subcommand (for tools that walk the whole command tree)."""
    for name in _COMMAND_MODULES:
        cli.get_command(click.Context(cli), name)


# Import names of the `appliance` extra's packages: an endpoint installs airseal without it.
APPLIANCE_EXTRA_MODULES = ("sqlite_utils", "platformdirs", "rich", "textual", "pkcs11", "ykman")


def main(argv: list[str] | None = None) -> int:
    from importlib.util import find_spec

    missing = [name for name in APPLIANCE_EXTRA_MODULES if find_spec(name) is None]
    if missing:
        click.echo(
            f"airseal: the appliance is not installed here ({', '.join(missing)} missing): this "
            "is an agent-only install (use airseal-agent), or install the appliance with "
            "pip install 'airseal[appliance]' or the kit's install without --agent-only",
            err=True,
        )
        return exit_codes.OPERATIONAL
    return run_main(cli, argv, prog_name="airseal", exit_codes=exit_codes.ERROR_CODES)

if __name__ == "__main__":
    sys.exit(main())
