"""The offline install kit: built once per session (scripts/kit), installed with no network into
an empty prefix, and refused before installing anything when altered."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.packaging.kit_build import install

ROOT = Path(__file__).resolve().parents[2]
APPLIANCE_ONLY = ("textual", "pkcs11", "ykman", "yubikit", "smartcard", "sqlite_utils")
APPLIANCE_DISTS = ("textual", "python-pkcs11", "yubikey-manager", "pyscard", "sqlite-utils")


def pinned(requirements: Path) -> dict[str, str]:
    lines = [line for line in requirements.read_text().splitlines() if not line.startswith("#")]
    pins = {}
    for line in lines:
        match = re.fullmatch(r"([a-z0-9.\[\]-]+)==(\S+) --hash=sha256:[0-9a-f]{64}", line)
        assert match, f"not pinned by version and hash: {line}"
        pins[match[1]] = match[2]
    return pins


def test_the_kit_pins_every_wheel_by_hash_and_lists_every_file(kit):
    agent = pinned(kit / "requirements-agent.txt")
    appliance = pinned(kit / "requirements-appliance.txt")
    assert "airseal" in agent and "airseal[appliance]" in appliance
    assert set(APPLIANCE_DISTS) <= set(appliance)
    assert not set(APPLIANCE_DISTS) & set(agent)
    listed = {line[66:] for line in (kit / "MANIFEST.sha256").read_text().splitlines()}
    files = {p.relative_to(kit).as_posix() for p in kit.rglob("*") if p.is_file()}
    assert files - listed == {"MANIFEST.sha256", "MANIFEST.sha256.sig",
                              "MANIFEST.sha256.sigstore.json"}
    assert (kit.parent / "airseal-kit.tar").stat().st_size > 0
    # the endpoint's set holds only published binary wheels (none built here): no compiler
    wheels = {w.name.split("-")[0].lower().replace("_", "-"): w.name
              for w in (kit / "wheels").iterdir()}
    for name in agent:
        assert not wheels[name.replace("_", "-")].endswith("-linux_x86_64.whl"), name


def test_the_manifest_signature_is_cosign_compatible(kit, kit_signer):
    """The kit's signature verifies with plain OpenSSL, as the installer checks it."""
    der = kit.parent / "manifest.der"
    subprocess.run(["base64", "-d", str(kit / "MANIFEST.sha256.sig")], check=True,
                   stdout=der.open("wb"), timeout=30)
    done = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(kit_signer.public_key), "-signature",
         str(der), str(kit / "MANIFEST.sha256")], capture_output=True, text=True, timeout=30,
        check=False)
    assert done.returncode == 0 and "Verified OK" in done.stdout


