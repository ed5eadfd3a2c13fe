"""The README's first set-up command, `scripts/demo`, does the whole job on its embedded default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_runs_end_to_end_and_leaves_a_verifiable_trail(tmp_path):
    demo = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRSEAL", "COSIGN"))}
    env["AIRSEAL_DEMO_DIR"] = str(demo)
    result = subprocess.run(
        [str(ROOT / "scripts" / "demo")], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Media COMPLETE" in result.stdout
    assert "Audit chain OK" in result.stdout
    # the endpoint received exactly the bytes the operator signed
    assert (demo / "endpoint-files" / "hello.sh").read_bytes() == (demo / "hello.sh").read_bytes()
    # and its signed receipt came back to the appliance
    env["AIRSEAL_HOME"] = str(demo / "home")
    listing = subprocess.run(
        [sys.executable, "-m", "airseal", "receipts", "list", "--json"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60, check=True,
    )
    actions = json.loads(listing.stdout)["actions"]
    assert [a["outcomes"] for a in actions] == [{"succeeded": 1}]
    # from an agent the administrator enrolled, not one pinned on first sight
    (agent,) = json.loads(listing.stdout)["agents"]
    assert agent["basis"] == "administrator" and agent["name"] == "Demo endpoint"
    assert "Enrolled agent" in result.stdout
    assert "demo-password" not in result.stdout + result.stderr
