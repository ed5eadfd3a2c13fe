"""Item 8 of issue 13 (free space): an archive bomb within the limits is not extracted into a
filesystem it would fill. The filesystem is a real, small tmpfs mounted for the test."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from airseal.agent.archive import SPACE_MARGIN_BYTES, extract
from airseal.agent.errors import InsufficientSpace
from airseal.agent.state import open_state

from .conftest import ImportRunner
from .helpers import ActionBuild, script, sign_action, write_media

DECLARED = 48 * 1024 * 1024


@pytest.fixture
def small_fs(tmp_path: Path):
    """A 12 MiB tmpfs: room for the agent's state, not for the bomb."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=12m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    # The suite runs as root (FUSE, namespaces, daemons): a tmpfs that cannot be mounted is a
    # broken test machine, not a reason to skip the check.
    assert done.returncode == 0, f"cannot mount a tmpfs: {done.stderr.decode().strip()}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def bomb(path: Path, marker: Path) -> Path:
    """A gzip tar declaring 48 MiB of zeros (a few dozen KiB compressed) and a script."""
    with gzip.open(path, "wb", compresslevel=9) as raw, tarfile.open(fileobj=raw, mode="w") as tar:
        data = script(f"touch {marker}")
        info = tarfile.TarInfo("run.sh")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        zeros = tarfile.TarInfo("zeros.bin")
        zeros.size = DECLARED

        class Zeros(io.RawIOBase):
            left = DECLARED

            def readinto(self, buffer):  # type: ignore[override]
                n = min(len(buffer), self.left)
                buffer[:n] = bytes(n)
                self.left -= n
                return n

        tar.addfile(zeros, Zeros())
    return path


def test_extract_checks_free_space_before_writing(small_fs, tmp_path):
    archive = bomb(tmp_path / "bomb.tar.gz", tmp_path / "marker")
    assert archive.stat().st_size < 1024 * 1024
    out = small_fs / "out"
    out.mkdir()
    with open(archive, "rb") as stream, pytest.raises(InsufficientSpace) as caught:
        extract(stream, "tar", out, "linux", subject="airseal/actions/x/payload/bomb.tar.gz")
    error = caught.value
    assert error.check == "disk-space" and error.subject.endswith("bomb.tar.gz")
    declared = DECLARED + len(script(f"touch {tmp_path / 'marker'}"))
    assert f"{declared} declared by the archive's 2 members" in error.detail
    assert f"needs {declared + 2 * 4096 + SPACE_MARGIN_BYTES} bytes" in error.detail
    assert "nothing was extracted" in error.detail
    assert f"has {shutil.disk_usage(out).free} bytes free" in error.detail
    assert os.listdir(out) == []


def test_an_import_fails_the_action_and_extracts_nothing(
    small_fs, agent_template, agent_signer, distributor, tmp_path, monkeypatch
):
    root = small_fs / "state"
    shutil.copytree(agent_template, root)
    monkeypatch.setenv("AIRSEAL_AGENT_HOME", str(root))
    from airseal.agent.enrolment import enroll
    from airseal.agent.journal import Journal

    from .helpers import utcnow

    state = open_state(root)
    with Journal.open(state.journal_path) as journal:
        enroll(
            journal,
            distributor.pub.read_bytes(),
            name="T",
            purposes=("exports", "actions"),
            now=utcnow(),
        )
    marker = tmp_path / "ran"
    archive = bomb(tmp_path / "bomb.tar.gz", marker)
    after = tmp_path / "after.sh"
    after.write_bytes(script(f"touch {marker}.after"))
    mount = write_media(
        tmp_path / "usb",
        distributor,
        [
            sign_action(ActionBuild("bomb", archive, mode="execute", run="run.sh"), distributor),
            sign_action(ActionBuild("after", after, mode="execute"), distributor),
        ],
    )
    free_before = shutil.disk_usage(small_fs).free
    report = ImportRunner(state, agent_signer)(mount)
    outcomes = {a.id: (a.outcome, a.reason) for a in report.actions}
    assert report.status == "partial"
    outcome, reason = outcomes["bomb"]
    assert outcome == "failed"
    assert "bomb.tar.gz: not enough space [disk-space]" in reason
    assert "nothing was extracted" in reason
    assert outcomes["after"][0] == "succeeded"  # the import goes on: a full disk is not the media's
    assert not marker.exists() and Path(f"{marker}.after").exists()
    assert os.listdir(state.staging_dir) == []
    assert shutil.disk_usage(small_fs).free >= free_before - 1024 * 1024
