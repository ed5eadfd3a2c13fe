"""The systemd unit and udev rule shipped under agent/data/: consistent with each other and with
the agent, and accepted by systemd's own checker."""

from __future__ import annotations

import re
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
