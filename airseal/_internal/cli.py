"""What both command lines share: the exit codes, the error ladder of ``main``, ``--json``.

Errors are caught once, here: an Airseal error prints its diagnostics (no traceback) and its
class picks the exit code; click's own usage errors keep click's code (2); an I/O error names
the file; anything else is a bug, logged with its traceback and reported as such.

| code | meaning |
|---|---|
| 0 | success |
| 1 | a verification failed (``airseal``) or the import was refused (``airseal-agent``) |
| 2 | usage: bad arguments (click's and :class:`airseal.errors.UsageError`) |
| 3 | operational: home, state, key, password, token, lock or I/O; nothing was verified |
| 4 | ``airseal-agent`` only: the media was imported but at least one action failed |
| 70 | internal error, a bug (``EX_SOFTWARE``) |
| 130 | interrupted |
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from airseal.errors import AirsealError, UsageError

OK = 0
FAILED = 1
"""A verification failed or an import was refused: nothing may be used."""
USAGE = 2
OPERATIONAL = 3
ACTIONS_FAILED = 4
INTERNAL = 70
INTERRUPTED = 130

ExitCodes = Sequence[tuple[type[BaseException], int]]
"""A front end's own error families and their codes, checked in order before the shared ones."""

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def exit_code_for(error: AirsealError, exit_codes: ExitCodes = ()) -> int:
    """The first matching family in ``exit_codes``, else usage (2), else operational (3)."""
    for family, code in exit_codes:
        if isinstance(error, family):
            return code
    if isinstance(error, UsageError):
        return USAGE
    return OPERATIONAL


def run_main(
    command: click.Command,
    argv: Sequence[str] | None,
    *,
    prog_name: str,
    exit_codes: ExitCodes = (),
) -> int:
    """Run ``command`` and turn whatever ends it into an exit code (see the module docstring)."""
    try:
        result = command.main(
            args=list(argv) if argv is not None else None,
            prog_name=prog_name,
            standalone_mode=False,
        )
    except AirsealError as error:
        click.echo(error.diagnostics(), err=True)
        return exit_code_for(error, exit_codes)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return INTERRUPTED
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except KeyboardInterrupt:
        return INTERRUPTED
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        click.echo(f"{prog_name}: {where}{error.strerror or error}", err=True)
        return OPERATIONAL
    except Exception:
        import logging  # only for a bug's traceback: not worth its import time on every start

        logging.getLogger(prog_name).exception("internal error")
        click.echo(
            f"{prog_name}: internal error (a bug): please report the traceback above", err=True
        )
        return INTERNAL
    return result if isinstance(result, int) else OK
