"""Running a verified program: as a given account, with a timeout, with bounded output.

The child gets a small fixed environment (:func:`airseal.agent.platforms.run_environment`: nothing
of the
agent's, certainly not its key password), no standard input, and its own session (POSIX) or
process group (Windows) so a timeout stops the whole tree. Output (stdout and stderr together) is
read as it comes and kept bounded: the first and the last ``OUTPUT_HEAD``/``OUTPUT_TAIL`` bytes,
with the number of bytes left out in between, so a chatty or hostile program cannot fill memory
or the journal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from airseal.agent.errors import ActionFailed

OUTPUT_HEAD = 32 * 1024
OUTPUT_TAIL = 32 * 1024
KILL_GRACE_SECONDS = 5.0
PIPE_DRAIN_SECONDS = 2.0


@dataclass(frozen=True)
class Account:
    """A POSIX account to run as, resolved on this endpoint."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


@dataclass(frozen=True)
class RunResult:
    exit_code: int | None
    timed_out: bool
    output: str
    output_bytes: int
    seconds: float


class BoundedOutput:
    """Keeps the head and the tail of a stream of bytes, and counts the rest."""

    def __init__(self, head: int = OUTPUT_HEAD, tail: int = OUTPUT_TAIL) -> None:
        self._head_limit, self._tail_limit = head, tail
        self._head = bytearray()
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self._lock = threading.Lock()
        self.total = 0

    def feed(self, data: bytes) -> None:
        with self._lock:
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if not data:
            return
        self._tail.append(data)
        self._tail_size += len(data)
        while self._tail and self._tail_size - len(self._tail[0]) >= self._tail_limit:
            self._tail_size -= len(self._tail.popleft())

    def text(self) -> str:
        with self._lock:
            head, total = bytes(self._head), self.total
            tail = b"".join(self._tail)[-self._tail_limit :] if self._tail else b""
        omitted = total - len(head) - len(tail)
        middle = f"\n[... {omitted} bytes omitted ...]\n".encode() if omitted > 0 else b""
        return (head + middle + tail).decode("utf-8", errors="replace")


def resolve_account(name: str) -> Account:
    """Look an account up (POSIX); its supplementary groups too, as ``login`` would set them."""
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ActionFailed(f"account {name!r} does not exist on this endpoint") from None
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir)


def current_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def is_privileged() -> bool:
    """Root on POSIX. (On Windows the service account decides; run-as is refused there.)"""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def chown_tree(root: Path, account: Account) -> None:
    """Give a folder and everything in it to ``account`` (links themselves, never followed)."""
    os.chown(root, account.uid, account.gid)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.chown(os.path.join(folder, name), account.uid, account.gid, follow_symlinks=False)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the whole process tree: TERM, a grace period, then KILL."""
    if os.name == "nt":  # pragma: no cover - Windows
        subprocess.run(
            ["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True, check=False
        )
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=KILL_GRACE_SECONDS)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_program(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    account: Account | None,
    timeout: float,
) -> RunResult:
    """Run ``argv`` to completion or timeout; never raises for what the program does."""
    output = BoundedOutput()
    kwargs: dict[str, object] = {}
    if os.name == "nt":  # pragma: no cover - Windows
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    else:
        kwargs["start_new_session"] = True
        if account is not None:
            kwargs.update(user=account.uid, group=account.gid, extra_groups=list(account.groups))
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            **kwargs,  # type: ignore[call-overload]
        )
    except OSError as exc:
        raise ActionFailed(
            f"could not start {argv[0]}: {exc.strerror or exc}", subject=str(argv[0])
        ) from None
    assert process.stdout is not None
    stream = process.stdout
    fd = stream.fileno()

    def pump() -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(fd, 64 * 1024):
                output.feed(chunk)

    reader = threading.Thread(target=pump, name="airseal-output", daemon=True)
    reader.start()
    timed_out = False
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _stop(process)
    except BaseException:
        _stop(process)
        raise
    reader.join(PIPE_DRAIN_SECONDS)
    if not reader.is_alive():
        stream.close()
    # else: a background child the program left behind still holds the pipe open; the reader
    # (a daemon thread) keeps draining it, and the result is taken without waiting for it.
    return RunResult(
        exit_code=None if timed_out else process.returncode,
        timed_out=timed_out,
        output=output.text(),
        output_bytes=output.total,
        seconds=time.monotonic() - started,
    )


def run_reboot(argv: Sequence[str]) -> str | None:
    """Start the configured reboot command; ``None`` when it ran, else why it did not."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, timeout=120, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{argv[0]}: {exc}"
    if done.returncode != 0:
        return (
            f"{argv[0]} exited with {done.returncode}: {done.stderr.decode(errors='replace')[:200]}"
        )
    return None
