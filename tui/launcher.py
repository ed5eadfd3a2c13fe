"""The `airseal` console script: the TUI with no arguments (or `airseal tui`), else the CLI.

This lives in `tui` because the appliance must never import the TUI (import contract); the TUI
may import the appliance.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args == ["tui"]:
        from tui.app import run

        return run()
    from appliance.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
