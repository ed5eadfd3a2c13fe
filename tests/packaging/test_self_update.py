"""`airseal-agent self-update KIT`: a newer agent from a kit carried on the media, installed
with no network, keeping the agent's state and keys; a release that fails its self-check is
rolled back (journal included); an altered kit is refused before anything is installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.packaging.kit_build import SYSTEM_PYTHON, build_kit, install

ROOT = Path(__file__).resolve().parents[2]
AGENT_PASSWORD = "agent key password"

# A release that migrates the journal forward and then cannot read the agent's public key: its
# self-check fails after it touched the state, so the rollback must restore the journal too
# (the previous agent refuses a journal schema newer than its own).
BROKEN_RELEASE_PATCH = {
    "agent/journal.py": (
        '\nMIGRATIONS = (*MIGRATIONS, "CREATE TABLE release_probe (probe TEXT)")\n'
    ),
    "agent/identity.py": (
        "\n\ndef load_public_key(state_dir: Path) -> PublicKey:  # type: ignore[no-redef]\n"
        '    raise StateError("this release cannot read agent.pub", subject=str(state_dir))\n'
    ),
}


def _agent(bindir: Path, home: Path, *args: str, offline: bool = False):
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(home),
           "AIRSEAL_AGENT_HOME": str(home / "state"), "AIRSEAL_AGENT_KEY_PASSWORD": AGENT_PASSWORD}
    argv = [str(bindir / "airseal-agent"), *args]
    if offline:
        argv = ["unshare", "--net", *argv]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900,
                          check=False)


def _json(done) -> dict:
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
@pytest.mark.root
def test_self_update_installs_keeps_state_and_rolls_back(kit, kit_signer, tmp_path):
    prefix, bindir, home = tmp_path / "opt" / "airseal", tmp_path / "bin", tmp_path / "endpoint"
    done = install(kit, prefix, bindir, "--agent-only", key=kit_signer.public_key)
    assert done.returncode == 0, done.stdout + done.stderr
    home.mkdir()
    assert _agent(bindir, home, "init").returncode == 0
    enrolled = _agent(bindir, home, "enroll", "--key", str(kit_signer.public_key), "--name",
                      "Kit distributor", "--approved")
    assert enrolled.returncode == 0, enrolled.stderr
    before = _json(_agent(bindir, home, "selfcheck", "--json"))
    key_before = (home / "state" / "agent.key").read_bytes()
    first_release = os.readlink(prefix / "current")

    # a newer kit, carried on the media
    media = tmp_path / "media"
    newer = build_kit(media / "airseal-kit", kit_signer, "--agent-only",
                      env={"AIRSEAL_KIT_VERSION": "0.1.0.post2"})
    updated = _agent(bindir, home, "self-update", str(newer), "--prefix", str(prefix),
                     "--python", SYSTEM_PYTHON, "--json", offline=True)
    result = _json(updated)
    assert result["version"] == "0.1.0.post2" and result["previous"] == first_release
    assert result["signedBy"] == "Kit distributor"
    assert os.readlink(prefix / "current") == result["installed"] != first_release
    after = _json(_agent(bindir, home, "selfcheck", "--json"))
    assert after["version"] == "0.1.0.post2"
    for kept in ("agentId", "keyFingerprint", "distributors", "journalSchema", "state"):
        assert after[kept] == before[kept], kept
    assert after["key"] == "decrypted"
    assert (home / "state" / "agent.key").read_bytes() == key_before
    assert (prefix / first_release).is_dir()  # the previous release stays for a manual rollback

    # a broken release: installed, fails its self-check, rolled back with the journal
    source = tmp_path / "broken-source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "demo", "tests", "build", "*.egg-info", "__pycache__", ".*_cache"))
    for name, patch in BROKEN_RELEASE_PATCH.items():
        with (source / name).open("a") as f:
            f.write(patch)
    broken = build_kit(media / "broken-kit", kit_signer, "--agent-only", "--source", str(source),
                       env={"AIRSEAL_KIT_VERSION": "0.1.0.post3"})
    refused = _agent(bindir, home, "self-update", str(broken), "--prefix", str(prefix),
                     "--python", SYSTEM_PYTHON, offline=True)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "failed its self-check" in refused.stderr and "rolled back" in refused.stderr
    assert "cannot read agent.pub" in refused.stderr, refused.stderr
    assert os.readlink(prefix / "current") == result["installed"]
    assert not list((prefix / "releases").glob("0.1.0.post3-*"))
    again = _json(_agent(bindir, home, "selfcheck", "--json"))
    assert again["version"] == "0.1.0.post2" and again["journalSchema"] == before["journalSchema"]

    # an altered kit is refused before anything is installed
    altered = media / "altered-kit"
    shutil.copytree(broken, altered)
    wheel = next((altered / "wheels").glob("airseal-*.whl"))
    with wheel.open("ab") as f:
        f.write(b"\0")
    releases = sorted(p.name for p in (prefix / "releases").iterdir())
    refused = _agent(bindir, home, "self-update", str(altered), "--prefix", str(prefix),
                     "--python", SYSTEM_PYTHON, offline=True)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert wheel.name in refused.stderr and "MANIFEST.sha256" in refused.stderr
    assert sorted(p.name for p in (prefix / "releases").iterdir()) == releases
    assert not list(prefix.glob(".self-update.*"))
