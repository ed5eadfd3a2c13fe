"""Building and installing the offline kit (scripts/kit, the kit's `install`) in tests."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "kit signing password"
# the Python the kit is for and the endpoint's interpreter: Debian's (scripts/setup installs it)
SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass(frozen=True)
class Signer:
    home: Path
    key: str
    public_key: Path


def make_signer(base: Path) -> Signer:
    env = {**os.environ, "AIRSEAL_HOME": str(base / "appliance"), "COSIGN_PASSWORD": PASSWORD}
    airseal = [sys.executable, "-m", "airseal.appliance.cli"]
    for args in (["init"], ["key", "generate", "kit-release"],
                 ["key", "export-public", "kit-release", "--output", str(base / "kit.pub")]):
        subprocess.run([*airseal, *args], env=env, check=True, capture_output=True, timeout=120)
    return Signer(base / "appliance", "kit-release", base / "kit.pub")


def build_kit(out: Path, signer: Signer, *extra: str, env: dict[str, str] | None = None) -> Path:
    child = {**os.environ, "AIRSEAL_HOME": str(signer.home), "COSIGN_PASSWORD": PASSWORD,
             **(env or {})}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "kit"), "--out", str(out), "--key", signer.key,
         "--python", sys.executable, "--airseal", str(Path(sys.executable).parent / "airseal"),
         *extra],
        env=child, capture_output=True, text=True, timeout=1200, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def install(kit: Path, prefix: Path, bindir: Path, *extra: str,
            key: Path | None = None, offline: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the kit's installer, in a new network namespace with no network unless told not to."""
    argv = [str(kit / "install"), "--prefix", str(prefix), "--bindir", str(bindir),
            "--python", SYSTEM_PYTHON, *extra]
    if key is not None:
        argv += ["--key", str(key)]
    if offline:
        argv = ["unshare", "--net", *argv]
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
