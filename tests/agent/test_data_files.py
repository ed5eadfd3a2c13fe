"""The systemd unit and udev rule shipped under agent/data/: consistent with each other and with
the agent, and accepted by systemd's own checker."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import airseal.agent.data
from airseal.agent.identity import CREDENTIAL_NAME

DATA = Path(airseal.agent.data.__file__).parent
UNIT = DATA / "airseal-agent-import@.service"
RULE = DATA / "90-airseal-agent.rules"


def test_the_rule_starts_the_shipped_unit_for_usb_fat_filesystems():
    rules = [line for line in RULE.read_text().splitlines() if line and not line.startswith("#")]
    (rule,) = rules
    pairs = dict(re.findall(r'(\S+?)(?:==|\+=)"([^"]*)"', rule))
    assert pairs["ACTION"] == "add" and pairs["SUBSYSTEM"] == "block"
    assert pairs["ENV{ID_BUS}"] == "usb" and pairs["ENV{ID_FS_TYPE}"] == "vfat|exfat"
    assert pairs["TAG"] == "systemd"
    assert pairs["ENV{SYSTEMD_WANTS}"] == "airseal-agent-import@%k.service"
    assert UNIT.name == "airseal-agent-import@.service"


def test_the_unit_imports_unattended_with_the_credential():
    text = UNIT.read_text()
    assert (
        "ExecStart=/usr/local/bin/airseal-agent import /run/airseal-agent/%i --non-interactive"
        in text
    )
    assert f"LoadCredentialEncrypted={CREDENTIAL_NAME}:" in text
    assert "nosuid,nodev,noexec" in text and "SuccessExitStatus=4" in text


def test_systemd_accepts_the_unit(tmp_path):
    # the installed path of airseal-agent differs here: point the unit at this venv's copy
    executable = Path(sys.executable).parent / "airseal-agent"
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/airseal-agent", str(executable)))
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "install systemd (systemd-analyze) to check the unit"
    done = subprocess.run(
        [analyze, "verify", "airseal-agent-import@sdb1.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _udev_parse_errors(rules: dict[str, str]) -> str:
    """Run `udevadm test` on a real block device with only ``rules`` in /etc/udev/rules.d (a
    tmpfs in a private mount namespace: the machine's rules are untouched) and return what it
    reports about those files. udevadm verify arrived in systemd 254; bookworm has 252."""
    udevadm = shutil.which("udevadm")
    assert udevadm is not None, "install udev (scripts/setup --test does)"
    devices = sorted(Path("/sys/class/block").iterdir())
    assert devices, "no block device in /sys/class/block to run udevadm test on"
    copies = " && ".join(
        f"printf %s {shlex.quote(text)} > /etc/udev/rules.d/{name}" for name, text in rules.items()
    )
    script = (f"mount -t tmpfs tmpfs /etc/udev/rules.d && {copies} && "
              f"{udevadm} test --action=add {devices[0]} 2>&1")
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--fork", "/bin/sh", "-c", script],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert "Reading rules file: /etc/udev/rules.d/" in done.stdout, done.stdout[-2000:]
    return "\n".join(
        line for line in done.stdout.splitlines()
        if any(line.startswith(f"/etc/udev/rules.d/{name}") for name in rules)
    )


def test_udev_parses_the_rule_without_complaint():
    assert _udev_parse_errors({RULE.name: RULE.read_text()}) == ""


def test_udev_check_reports_a_broken_rule():
    # the check above can fail: the same run names a malformed rule's file and line
    broken = RULE.read_text().replace("ENV{ID_BUS}==", "ENVX{ID_BUS}==")
    assert f"{RULE.name}:4" in _udev_parse_errors({RULE.name: broken})
