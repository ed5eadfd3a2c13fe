"""`airseal` loads only what the named command needs (subcommands are imported lazily)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("pkcs11", "yubikit", "ykman", "sigstore", "sigstore_models", "textual", "tui")

PROBE = """
import sys
from airseal.appliance.cli import main
code = main({argv!r})
heavy = {heavy!r}
print(sorted({{m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}}))
sys.exit(code)
"""


def _loaded(argv: list[str]) -> list[str]:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv, heavy=HEAVY)],
        capture_output=True, text=True, check=False,
    )
    return eval(probe.stdout.strip().splitlines()[-1])  # noqa: S307  (our own probe's list)


@pytest.mark.parametrize(
    ("argv", "allowed"),
    [
        (["--version"], []),
        (["audit", "verify"], []),
        (["key", "list"], []),
        (["media", "check", "."], ["sigstore_models"]),  # it parses the statement bundle
    ],
)
def test_commands_load_only_what_they_use(argv, allowed, appliance_home):
    assert _loaded(argv) == allowed


def test_help_lists_every_command_group():
    out = subprocess.run(
        [sys.executable, "-m", "airseal.appliance.cli", "--help"], capture_output=True, text=True,
        check=True,
    ).stdout
    for name in ("action", "audit", "config", "export", "file", "init", "key", "media", "piv",
                 "receipts", "sign-blob", "token", "verify-blob"):
        assert f"\n  {name} " in out, name


def test_tui_is_a_listed_subcommand_with_help():
    airseal = [sys.executable, "-m", "airseal"]
    listing = subprocess.run([*airseal, "--help"], capture_output=True, text=True, check=True)
    assert "\n  tui " in listing.stdout
    helped = subprocess.run([*airseal, "tui", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0, helped.stderr
    assert "terminal UI" in helped.stdout and "Examples" in helped.stdout


@pytest.mark.parametrize("argv", [[], ["tui"]])
def test_without_a_terminal_the_tui_is_not_started(argv, appliance_home):
    """`airseal < /dev/null | cat`: help (for no command) and a reason, exit 2, no escape codes."""
    done = subprocess.run(
        [sys.executable, "-m", "airseal", *argv], stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2
    assert "\x1b" not in done.stdout and "\x1b" not in done.stderr
    assert "terminal" in done.stderr
    if not argv:
        assert done.stdout.startswith("Usage: airseal")
