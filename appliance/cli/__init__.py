"""The `airseal` command line: thin over `appliance` services.

Errors are caught once, in :func:`main`: their user-facing text goes to stderr (no traceback) and
their class picks the exit code (:mod:`appliance.cli.exit_codes`).
"""

from __future__ import annotations

import logging
import sys

import click

from appliance.cli import exit_codes
from trustroot.errors import TrustrootError


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="airseal", prog_name="airseal")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Airseal: sign files and actions offline and carry them to air-gapped endpoints.

    With no command, opens the terminal UI on the appliance home ($AIRSEAL_HOME).
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def _register() -> None:
    from appliance.cli import commands  # noqa: F401  (registers subcommands on `cli`)


def main(argv: list[str] | None = None) -> int:
    _register()
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
