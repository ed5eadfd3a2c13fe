"""Read-back verification: every byte written is read again from the media and re-hashed.

:class:`ReadBack` trails behind the writer, window by window (32 MiB): one thread forces each
written range to the device (``fdatasync``; ``fsync`` once the file is complete), a second
drops the synced range from the page cache (``posix_fadvise(DONTNEED)``), reads it back through
a second, independent descriptor and hashes it. Small files (bundles, the statement) are also
hashed by the writer on their way out and the two digests must agree; payloads are hashed only
here, and the digest of what the media returned (over all parts, in order) must equal the
digest the action signed, so verification costs one SHA-256 pass, not two. Trailing behind the
writer lets the device writes, the read-back and the copy overlap (``bench/export_bench.py``).

What remains of the page-cache caveat:
- ``DONTNEED`` drops only clean pages, which is why each range is synced first; on kernels or
  filesystems that ignore the advice (and on macOS and Windows, which have no ``fadvise``) the
  read-back may be served from memory and proves only that the kernel holds the right bytes.
- On FUSE (``fusefat``) the advice drops the FUSE file's cache, so the bytes are read back
  through the FUSE daemon, but the daemon's backing image may still sit in the host page cache.
- No API bypasses a USB stick's own controller cache; ``O_DIRECT`` is not used because FAT over
  FUSE and many USB bridges refuse it, and it would serialise the copy.
A read-back therefore catches wrong data from the filesystem, the FUSE layer and the block
layer, and on Linux with a kernel filesystem reads from the device itself.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from airseal.media.errors import MediaWriteError, ReadBackMismatch
from airseal.media.limits import MiB
from airseal.trustroot.digest import chunk_buffer

CHUNK_SIZE = MiB
WINDOW_BYTES = 32 * MiB
"""How far the writer runs ahead before the next range is synced and read back."""

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)


def _drop_cache(fd: int, offset: int, length: int) -> None:
    """Drop a synced (so clean) range from the page cache, so that reading it again goes to
    the device."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    with contextlib.suppress(OSError):  # advice only: the read-back runs either way
        advise(fd, offset, length, os.POSIX_FADV_DONTNEED)


@dataclass
class TrackedFile:
    """A file being written: the writer's descriptor (owned by the read-back once finished)."""

    path: Path
    label: str
    write_fd: int
    read_fd: int = -1
    verified: int = 0
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    whole: hashlib._Hash | None = None
    """Shared by the parts of a split payload, read back in order: the payload's digest."""
    finished: bool = False


@dataclass(frozen=True)
class ReadBackResult:
    label: str
    size: int
    sha256: str


Job = tuple[TrackedFile, int, int, str | None]
"""(file, bytes written so far, final size or -1, sha256 written if the writer hashed it)."""


