"""The `airseal` command line: thin over `appliance` services.

Errors are caught once, in :func:`main`: their user-facing text goes to stderr (no traceback) and
their class picks the exit code (:mod:`appliance.cli.exit_codes`).

Subcommands live in their own modules and are imported only when named (:class:`LazyGroup`,
click's documented pattern): `airseal audit verify` never loads the PKCS#11 or YubiKey stacks,
and `airseal --version` answers without loading the signing core.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from appliance.cli import exit_codes
from trustroot.errors import TrustrootError

# command name -> the module that defines it (and registers it on `cli` when imported)
_COMMAND_MODULES: dict[str, str] = {
    "init": "appliance.cli.commands",
    "audit": "appliance.cli.commands",
    "key": "appliance.cli.commands",
    "sign-blob": "appliance.cli.commands",
    "verify-blob": "appliance.cli.commands",
    "file": "appliance.cli.files",
    "config": "appliance.cli.files",
    "action": "appliance.cli.actions",
    "export": "appliance.cli.export",
    "media": "appliance.cli.export",
    "receipts": "appliance.cli.receipts",
    "token": "appliance.cli.token",
    "piv": "appliance.cli.piv",
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


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="airseal", prog_name="airseal")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Airseal: sign files and actions offline and carry them to air-gapped endpoints.

    With no command, opens the terminal UI on the appliance home ($AIRSEAL_HOME).
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def register_all() -> None:
    """Import every subcommand (for tools that walk the whole command tree)."""
    for name in _COMMAND_MODULES:
        cli.get_command(click.Context(cli), name)


def main(argv: list[str] | None = None) -> int:
    try:
        result = cli.main(args=argv, prog_name="airseal", standalone_mode=False)
    except TrustrootError as error:
        click.echo(error.diagnostics(), err=True)
        return exit_codes.for_error(error)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return exit_codes.INTERRUPTED
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except KeyboardInterrupt:
        return exit_codes.INTERRUPTED
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        click.echo(f"{where}{error.strerror or error}", err=True)
        return exit_codes.OPERATIONAL
    except Exception:
        logging.getLogger("airseal").exception("internal error")
        click.echo("airseal: internal error (a bug): please report the traceback above", err=True)
        return exit_codes.INTERNAL
    return result if isinstance(result, int) else exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
