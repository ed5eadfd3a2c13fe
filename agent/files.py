"""Crash-safe small-file writes for agent state (config, keys), on every OS."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def fsync_dir(path: Path) -> None:
    """fsync a folder where the OS allows it (Windows and some filesystems refuse)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | _O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, exclusive: bool = False) -> None:
    """``path`` holds either its old content or all of ``data``, never half.

    The temporary file has ``mode`` from its creation (a key is never readable by others, even
    briefly), is fsynced, then renamed over ``path``. ``exclusive`` refuses to replace a file.
    """
    path = Path(path)
    if exclusive and os.path.lexists(path):
        raise FileExistsError(str(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if path appeared meanwhile
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def read_capped(path: Path, limit: int) -> bytes:
    """The whole file, refusing anything larger than ``limit`` bytes."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} is larger than {limit} bytes")
    return data
