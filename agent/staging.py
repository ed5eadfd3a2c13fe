"""Check 3 of 3: payloads are copied into a private staging folder, re-joined if split, hashed
again and compared with the digest the action signed, and hashed once more immediately before
they are used.

The staging folder (``<state>/staging/<import>-<random>/``, 0700 inside the 0700 state folder,
and for small payloads a private 0700 folder on a RAM-backed filesystem such as ``/dev/shm``) is
the only place the agent writes before every check has passed; it is removed after each import.
Copies come from the media through :class:`airseal.media.reader.MediaSource` (no links, capped
sizes), so
a payload swapped on the stick after check 2 is caught here, and the re-hash at the point of use
(:func:`copy_verified`, :func:`open_verified`) catches a staged copy changed after staging.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from airseal.agent.errors import StagedPayloadMismatch, StateError
from airseal.agent.platforms import OperatingSystem, memory_staging_candidates
from airseal.media import layout
from airseal.media.errors import BadMedia, MediaReadError
from airseal.media.reader import MediaSource
from airseal.media.statement import ExportedAction
from airseal.trustroot.digest import chunk_buffer, read_chunks

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY


@dataclass(frozen=True)
class StagedPayload:
    """A payload copied into staging whose bytes hashed to the signed digest."""

    action_id: str
    name: str
    path: Path
    sha256: str
    size: int
    subject: str
    """The payload's (first) file on the media, for messages."""


MEMORY_FILE_LIMIT = 1024 * 1024
MEMORY_BUDGET = 64 * 1024 * 1024


def memory_staging_parent(os_name: OperatingSystem) -> Path | None:
    """A RAM-backed folder to stage small payloads in, when this OS has a safe one.

    Creating thousands of small files is what an import of many small actions spends its time
    on (0.4 ms a file on a slow disk, 0.01 ms on tmpfs), and a payload staged in RAM never
    touches the disk. Only a sticky, world-writable tmpfs folder (``/dev/shm``) or one owned by
    the agent is used, and only through a private 0700 folder with a random name in it.
    """
    for candidate in memory_staging_candidates(os_name):
        try:
            st = os.lstat(candidate)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue
        world_writable = bool(st.st_mode & stat.S_IWOTH)
        if world_writable and not st.st_mode & stat.S_ISVTX:
            continue
        if not world_writable and st.st_uid != os.geteuid():
            continue
        return Path(candidate)
    return None


class Staging:
    """Private folders for one import; removed (with everything in them) on exit.

    Payloads go to ``<parent>/<label>-<random>/`` (0700, in the 0700 state folder); small ones
    (up to ``MEMORY_FILE_LIMIT``, ``MEMORY_BUDGET`` in all) go to a private 0700 folder in
    ``memory_parent`` instead when one is given. Leftovers of an earlier, crashed import are
    removed on entry (the caller holds the state lock, so no other import owns them).
    """

    def __init__(
        self,
        parent: Path,
        label: str,
        *,
        owner_tag: str = "agent",
        memory_parent: Path | None = None,
        memory_budget: int = MEMORY_BUDGET,
    ) -> None:
        self.parent = parent
        self.root = parent / f"{label}-{secrets.token_hex(4)}"
        self.memory_parent = memory_parent
        self.memory_prefix = memory_prefix(owner_tag)
        self.memory_root: Path | None = None
        self.memory_left = memory_budget
        self._buffer: memoryview | None = None  # one read buffer for every payload staged

    def __enter__(self) -> Staging:
        try:
            self.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if os.name != "nt":
                os.chmod(self.parent, 0o700)
            self._sweep()
            os.mkdir(self.root, 0o700)
            if self.memory_parent is not None:
                self.memory_root = Path(
                    tempfile.mkdtemp(prefix=self.memory_prefix, dir=self.memory_parent)
                )
        except OSError as exc:
            raise StateError(
                f"cannot create the staging folder: {exc.strerror}", subject=str(self.root)
            ) from None
        return self

    def _sweep(self) -> None:
        remove_stale_staging(self.parent, self.memory_parent, self.memory_prefix)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def remove(self) -> None:
        _remove(self.root)
        if self.memory_root is not None:
            _remove(self.memory_root)

    def folder(self, name: str) -> Path:
        path = self.root / name
        os.mkdir(path, 0o700)
        return path

    def stage(
        self, source: MediaSource, listed: ExportedAction, signed_sha256: str
    ) -> StagedPayload:
        """Copy (and re-join) the payload from the media, hashing it; compare with the signed
        digest. Raises :class:`StagedPayloadMismatch` naming the payload on the media."""
        paths = [layout.on_mount(p) for p in listed.payload_paths]
        subject = paths[0]
        size = listed.payload.size
        if self.memory_root is not None and size <= min(MEMORY_FILE_LIMIT, self.memory_left):
            self.memory_left -= size
            target = self.memory_root / f"{listed.id}.payload"
        else:
            target = self.root / f"{listed.id}.payload"
        digest = hashlib.sha256()
        total = 0
        remaining = listed.payload.size
        if self._buffer is None:
            self._buffer = chunk_buffer()
        buffer = self._buffer
        fd = os.open(target, _NEW_FILE, 0o600)
        try:
            for path in paths:
                try:
                    with source.open(path, max_size=remaining) as stream:
                        for chunk in read_chunks(stream, buffer=buffer):
                            digest.update(chunk)
                            _write_all(fd, chunk)
                            total += len(chunk)
                            remaining -= len(chunk)
                except (BadMedia, MediaReadError) as exc:
                    raise StagedPayloadMismatch(
                        f"could not be staged: {exc.detail}", subject=exc.subject or path
                    ) from None
        finally:
            os.close(fd)
        actual = digest.hexdigest()
        if total != listed.payload.size or actual != signed_sha256:
            raise StagedPayloadMismatch(
                f"staged copy has {total} bytes with sha256 {actual}; the action signed "
                f"{listed.payload.size} bytes with sha256 {signed_sha256}",
                subject=subject,
            )
        return StagedPayload(listed.id, listed.payload.name, target, actual, total, subject)


