"""Download actions: a verified payload placed at its destination, atomically, with its mode
and owner.

A batch of downloads is placed in three steps so that durability costs two flushes per batch,
not two per file: every payload is first copied into a temporary file beside its destination
(hashed on the way: the last integrity check, immediately before use) with its mode and owner
set; then everything is flushed to disk once; then each temporary file is renamed over its
destination (atomic: the destination holds the old file or the whole new one, never half) and
the folders are flushed. A failure leaves no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from airseal._internal.atomic import fsync_dir
from airseal.agent.errors import ActionFailed, UnsafeDestination
from airseal.agent.platforms import (
    OperatingSystem,
    destination_problem,
    file_mode_applies,
    owner_problem,
    split_destination,
)
from airseal.agent.staging import StagedPayload, copy_verified, new_file
from airseal.media.statement import DownloadOptions


@dataclass(frozen=True)
class PreparedDownload:
    """A verified copy waiting beside its destination for the rename."""

    temporary: Path
    destination: Path


def _account_ids(owner: str) -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam(owner)
    except KeyError:
        raise ActionFailed(f"account {owner!r} does not exist on this endpoint") from None
    return entry.pw_uid, entry.pw_gid


def prepare_download(
    staged: StagedPayload,
    options: DownloadOptions,
    os_name: OperatingSystem,
    *,
    privileged: bool,
    subject: str,
) -> PreparedDownload:
    """Copy the staged payload beside its destination, verified, with mode and owner set."""
    problem = destination_problem(options.dest, os_name)
    if problem is not None:
        raise UnsafeDestination(f"download destination {options.dest!r} {problem}", subject=subject)
    problem = owner_problem(os_name, options.owner, privileged=privileged)
    if problem is not None:
        raise ActionFailed(problem, subject=options.dest)
    ids = _account_ids(options.owner) if options.owner else None
    parent_text, name = split_destination(options.dest, os_name)
    parent = Path(parent_text)
    destination = parent / name
    try:
        parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    except OSError as exc:
        raise ActionFailed(
            f"cannot create the folder {parent}: {exc.strerror}", subject=options.dest
        ) from None
    try:
        existing = os.lstat(destination)
    except FileNotFoundError:
        existing = None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise ActionFailed("the destination is a folder", subject=options.dest)
    temporary = parent / f".{name}.airseal-{secrets.token_hex(6)}.tmp"
    try:
        fd = new_file(temporary, 0o600)
    except OSError as exc:
        raise ActionFailed(
            f"cannot write in {parent}: {exc.strerror}", subject=options.dest
        ) from None
    try:
        copy_verified(staged, fd)
        if file_mode_applies(os_name):
            os.fchmod(fd, int(options.file_mode, 8))
        if ids is not None:
            os.fchown(fd, *ids)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    os.close(fd)
    return PreparedDownload(temporary, destination)


def flush_everything(files: Sequence[Path] = ()) -> None:
    """Make written data durable: one ``sync()`` on POSIX, per-file flushes elsewhere."""
    if hasattr(os, "sync"):
        os.sync()
        return
    for path in files:  # pragma: no cover - Windows
        with contextlib.suppress(OSError), open(path, "rb+") as handle:
            os.fsync(handle.fileno())


def commit(prepared: PreparedDownload) -> None:
    """Rename the verified copy over the destination (atomic)."""
    try:
        os.replace(prepared.temporary, prepared.destination)
    except OSError as exc:
        discard(prepared)
        raise ActionFailed(
            f"cannot place the file: {exc.strerror}", subject=str(prepared.destination)
        ) from None


def flush_folders(prepared: Sequence[PreparedDownload]) -> None:
    for folder in sorted({p.destination.parent for p in prepared}):
        fsync_dir(folder)


def discard(prepared: PreparedDownload) -> None:
    with contextlib.suppress(OSError):
        os.unlink(prepared.temporary)
