"""Every command of both CLIs, given malformed arguments: one clear usage error, exit 2, never a
traceback; with --json also a JSON error object on stdout (issue 15)."""

from __future__ import annotations

import json

import click
import pytest

from tests.cli.commands import Command, every_command

COMMANDS = every_command()


def _malformed(command: Command) -> list[list[str]]:
    """Argument lists that click must refuse before the command runs."""
    cases = [["--no-such-flag"]]
    params = command.command.params
    takes_arguments = any(isinstance(p, click.Argument) for p in params)
    if not takes_arguments and not isinstance(command.command, click.Group):
        cases.append(["unexpected-extra-argument"])
    if isinstance(command.command, click.Group):
        cases.append(["no-such-subcommand"])
    if any(isinstance(p, click.Argument) and p.required for p in params):
        cases.append([])  # a required argument missing
    for option in params:
        if not isinstance(option, click.Option) or option.hidden:
            continue
        flag = next((o for o in option.opts if o.startswith("--")), option.opts[0])
        if option.is_flag or option.count:
            continue
        cases.append([flag])  # the option's value missing
        kind = option.type
        if isinstance(kind, (click.types.IntParamType, click.types.IntRange)):
            cases.append([flag, "not-a-number"])
        elif isinstance(kind, click.Choice):
            cases.append([flag, "no-such-choice"])
        elif isinstance(kind, click.Path) and kind.exists:
            cases.append([flag, "/no/such/path/anywhere"])
    return cases




@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
def test_malformed_arguments_are_usage_errors(command: Command, capsys) -> None:
    for case in _malformed(command):
        argv = [*command.path, *case]
        code = command.main(argv)
        out, err = capsys.readouterr()
        assert code == 2, (argv, code, out, err)
        assert "Traceback" not in out + err and "internal error" not in err, (argv, err)
        assert err.strip(), (argv, "a usage error says what is wrong")


WITH_JSON = [c for c in COMMANDS if any(p.name == "as_json" for p in c.command.params)]


@pytest.mark.parametrize("command", WITH_JSON, ids=[c.name for c in WITH_JSON])
def test_json_commands_print_a_json_error_object(command: Command, capsys) -> None:
    code = command.main([*command.path, "--json", "--no-such-flag"])
    out, err = capsys.readouterr()
    assert code == 2 and "No such option" in err
    document = json.loads(out)
    assert document["schemaVersion"] == 1
    error = document["error"]
    assert (error["code"], error["exitCode"]) == ("usage", 2)
    assert "--no-such-flag" in error["message"]
    assert set(error) == {"code", "exitCode", "message", "title", "file", "check", "hint"}


def test_every_command_is_walked() -> None:
    names = {c.name for c in COMMANDS}
    assert {"airseal export list", "airseal verify-blob", "airseal-agent import",
            "airseal piv generate-key", "airseal tui"} <= names
    assert len(COMMANDS) >= 50
