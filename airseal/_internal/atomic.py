"""Crash-safe writes and capped reads of small files, on every OS.

A file written here holds either its old content or all of the new, never half: the data goes
to a temporary file beside it, created with its final mode (a key is never readable by others,
even briefly), fsynced, then renamed over the target (or linked, when the target must not
exist yet), and the folder is fsynced so that the rename itself survives a power loss.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from airseal.errors import FileTooLarge

_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

# What fsync of a folder answers where the OS or the filesystem does not offer it (Windows, FAT
# under some FUSE drivers, read-only or restricted mounts): not a failure of the data.
_FSYNC_UNSUPPORTED = frozenset(
    {errno.EINVAL, errno.EBADF, errno.EROFS, errno.ENOTSUP, errno.EACCES}
)


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (renames, new files) durable where the OS allows it.

    A folder that cannot be opened, or a filesystem that does not fsync folders, is not an
    error; any other failure of the fsync (an I/O error) raises :class:`OSError`.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, exclusive: bool = False) -> None:
    """``path`` holds either its old content or all of ``data``, never half.

    ``exclusive`` refuses to replace a file (:class:`FileExistsError`), also one that appears
    while the data is written. The folder's fsync is best effort: once the rename is done the
    new content is in place, and the state files written here have no stronger promise.
    """
    path = Path(path)
    if exclusive and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "file exists", str(path))
    import tempfile  # here, not at the top: it loads shutil and random, which reads never need

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
    with contextlib.suppress(OSError):
        fsync_dir(path.parent)


def read_capped(path: Path, limit: int) -> bytes:
    """The whole file, refusing one larger than ``limit`` bytes (:class:`FileTooLarge`)."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(f"file is larger than {limit} bytes", subject=str(path))
    return data
