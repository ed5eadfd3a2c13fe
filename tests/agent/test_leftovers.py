"""Item 7 of issue 13: a killed import's litter is removed on the next start, and only that.

The kill is real: ``airseal-agent import`` runs in a child process and gets SIGKILL while it is
placing a large download (its hidden full-size temporary beside the destination exists).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from airseal.agent.leftovers import LEDGER_NAME, record_placements
from airseal.agent.staging import memory_prefix

from .helpers import ActionBuild, sign_action, write_media

BIG = 96 * 1024 * 1024


def _temporaries(folder: Path, name: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(f".{name}.airseal-"))


def _kill_during_placement(mount: Path, dest: Path) -> Path:
    """Start a real import and SIGKILL it once its temporary beside ``dest`` exists."""
    child = subprocess.Popen(
        [sys.executable, "-m", "airseal.agent", "import", str(mount), "--yes"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            found = _temporaries(dest.parent, dest.name) if dest.parent.exists() else []
            if found:
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=30)
                assert child.returncode == -signal.SIGKILL
                return found[0]
            if child.poll() is not None:
                raise AssertionError(
                    f"the import ended ({child.returncode}) before placement was seen: "
                    f"{child.stderr.read().decode() if child.stderr else ''}"
                )
            time.sleep(0.002)
        raise AssertionError("placement never started")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stderr:
            child.stderr.close()


def test_a_kill_during_placement_leaves_litter_the_next_start_removes(
    agent_cli, enrolled, distributor, tmp_path
):
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        handle.truncate(BIG)  # sparse on the media side; real blocks once copied
    dest = tmp_path / "drop" / "big.bin"
    mount = write_media(
        tmp_path / "usb",
        distributor,
        [sign_action(ActionBuild("big", big, dest=str(dest)), distributor)],
    )
    temporary = _kill_during_placement(mount, dest)
    # what the kill left: the hidden temporary, the staging folder, the ledger naming it
    assert temporary.exists() and not dest.exists()
    assert os.listdir(enrolled.staging_dir) != []
    assert (enrolled.root / LEDGER_NAME).exists()
    # a file with the agent's pattern the agent did not make (not in its ledger) stays
    lookalike = dest.parent / ".big.bin.airseal-0123456789ab.tmp"
    lookalike.write_bytes(b"a user's file")

    status = agent_cli("status", "--json")
    assert status.code == 0, status.stderr
    data = json.loads(status.stdout)
    assert str(temporary) in data["cleanedUp"]
    assert any(p.startswith(str(enrolled.staging_dir)) for p in data["cleanedUp"])
    assert [r["id"] for r in data["interrupted"]] == ["big"]
    assert not temporary.exists() and lookalike.read_bytes() == b"a user's file"
    assert os.listdir(enrolled.staging_dir) == []
    assert not (enrolled.root / LEDGER_NAME).exists()

    # the interrupted download is placed by the next import, and leaves nothing beside it
    again = agent_cli("import", str(mount), "--yes")
    assert again.code == 0, again.stderr
    assert dest.stat().st_size == BIG
    assert sorted(p.name for p in dest.parent.iterdir()) == [lookalike.name, "big.bin"]


def test_the_next_import_removes_stale_staging_and_recorded_temporaries(
    run_import, enrolled, distributor, tmp_path
):
    """Even an import that stages nothing removes a killed run's staging; ledger entries that
    are not the agent's temporaries are never acted on."""
    stale = enrolled.staging_dir / "import-7-deadbeef"
    stale.mkdir(parents=True)
    (stale / "a.payload").write_bytes(b"x" * 1000)
    shm = Path("/dev/shm")  # the agent's RAM staging parent on Linux
    memory = shm / f"{memory_prefix(enrolled.agent_id)}stale"
    memory.mkdir()
    folder = tmp_path / "drop"
    folder.mkdir()
    leftover = folder / ".x.conf.airseal-00112233aabb.tmp"
    leftover.write_bytes(b"half")
    not_ours = folder / "x.conf"
    not_ours.write_bytes(b"keep me")
    record_placements(enrolled, [(str(folder), leftover.name), (str(folder), not_ours.name)])
    payload = tmp_path / "w.conf"
    payload.write_text("windows only\n")
    mount = write_media(
        tmp_path / "usb",
        distributor,
        [sign_action(ActionBuild("win", payload, os="windows", dest="C:\\x.conf"), distributor)],
    )
    try:
        report = run_import(mount)
    finally:
        if memory.exists():
            memory.rmdir()
    assert report.status == "completed"
    assert {a.id: a.outcome for a in report.actions} == {"win": "skipped"}
    assert set(report.cleaned_up) == {str(leftover), str(stale), str(memory)}
    assert not leftover.exists() and not stale.exists() and not memory.exists()
    assert not_ours.read_bytes() == b"keep me"
    assert not (enrolled.root / LEDGER_NAME).exists()
