"""Every `--help` of both CLIs has an Examples section, and a flag that means the same thing in
several commands says so in the same words (one definition per shared option)."""

from __future__ import annotations

from collections import defaultdict

import click
import pytest

from tests.cli.commands import COMMANDS_BY_NAME, Command, every_command

COMMANDS = every_command()

DIFFERENT_MEANINGS = {
    "--name": "names what the command creates: an action, a stored file, an enrolled agent",
    "--valid-days": "an action's validity window, or an export's",
    "--yes": "each confirms a different question (erase a YubiKey, approve an agent)",
    "--version": "click's --version of the program, or the version of one action",
    "--algorithm": "a signing key's algorithm, or a PIV management key's",
    "--limit": "newest audit entries, or newest imports",
    "--reason": "why an action was revoked (kept in the audit log), or why a distributor was "
    "(shown on endpoints)",
    "--output": "a public key written instead of printed, or the site root's required file",
    "--root": "the TUF root a fetch starts from, or the one an import walks from",
    "--online-key": "the site's first snapshot/timestamp key, or its replacement after a leak",
}
"""Flags spelled alike whose meaning differs by command: their help may differ, and why."""


@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
def test_every_help_has_examples(command: Command, capsys) -> None:
    assert command.main([*command.path, "--help"]) == 0
    text = capsys.readouterr().out
    assert "\n  Examples:\n" in text, text
    section = text.split("\n  Examples:\n", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in section.splitlines() if line.strip()]
    assert lines, text
    previous = ""
    for line in lines:
        continued = previous.endswith("\\")
        # a line runs this program, or shows the environment it needs, or (a cross-reference)
        # the other program's step that goes with it
        assert continued or line.startswith(
            (command.program + " ", "airseal ", "airseal-agent ", "AIRSEAL_", "COSIGN_PASSWORD=")
        ), line
        previous = line
    # at least one example runs this very command
    assert any(" ".join((command.program, *command.path)) in line for line in lines), lines


def test_shared_flags_have_one_wording() -> None:
    helps: dict[tuple[str, str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for command in COMMANDS:
        for option in command.command.params:
            if not isinstance(option, click.Option) or option.hidden:
                continue
            flag = next((o for o in option.opts if o.startswith("--")), option.opts[0])
            if flag in DIFFERENT_MEANINGS or flag == "--help":
                continue
            # the parameter a flag fills tells meanings apart: --key NAME to sign with (key_name)
            # is not --key FILE|NAME to verify with (key_arg)
            helps[(command.program, flag, option.name or "")][option.help or ""].add(command.name)
    differing = {key: dict(texts) for key, texts in helps.items() if len(texts) > 1}
    assert differing == {}, differing
    assert len(COMMANDS_BY_NAME) == len(COMMANDS)
