"""`airseal tui`: the operator's terminal UI, a subcommand of the appliance CLI.

The CLI finds this module by name (its lazy command table), so importing the CLI never loads
Textual and the appliance never imports the TUI.
"""

from __future__ import annotations

import gc
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
    # Starting the app builds objects that live as long as it (modules, classes, widgets,
    # styles); the collector walking them again and again as they pile up cost about 0.06 s
    # CPU of the first paint. It is back on, with those objects frozen, once the screens are
    # imported (AirsealApp._settle_memory).
    gc.disable()
    from airseal.tui.app import run

    return run()
