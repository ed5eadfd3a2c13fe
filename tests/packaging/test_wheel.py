"""The wheel installs one import package, `airseal`, holding every module of the five folders."""

from __future__ import annotations

import re
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


APPLIANCE_DISTS = {"textual", "python-pkcs11", "yubikey-manager", "pyscard", "sqlite-utils"}
APPLIANCE_MODULES = ("textual", "pkcs11", "ykman", "yubikit", "smartcard", "sqlite_utils")


def _requires(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(name).decode()
    return [line.split(":", 1)[1].strip() for line in metadata.splitlines()
            if line.startswith("Requires-Dist:")]


def _dist_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_endpoint_requires_none_of_the_appliance(wheel: Path) -> None:
    """`pip install airseal` (the agent) pulls none of the appliance's dependencies; they come
    with the `appliance` extra, which `test` includes."""
    requires = _requires(wheel)
    unconditional = {_dist_name(r) for r in requires if ";" not in r}
    appliance = {_dist_name(r) for r in requires if 'extra == "appliance"' in r}
    test = {r.split(";")[0].strip() for r in requires if 'extra == "test"' in r}
    assert unconditional and not unconditional & APPLIANCE_DISTS
    assert APPLIANCE_DISTS - {"pyscard"} <= appliance  # pyscard comes with yubikey-manager
    assert "airseal[appliance]" in test


def test_the_agent_imports_none_of_the_appliance() -> None:
    """Every module the agent, media and trustroot hold imports with the appliance's
    dependencies made unimportable (the endpoint does not have them; a library's optional
    import of one, like securesystemslib's of pkcs11, must then fall back)."""
    code = (
        "import importlib, importlib.abc, pkgutil, sys\n"
        f"BLOCKED = {APPLIANCE_MODULES!r}\n"
        "class Absent(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Absent())\n"
        "import airseal, airseal.agent, airseal.media, airseal.trustroot\n"
        "for pkg in (airseal.agent, airseal.media, airseal.trustroot):\n"
        "    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if not info.name.endswith('__main__'):\n"
        "            importlib.import_module(info.name)\n"
        "from airseal.agent.cli import cli\n"
        "print(len(cli.commands), sorted(m for m in BLOCKED if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT.parent, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    commands, loaded = done.stdout.split(" ", 1)
    assert int(commands) > 5 and loaded.strip() == "[]"
