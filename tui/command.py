"""`airseal tui`: the operator's terminal UI, a subcommand of the appliance CLI.

The CLI finds this module by name (its lazy command table), so importing the CLI never loads
Textual and the appliance never imports the TUI.
"""

from __future__ import annotations

import sys

import click

from airseal.appliance.cli import cli, exit_codes


@cli.command("tui")
def tui() -> int:
    """Open the terminal UI on the appliance home ($AIRSEAL_HOME).

    Needs a terminal: in a pipe or a script, use the other commands instead.

    \b
    Examples:
      airseal tui
      AIRSEAL_HOME=/srv/airseal airseal tui
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        click.echo(
            "airseal tui: needs a terminal (standard input and output are not one); "
            "use the other airseal commands in scripts",
            err=True,
        )
        return exit_codes.USAGE
    from airseal.tui.app import run

    return run()
