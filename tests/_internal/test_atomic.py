"""airseal._internal.atomic: a file holds its old content or all of the new, never half."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from airseal._internal import atomic
from airseal.errors import FileTooLarge, UsageError


def test_write_replaces_and_sets_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    target.write_bytes(b"old")
    atomic.write_atomic(target, b"new", mode=0o600)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["config.json"]  # no temporary file left behind


def test_a_failed_write_leaves_the_old_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state"
    target.write_bytes(b"old content")

    def power_cut(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(atomic.os, "fsync", power_cut)
    with pytest.raises(OSError, match="I/O error"):
        atomic.write_atomic(target, b"new content that never fully lands")
    assert target.read_bytes() == b"old content"
    assert os.listdir(tmp_path) == ["state"]


def test_the_temporary_file_has_the_final_mode_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modes: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        modes.append(stat.S_IMODE(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", spy)
    atomic.write_atomic(tmp_path / "key", b"secret", mode=0o600)
    assert modes and modes[0] == 0o600


def test_exclusive_refuses_to_replace(tmp_path: Path) -> None:
    target = tmp_path / "agent.key"
    atomic.write_atomic(target, b"first", exclusive=True)
    with pytest.raises(FileExistsError) as refused:
        atomic.write_atomic(target, b"second", exclusive=True)
    assert refused.value.filename == str(target)
    assert target.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["agent.key"]


def test_exclusive_refuses_a_dangling_symlink(tmp_path: Path) -> None:
    link = tmp_path / "planted"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError):
        atomic.write_atomic(link, b"data", exclusive=True)
    assert not (tmp_path / "elsewhere").exists()


def test_fsync_dir_ignores_what_a_filesystem_cannot_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    atomic.fsync_dir(tmp_path / "missing")  # cannot be opened: nothing to sync

    def unsupported(fd: int) -> None:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(atomic.os, "fsync", unsupported)
    atomic.fsync_dir(tmp_path)


def test_fsync_dir_reports_a_real_io_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(atomic.os, "fsync", failing)
    with pytest.raises(OSError, match="Input/output"):
        atomic.fsync_dir(tmp_path)


def test_read_capped(tmp_path: Path) -> None:
    path = tmp_path / "cosign.pub"
    path.write_bytes(b"x" * 10)
    assert atomic.read_capped(path, 10) == b"x" * 10
    with pytest.raises(FileTooLarge, match="larger than 9 bytes") as refused:
        atomic.read_capped(path, 9)
    assert isinstance(refused.value, UsageError) and refused.value.subject == str(path)
