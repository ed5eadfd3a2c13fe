"""Every command of `airseal` and `airseal-agent`, discovered from the click command tree (so a
new command is covered the day it is added)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import click

from airseal.agent import cli as agent_cli
from airseal.appliance import cli as appliance_cli


@dataclass(frozen=True)
class Command:
    program: str
    path: tuple[str, ...]
    command: click.Command
    main: Callable[[list[str]], int]

    @property
    def name(self) -> str:
        return " ".join((self.program, *self.path))


def _walk(program: str, group: click.Command, main: Callable[[list[str]], int],
          path: tuple[str, ...] = ()) -> Iterator[Command]:
    yield Command(program, path, group, main)
    if isinstance(group, click.Group):
        ctx = click.Context(group, info_name=program)
        for name in group.list_commands(ctx):
            sub = group.get_command(ctx, name)
            assert sub is not None, (program, path, name)
            yield from _walk(program, sub, main, (*path, name))


def every_command() -> list[Command]:
    appliance_cli.register_all()
    return [
        *_walk("airseal", appliance_cli.cli, appliance_cli.main),
        *_walk("airseal-agent", agent_cli.cli, agent_cli.main),
    ]


COMMANDS_BY_NAME = {command.name: command for command in every_command()}
