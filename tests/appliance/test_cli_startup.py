"""`airseal` loads only what the named command needs (subcommands are imported lazily)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("pkcs11", "yubikit", "ykman", "sigstore", "sigstore_models", "textual", "tui")

PROBE = """
import sys
from appliance.cli import main
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
        [sys.executable, "-m", "appliance.cli", "--help"], capture_output=True, text=True,
        check=True,
    ).stdout
    for name in ("action", "audit", "config", "export", "file", "init", "key", "media", "piv",
                 "receipts", "sign-blob", "token", "verify-blob"):
        assert f"\n  {name} " in out, name
