"""The ``--version`` constant stays the version the project is built and installed as."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from click.testing import CliRunner

from airseal._internal.version import VERSION

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_version_constant_matches_pyproject() -> None:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    assert project["version"] == VERSION


def test_version_constant_matches_the_installed_distribution() -> None:
    assert version("airseal") == VERSION


def test_both_command_lines_print_it() -> None:
    from airseal.agent.cli import cli as agent_cli
    from airseal.appliance.cli import cli as appliance_cli

    for command, prog in ((agent_cli, "airseal-agent"), (appliance_cli, "airseal")):
        result = CliRunner().invoke(command, ["--version"])
        assert result.exit_code == 0
        assert result.output == f"{prog}, version {VERSION}\n"