@pytest.mark.slow
@pytest.mark.root
def test_offline_install_runs_the_whole_loop(kit, kit_signer, tmp_path):
    prefix, bindir = tmp_path / "opt" / "airseal", tmp_path / "bin"
    done = install(kit, prefix, bindir, key=kit_signer.public_key)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Signature OK" in done.stdout
    assert (bindir / "airseal").resolve().is_file()
    assert (bindir / "airseal-agent").resolve() == (
        prefix / "current" / "bin" / "airseal-agent").resolve()
    # sign, action, export, media check, agent import, receipt: the demo, with no network,
    # on the installed commands only (no .venv, no source tree on the PATH)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "AIRSEAL_DEMO_BIN": str(bindir), "AIRSEAL_DEMO_DIR": str(tmp_path / "demo")}
    loop = subprocess.run(["unshare", "--net", str(ROOT / "scripts" / "demo")], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert loop.returncode == 0, loop.stdout[-4000:] + loop.stderr[-4000:]
    for expected in ("Verified OK", "Media COMPLETE", ": completed", "Audit chain OK"):
        assert expected in loop.stdout, expected
    # the commands that ran are the kit's, in the prefix
    assert os.path.realpath(bindir / "airseal").startswith(str(prefix / "releases") + "/")


@pytest.mark.slow
@pytest.mark.root
def test_an_agent_only_install_has_none_of_the_appliance(kit, kit_signer, tmp_path):
    prefix, bindir = tmp_path / "opt", tmp_path / "bin"
    done = install(kit, prefix, bindir, "--agent-only", key=kit_signer.public_key)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (bindir / "airseal").exists()
    version = subprocess.run([str(bindir / "airseal-agent"), "--version"], capture_output=True,
                             text=True, timeout=60, check=False)
    assert version.returncode == 0 and "airseal-agent" in version.stdout
    probe = subprocess.run(
        [str(prefix / "current" / "bin" / "python"), "-c",
         "import importlib.util, sys; "
         f"print(*[m for m in {APPLIANCE_ONLY!r} if importlib.util.find_spec(m)]); "
         "import airseal.agent.cli, airseal.agent.runner, airseal.agent.journal"],
        capture_output=True, text=True, timeout=60, check=False)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == ""
    # the appliance's command, which the wheel still carries, says what is missing
    appliance = subprocess.run([str(prefix / "current" / "bin" / "airseal"), "key", "list"],
                               capture_output=True, text=True, timeout=60, check=False)
    assert appliance.returncode == 3 and "agent-only install" in appliance.stderr


def _altered_copy(kit: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "kit"
    shutil.copytree(kit, copy, symlinks=True)
    return copy


def _assert_refused(copy: Path, key: Path, tmp_path: Path, *needles: str) -> None:
    prefix = tmp_path / "prefix"
    done = install(copy, prefix, tmp_path / "bin", key=key)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "REFUSED" in done.stderr and "what to do" in done.stderr
    for needle in needles:
        assert needle in done.stderr
    assert not prefix.exists() and not (tmp_path / "bin").exists()  # nothing installed


def test_an_altered_manifest_is_refused_before_installing(kit, kit_signer, tmp_path):
    copy = _altered_copy(kit, tmp_path)
    manifest = copy / "MANIFEST.sha256"
    manifest.write_text(manifest.read_text().replace("  install\n", "  install \n", 1) + "\n")
    _assert_refused(copy, kit_signer.public_key, tmp_path, "MANIFEST.sha256",
                    "signature check failed")


def test_an_altered_wheel_is_refused_before_installing(kit, kit_signer, tmp_path):
    copy = _altered_copy(kit, tmp_path)
    wheel = next((copy / "wheels").glob("airseal-*.whl"))
    with wheel.open("ab") as f:
        f.write(b"\0")
    _assert_refused(copy, kit_signer.public_key, tmp_path, f"wheels/{wheel.name}", "sha256")


def test_a_file_the_manifest_does_not_list_is_refused(kit, kit_signer, tmp_path):
    copy = _altered_copy(kit, tmp_path)
    (copy / "wheels" / "extra-1.0-py3-none-any.whl").write_bytes(b"PK")
    _assert_refused(copy, kit_signer.public_key, tmp_path, "extra-1.0-py3-none-any.whl",
                    "not listed")


def test_another_key_is_refused(kit, tmp_path):
    other = tmp_path / "other.pem"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out",
                    str(tmp_path / "other.key")], check=True, capture_output=True, timeout=30)
    subprocess.run(["openssl", "ec", "-in", str(tmp_path / "other.key"), "-pubout", "-out",
                    str(other)], check=True, capture_output=True, timeout=30)
    _assert_refused(kit, other, tmp_path, "signature check failed")


def test_no_key_is_a_usage_error(kit, tmp_path):
    done = install(kit, tmp_path / "prefix", tmp_path / "bin")
    assert done.returncode == 2 and "--key" in done.stderr
    assert not (tmp_path / "prefix").exists()



def _installer_default(name: str) -> str:
    match = re.search(rf"\b{name}=(\S+)", (ROOT / "scripts" / "kit-install").read_text())
    assert match, name
    return match[1]


@pytest.mark.root
def test_the_unit_runs_the_agent_the_kit_installs(kit, kit_signer, tmp_path):
    """The unit's ExecStart is where the installer links the agent by default, and systemd
    accepts the unit once an agent-only install from the kit is there."""
    unit_name = "airseal-agent-import@.service"
    unit = (kit / "systemd" / unit_name).read_text()
    assert unit == (ROOT / "agent" / "data" / unit_name).read_text()
    (exec_start,) = re.findall(r"(?m)^ExecStart=(\S+)", unit)
    assert exec_start == f"{_installer_default('bindir')}/airseal-agent"
    # the same layout under a temporary root: PREFIX and BINDIR moved there, nothing else
    prefix = tmp_path / _installer_default("prefix").lstrip("/")
    bindir = tmp_path / _installer_default("bindir").lstrip("/")
    done = install(kit, prefix, bindir, "--agent-only", key=kit_signer.public_key)
    assert done.returncode == 0, done.stdout + done.stderr
    units = tmp_path / "units"
    units.mkdir()
    (units / unit_name).write_text(unit.replace(f"ExecStart={exec_start}",
                                                f"ExecStart={tmp_path}{exec_start}"))
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "install systemd (scripts/setup --test does)"
    verify = subprocess.run([analyze, "verify", "airseal-agent-import@sdb1.service"], cwd=units,
                            capture_output=True, text=True, timeout=120, check=False)
    assert verify.returncode == 0, verify.stderr
    # and it refuses the unit when the agent is not where ExecStart says
    (bindir / "airseal-agent").unlink()
    verify = subprocess.run([analyze, "verify", "airseal-agent-import@sdb1.service"], cwd=units,
                            capture_output=True, text=True, timeout=120, check=False)
    assert verify.returncode != 0 and "airseal-agent" in verify.stderr
