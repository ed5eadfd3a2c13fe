"""The README's command tables name every command of both programs, and no command that does not
exist (a renamed or removed command fails here, not in a user's terminal)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from tests.cli.commands import every_command

README = (Path(__file__).parents[2] / "README.md").read_text()


def _table_commands() -> set[str]:
    """Command paths in the first cell of the README's command tables: `airseal action
    list\\|show` is two commands; `airseal receipts import DIR` / `receipts list` is two."""
    found: set[str] = set()
    for line in README.splitlines():
        cell = line.split(" | ")[0].lstrip("| ")
        if not cell.startswith("`airseal"):
            continue
        program = cell.strip("`").split()[0]
        for piece in re.findall(r"`([^`]+)`", cell):
            words = piece.replace("\\|", "|").split()
            if words[0] not in ("airseal", "airseal-agent"):
                words = [program, *words]
            path = [words[0]]
            for word in words[1:]:
                if not re.fullmatch(r"[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*", word):
                    break
                path.append(word)
            *head, last = path
            for alternative in last.split("|"):
                found.add(" ".join([*head, alternative]))
    return found


def test_readme_tables_name_every_command_and_only_real_ones() -> None:
    commands = every_command()
    # every command that does something: the leaves, and `export` (a group that is a command)
    leaves = {
        c.name for c in commands
        if not isinstance(c.command, click.Group) or c.command.invoke_without_command
    }
    named = _table_commands()
    known = {c.name for c in commands}
    assert leaves - named == set(), "commands missing from the README tables"
    assert {n for n in named if n not in known} == set(), "README names commands that do not exist"
