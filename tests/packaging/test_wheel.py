"""The wheel installs one import package, `airseal`, holding every module of the five folders."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("trustroot", "media", "appliance", "agent", "tui")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    (built,) = out.glob("airseal-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_one_top_level_import_package(wheel_names: list[str]) -> None:
    tops = {name.split("/")[0] for name in wheel_names}
    dist_info = {top for top in tops if top.endswith(".dist-info")}
    assert len(dist_info) == 1
    assert tops - dist_info == {"airseal"}


def test_every_module_and_data_file_is_in_the_wheel(wheel_names: list[str]) -> None:
    expected = {f"airseal/{path.name}" for path in (ROOT / "airseal").glob("*.py")}
    for sub in (ROOT / "airseal").iterdir():  # its own subpackages (the links are the folders)
        if sub.is_dir() and not sub.is_symlink() and sub.name != "__pycache__":
            expected |= {f"airseal/{sub.name}/{path.name}" for path in sub.glob("*.py")}
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                expected.add(f"airseal/{path.relative_to(ROOT).as_posix()}")
    assert expected - set(wheel_names) == set()


def test_console_scripts_start_in_the_airseal_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(name).decode()
    assert "airseal = airseal.appliance.cli:main" in scripts
    assert "airseal-agent = airseal.agent.cli:main" in scripts
