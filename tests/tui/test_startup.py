"""What starting the app loads: the dashboard paints without the signing stack (it is imported
once the dashboard shows, in a worker), and `airseal <command>` never loads the TUI.
Timings are for bench/tui_bench.py; these tests only check what is imported."""

from __future__ import annotations

import json
import subprocess
import sys

SIGNING_STACK = ("cryptography", "sigstore", "sigstore_models", "pydantic", "pkcs11", "yubikit",
                 "ykman", "tuf", "nacl")

PROBE = """
import json, sys
{imports}
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(imports: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(imports=imports)],
        capture_output=True, text=True, check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _packages(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_the_dashboard_needs_no_signing_stack() -> None:
    loaded = _packages(_loaded(
        "import airseal.tui.app, airseal.tui.screens.dashboard, airseal.appliance.dashboard\n"
        "import airseal.appliance.db, airseal.appliance.home"
    ))
    assert "textual" in loaded
    assert loaded.isdisjoint(SIGNING_STACK), sorted(loaded & set(SIGNING_STACK))


def test_the_cli_never_loads_the_tui_for_other_commands() -> None:
    loaded = _loaded(
        "from airseal.appliance.cli import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--version'])"
    )
    assert "airseal.tui.app" not in loaded and "textual" not in _packages(loaded)
