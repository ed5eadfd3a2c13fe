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

With ``--json`` every document a command prints goes through :func:`emit_json` (camelCase keys,
a top-level ``schemaVersion``, lists as ``{"schemaVersion": 1, "items": [...]}``, one time
format), and a failure prints the error object of :func:`error_document` on stdout, so a script
always reads one JSON document (docs/json.md is the reference).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from airseal.errors import AirsealError, UsageError

# json, re and datetime are imported where a JSON document is made: `airseal-agent` starts on
# every USB insertion and `--version` should load no more than click.

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

SCHEMA_VERSION = 1
"""The version of every JSON document the CLIs print (docs/json.md); bumped on a breaking change."""

json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document on stdout (docs/json.md), also on failure.",
)

_Command = TypeVar("_Command", bound=click.Command)


def examples(*lines: str) -> Callable[[_Command], _Command]:
    """Put an ``Examples:`` section at the end of a command's ``--help`` (the lines are kept as
    written: click's ``\\b`` marker stops it rewrapping them). Place it above ``@x.command``."""

    def apply(command: _Command) -> _Command:
        text = "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
        command.epilog = f"{command.epilog}\n\n{text}" if command.epilog else text
        return command

    return apply


def _log_info(message: str, *args: object) -> None:
    """Log only when -v set logging up: importing logging on every start is not worth its time."""
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger("airseal").info(message, *args)


def _verbose(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if value:
        import logging

        logging.basicConfig(
            stream=sys.stderr,
            level=logging.DEBUG if value > 1 else logging.INFO,
            format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        )
    return value


verbose_option = click.option(
    "-v",
    "--verbose",
    count=True,
    expose_value=False,
    is_eager=True,
    callback=_verbose,
    help="Diagnostics on stderr (-vv for more); never secrets.",
)


def table_lines(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A plain text table with a header row, columns as wide as their widest cell (the last
    column is not padded): what every list command prints for people."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = []
    for row in (header, *rows):
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)]
        cells[-1] = str(row[-1])
        lines.append("  ".join(cells).rstrip())
    return lines


# -- the JSON contract ---------------------------------------------------------------------------

_SEPARATED = r"^[a-z][a-z0-9]*(?:[_.\-][a-z0-9]+)+$"


@functools.lru_cache(maxsize=1024)
def camel_key(key: str) -> str:
    """``payload_sha256``, ``action.valid-days`` -> ``payloadSha256``, ``actionValidDays``;
    keys that are already camelCase (or are not identifiers) are kept."""
    import re

    if not re.match(_SEPARATED, key):
        return key
    first, *rest = re.split(r"[_.\-]", key)
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


DATA_KEYED = frozenset({"outcomes", "delegations"})
"""Objects whose keys are data, not field names: their keys are kept as they are
(``{"not-run": 2}`` counts per outcome, spelled as everywhere else; ``{"registry.npmjs.org": 8}``
TUF role versions)."""


def json_ready(value: Any, *, keep_keys: bool = False) -> Any:
    """Keys camelCased, datetimes and timestamp strings in the one format, recursively."""
    from datetime import datetime

    from airseal._internal.times import normalise_timestamp, utc_text

    def ready(value: Any, keep_keys: bool) -> Any:
        if isinstance(value, dict):
            return {
                (str(k) if keep_keys else camel_key(str(k))): ready(v, str(k) in DATA_KEYED)
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [ready(item, False) for item in value]
        if isinstance(value, datetime):
            return utc_text(value)
        if isinstance(value, str):
            return normalise_timestamp(value)
        return value

    return ready(value, keep_keys)


def json_document(data: Any) -> dict[str, Any]:
    """The document a command prints: an object with ``schemaVersion`` first; a list becomes
    ``items``."""
    body = json_ready(data)
    if not isinstance(body, dict):
        body = {"items": body}
    return {"schemaVersion": SCHEMA_VERSION, **body}


def emit_json(data: Any) -> None:
    """Print ``data`` as the command's one JSON document on stdout."""
    import json

    click.echo(json.dumps(json_document(data), indent=2, sort_keys=True, default=str))


_CODE_NAMES = {
    OK: "ok",
    FAILED: "verification-failed",
    USAGE: "usage",
    OPERATIONAL: "operational",
    ACTIONS_FAILED: "actions-failed",
    INTERNAL: "internal",
    INTERRUPTED: "interrupted",
}


def error_document(
    exit_code: int,
    message: str,
    *,
    error: AirsealError | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """``{"schemaVersion": 1, "error": {"code", "exitCode", "message", "file", "check",
    "hint"}}``: what a ``--json`` caller reads on stdout when a command fails."""
    return {
        "schemaVersion": SCHEMA_VERSION,
        "error": {
            "code": code or _CODE_NAMES.get(exit_code, "error"),
            "exitCode": exit_code,
            "message": error.detail if error is not None else message,
            "title": error.title if error is not None else None,
            "file": error.subject if error is not None else None,
            "check": error.check if error is not None else None,
            "hint": (error.hint or None) if error is not None else None,
        },
    }


def _wants_json(argv: Sequence[str]) -> bool:
    args = list(argv)
    if "--" in args:
        args = args[: args.index("--")]
    return "--json" in args


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
    failed_code: str = "verification-failed",
) -> int:
    """Run ``command`` and turn whatever ends it into an exit code (see the module docstring).

    With ``--json`` on the command line a failure also prints :func:`error_document` on stdout
    (``failed_code`` names exit 1: the appliance's failed verification, the agent's refusal)."""
    args = list(argv) if argv is not None else sys.argv[1:]
    as_json = _wants_json(args)
    started = time.monotonic()

    def failed(exit_code: int, message: str, error: AirsealError | None = None) -> int:
        if as_json:
            import json

            code = failed_code if exit_code == FAILED else None
            click.echo(json.dumps(error_document(exit_code, message, error=error, code=code),
                                  indent=2, sort_keys=True))
        _log_info("%s exits %d after %.3f s", prog_name, exit_code, time.monotonic() - started)
        return exit_code

    try:
        result = command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except AirsealError as error:
        click.echo(error.diagnostics(), err=True)
        return failed(exit_code_for(error, exit_codes), error.message(), error)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return failed(INTERRUPTED, "interrupted")
    except click.ClickException as error:
        error.show()
        return failed(error.exit_code, error.format_message())
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return failed(INTERRUPTED, "interrupted")
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        text = f"{where}{error.strerror or error}"
        click.echo(f"{prog_name}: {text}", err=True)
        return failed(OPERATIONAL, text)
    except Exception:
        import logging  # only for a bug's traceback: not worth its import time on every start

        logging.getLogger(prog_name).exception("internal error")
        click.echo(
            f"{prog_name}: internal error (a bug): please report the traceback above", err=True
        )
        return failed(INTERNAL, "internal error (a bug)")
    _log_info("%s done after %.3f s", prog_name, time.monotonic() - started)
    return result if isinstance(result, int) else OK
