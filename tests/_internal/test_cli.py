"""airseal._internal.cli.run_main: each error family to its exit code, tracebacks only for bugs."""

from __future__ import annotations

import errno
import logging

import click
import pytest

from airseal._internal import cli as shared
from airseal.errors import AirsealError, FileTooLarge, UsageError


class Refused(AirsealError):
    title = "Refused"


class Operational(AirsealError):
    title = "Operational"
    hint = "try again"


def command_raising(error: BaseException | None, *, returns: object = None) -> click.Command:
    @click.command()
    @click.option("--flag", is_flag=True)
    def command(flag: bool) -> object:
        if error is not None:
            raise error
        return returns

    return command


CASES = [
    (Refused("signature does not match", subject="blob"), shared.FAILED),
    (UsageError("give --key"), shared.USAGE),
    (FileTooLarge("file is larger than 8 bytes", subject="x"), shared.USAGE),
    (Operational("the token is locked"), shared.OPERATIONAL),
    (click.UsageError("bad option"), shared.USAGE),
    (click.BadParameter("not a number"), shared.USAGE),
    (click.exceptions.Abort(), shared.INTERRUPTED),
    (KeyboardInterrupt(), shared.INTERRUPTED),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/media/x"), shared.OPERATIONAL),
    (click.exceptions.Exit(4), 4),
]


@pytest.mark.parametrize(("error", "code"), CASES, ids=[type(e).__name__ for e, _ in CASES])
def test_each_error_family_has_its_exit_code(
    error: BaseException, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    command = command_raising(error)
    assert shared.run_main(command, [], prog_name="prog", exit_codes=[(Refused, 1)]) == code
    assert "Traceback" not in capsys.readouterr().err


def test_our_errors_print_their_diagnostics(capsys: pytest.CaptureFixture[str]) -> None:
    command = command_raising(Operational("the token is locked", subject="token"))
    assert shared.run_main(command, [], prog_name="prog") == shared.OPERATIONAL
    assert capsys.readouterr().err == "token: operational: the token is locked\n  hint: try again\n"


def test_io_errors_name_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    error = PermissionError(errno.EACCES, "Permission denied", "/media/usb")
    assert shared.run_main(command_raising(error), [], prog_name="prog") == shared.OPERATIONAL
    assert capsys.readouterr().err == "prog: /media/usb: Permission denied\n"


def test_a_bug_is_logged_with_its_traceback_and_exits_70(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="prog"):
        code = shared.run_main(command_raising(ZeroDivisionError("oops")), [], prog_name="prog")
    assert code == shared.INTERNAL
    assert "internal error (a bug)" in capsys.readouterr().err
    [record] = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError


def test_the_front_ends_table_comes_first() -> None:
    error = UsageError("reused as a refusal here")
    assert shared.exit_code_for(error) == shared.USAGE
    assert shared.exit_code_for(error, [(UsageError, 9)]) == 9


def test_results_become_exit_codes() -> None:
    assert shared.run_main(command_raising(None), [], prog_name="prog") == shared.OK
    assert shared.run_main(command_raising(None, returns=4), [], prog_name="prog") == 4
    assert shared.run_main(command_raising(None), ["--bogus"], prog_name="prog") == shared.USAGE


def test_json_option_sets_as_json() -> None:
    seen: list[bool] = []

    @click.command()
    @shared.json_option
    def command(as_json: bool) -> None:
        seen.append(as_json)

    shared.run_main(command, ["--json"], prog_name="prog")
    shared.run_main(command, [], prog_name="prog")
    assert seen == [True, False]