class ReadBack:
    """Background read-back of files as they are written. Use as a context manager.

    Two threads form a pipeline behind the writer: one forces written ranges to the device
    (``fdatasync``, ``fsync`` for a finished file), the other drops each synced range from the
    cache and reads it back, so waiting for the device and hashing overlap.
    """

    def __init__(self, *, window: int = WINDOW_BYTES) -> None:
        self.window = window
        self._to_sync: queue.Queue[Job | None] = queue.Queue()
        self._to_verify: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._verified_bytes = 0
        self._error: BaseException | None = None
        self._open: list[TrackedFile] = []
        self.results: list[ReadBackResult] = []
        self._threads = [
            threading.Thread(target=self._sync_loop, name="airseal-sync", daemon=True),
            threading.Thread(target=self._verify_loop, name="airseal-readback", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def __enter__(self) -> ReadBack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()

    @property
    def verified_bytes(self) -> int:
        with self._lock:
            return self._verified_bytes

    def check(self) -> None:
        """Raise the read-back's first error in the writer's thread, if there was one."""
        if self._error is not None:
            raise self._error

    def track(
        self, path: Path, write_fd: int, label: str, *, whole: hashlib._Hash | None = None
    ) -> TrackedFile:
        """Follow a file being written; ``whole`` also hashes what is read back (in order)."""
        tracked = TrackedFile(path, label, write_fd, whole=whole)
        self._open.append(tracked)
        return tracked

    def written(self, tracked: TrackedFile, upto: int) -> None:
        """Bytes ``[0, upto)`` of ``tracked`` have been written: sync and verify them."""
        self.check()
        self._to_sync.put((tracked, upto, -1, ""))

    def finish(self, tracked: TrackedFile, size: int, sha256: str | None) -> None:
        """The file is complete with ``size`` bytes hashing to ``sha256``; the read-back takes
        over its descriptor, fsyncs, closes and compares. With ``sha256=None`` (the writer did
        not hash: the caller checks the read-back digest against one it knows) it only records
        what it read."""
        self.check()
        self._to_sync.put((tracked, size, size, sha256))

    def _alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def drain(self, on_wait: Callable[[], None] | None = None) -> list[ReadBackResult]:
        """Wait until every file handed over is verified; ``on_wait`` runs while waiting."""
        self._to_sync.put(None)
        while self._alive():
            self._threads[-1].join(0.1)
            if on_wait is not None:
                on_wait()
        self.check()
        return self.results

    def abort(self) -> None:
        """Stop, and close every descriptor still open (used on errors and at exit)."""
        if self._alive():
            self._error = self._error or MediaWriteError("export aborted")
            self._to_sync.put(None)
            for thread in self._threads:
                thread.join()
        for tracked in self._open:
            for attr in ("write_fd", "read_fd"):
                fd = getattr(tracked, attr)
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
                    setattr(tracked, attr, -1)

    # -- the threads ---------------------------------------------------------------------------

    def _sync_loop(self) -> None:
        while True:
            job = self._to_sync.get()
            if job is None:
                self._to_verify.put(None)
                return
            if self._error is None:
                tracked, _upto, final_size, _sha = job
                sync = os.fsync if final_size >= 0 else getattr(os, "fdatasync", os.fsync)
                try:
                    sync(tracked.write_fd)
                except OSError as exc:
                    if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
                        self._error = MediaWriteError(
                            f"fsync failed: {exc.strerror}", subject=tracked.label
                        )
            self._to_verify.put(job)

    def _verify_loop(self) -> None:
        buffer = chunk_buffer(CHUNK_SIZE)
        while True:
            job = self._to_verify.get()
            if job is None:
                return
            if self._error is not None:
                continue
            tracked, upto, final_size, sha256 = job
            try:
                self._verify_range(tracked, upto, buffer)
                if final_size >= 0:
                    self._finish(tracked, final_size, sha256, buffer)
            except BaseException as exc:  # handed to the writer's thread by check()
                self._error = exc

    def _verify_range(self, tracked: TrackedFile, upto: int, buffer: memoryview) -> None:
        # A fresh descriptor for every range: fusefat refuses (EPERM) reads beyond the size the
        # file had when a descriptor was opened, so one descriptor kept across windows failed
        # every FAT32 export of a payload above one window (32 MiB). One open per window.
        if tracked.read_fd >= 0:
            os.close(tracked.read_fd)
            tracked.read_fd = -1
        tracked.read_fd = os.open(
            tracked.path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY
        )
        start = tracked.verified
        if upto > start:
            _drop_cache(tracked.read_fd, start, upto - start)
        while tracked.verified < upto:
            want = min(len(buffer), upto - tracked.verified)
            n = os.preadv(tracked.read_fd, [buffer[:want]], tracked.verified)
            if n <= 0:
                raise ReadBackMismatch(
                    f"the file ends after {tracked.verified} bytes; {upto} were written",
                    subject=tracked.label,
                )
            tracked.digest.update(buffer[:n])
            if tracked.whole is not None:
                tracked.whole.update(buffer[:n])
            tracked.verified += n
            with self._lock:
                self._verified_bytes += n

    def _finish(
        self, tracked: TrackedFile, size: int, sha256: str | None, buffer: memoryview
    ) -> None:
        extra = os.preadv(tracked.read_fd, [buffer[:1]], tracked.verified)
        os.close(tracked.write_fd)
        tracked.write_fd = -1
        os.close(tracked.read_fd)
        tracked.read_fd = -1
        tracked.finished = True
        if extra:
            raise ReadBackMismatch(
                f"the file is longer than the {size} bytes written", subject=tracked.label
            )
        actual = tracked.digest.hexdigest()
        if sha256 is not None and actual != sha256:
            raise ReadBackMismatch(
                f"read back sha256 {actual}, wrote {sha256}", subject=tracked.label
            )
        self.results.append(ReadBackResult(tracked.label, size, actual))
