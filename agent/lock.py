"""One agent command at a time changes the state: an advisory lock on ``<state>/agent.lock``.

Two sticks inserted together start two imports (udev); the second waits for nothing and fails
fast with :class:`AgentBusy`. Holding the lock is also what lets a command tell a crashed run
(marked started, no process holding the lock) from one still going.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType

from airseal.agent.errors import AgentBusy, StateError


class StateLock:
    """An exclusive, non-blocking lock; released on exit or when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateError(
                f"cannot open the lock file: {exc.strerror}", subject=str(self.path)
            ) from None
        try:
            _lock(fd)
        except BlockingIOError:
            os.close(fd)
            raise AgentBusy(
                "another airseal-agent command is running", subject=str(self.path)
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StateError(f"cannot lock: {exc.strerror}", subject=str(self.path)) from None
        self._fd = fd

    def try_acquire(self) -> bool:
        try:
            self.acquire()
        except AgentBusy:
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            try:
                _unlock(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows endpoints
    import msvcrt

    def _lock(fd: int) -> None:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            raise BlockingIOError(str(exc)) from None

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
