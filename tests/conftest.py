"""Test isolation shared by every test: no real home, no inherited secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory, monkeypatch):
    """Every test gets its own appliance and agent homes and no secrets from the caller's shell."""
    base = tmp_path_factory.mktemp("homes")
    monkeypatch.setenv("AIRSEAL_HOME", str(base / "appliance"))
    monkeypatch.setenv("AIRSEAL_AGENT_HOME", str(base / "agent"))
    for name in ("COSIGN_PASSWORD", "AIRSEAL_PIN", "AIRSEAL_PUK", "AIRSEAL_NEW_PIN",
                 "AIRSEAL_BACKUP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def airseal(monkeypatch):
    """Run `airseal` in a child process (real argv, real exit code, no shared state)."""

    def run(
        *args: str,
        password: str | None = PASSWORD,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
    ) -> CliResult:
        child_env = dict(os.environ)
        if password is not None:
            child_env["COSIGN_PASSWORD"] = password
        child_env.update(env or {})
        done = subprocess.run(
            [sys.executable, "-m", "airseal.appliance.cli", *args],
            capture_output=True,
            text=True,
            env=child_env,
            input=stdin,
            timeout=300,
            check=False,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def appliance_home(airseal) -> Path:
    result = airseal("init")
    assert result.code == 0, result.stderr
    return Path(os.environ["AIRSEAL_HOME"])


# Tests that share one machine-wide resource run in one pytest-xdist worker (`--dist loadgroup`,
# scripts/test): pcscd serves one socket per machine, the TUI's snapshot site lives at a fixed
# path (it shows on screens), and the packaging tests share one kit build per worker.
_XDIST_GROUPS = {
    "tests/appliance/test_piv_pcsc.py": "pcscd",
    "tests/agent/test_site_piv.py": "pcscd",
    "tests/tui/": "tui",
    "tests/packaging/": "packaging",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist"):
        return
    root = Path(str(config.rootpath))
    for item in items:
        where = Path(str(item.path)).relative_to(root).as_posix()
        for prefix, group in _XDIST_GROUPS.items():
            if where.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))
                break