def memory_prefix(owner_tag: str) -> str:
    """How this agent's private folders in the RAM-backed parent begin."""
    return f"airseal-agent-{owner_tag[:16]}-"


def remove_stale_staging(parent: Path, memory_parent: Path | None, prefix: str) -> list[Path]:
    """Remove what a killed import left in staging: everything in ``parent`` (the agent's own
    0700 folder) and this agent's private folders in ``memory_parent``; the caller holds the
    state lock, so no running import owns them. Returns what was removed."""
    removed: list[Path] = []
    with contextlib.suppress(FileNotFoundError):
        for leftover in parent.iterdir():
            _remove(leftover)
            removed.append(leftover)
    if memory_parent is None:
        return removed
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    for leftover in memory_parent.glob(prefix + "*"):
        with contextlib.suppress(OSError):
            st = os.lstat(leftover)
            if stat.S_ISDIR(st.st_mode) and (uid is None or st.st_uid == uid):
                _remove(leftover)
                removed.append(leftover)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]


def copy_verified(
    staged: StagedPayload, target_fd: int, *, buffer: memoryview | None = None
) -> None:
    """Copy the staged payload to ``target_fd`` while hashing it; the digest must still be the
    signed one, checked before the caller puts the copy to use. ``buffer``: a
    :func:`chunk_buffer` to reuse across a batch."""
    digest = hashlib.sha256()
    total = 0
    with open(staged.path, "rb", buffering=0) as source:
        for chunk in read_chunks(source, buffer=buffer):
            digest.update(chunk)
            _write_all(target_fd, chunk)
            total += len(chunk)
    _require_same(staged, digest.hexdigest(), total)


def open_verified(staged: StagedPayload) -> BinaryIO:
    """The staged payload, opened and hashed once more; read it from this handle only."""
    handle = open(staged.path, "rb")  # noqa: SIM115 (returned to the caller, who closes it)
    try:
        digest = hashlib.sha256()
        total = 0
        for chunk in read_chunks(handle):
            digest.update(chunk)
            total += len(chunk)
        _require_same(staged, digest.hexdigest(), total)
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return handle


def _require_same(staged: StagedPayload, actual: str, size: int) -> None:
    if actual != staged.sha256 or size != staged.size:
        raise StagedPayloadMismatch(
            f"the staged copy changed before use: sha256 {actual} ({size} bytes), the action "
            f"signed {staged.sha256} ({staged.size} bytes)",
            subject=staged.subject,
        )


def new_file(path: Path, mode: int = 0o600) -> int:
    """Create ``path`` exclusively, never through a link."""
    return os.open(path, _NEW_FILE, mode)
