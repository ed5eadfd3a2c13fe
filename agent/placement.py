"""Download actions: a verified payload placed at its destination, atomically, with its mode
and owner, in the folder the signed path names and nowhere else.

A batch of downloads is placed in three steps so that durability costs two flushes per batch,
not two per file: every payload is first copied into a temporary file beside its destination
(hashed on the way: the last integrity check, immediately before use) with its mode and owner
set; then everything is flushed to disk once; then each temporary file is renamed over its
destination (atomic: the destination holds the old file or the whole new one, never half) and
the folders are flushed. A failure leaves no temporary file behind; a kill leaves the ones the
placement ledger (:mod:`airseal.agent.leftovers`) recorded before they were made.

On POSIX every step reaches the folder through :func:`airseal.agent.destinations.open_folder`
(no link the endpoint's policy forbids, ever) and works relative to its descriptor; on Windows
by path, as before (see :mod:`airseal.agent.destinations`). A batch passes an
:class:`airseal.agent.destinations.OpenFolders` so that each folder is walked once and its
descriptor kept for the copy, the rename and the flush (why that is as safe: its docstring).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from airseal.agent.destinations import (
    DestinationPolicy,
    OpenFolders,
    check_roots,
    open_folder,
    safe_walk_supported,
    unlink_in,
)
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

_NEW_FILE_AT = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

# As airseal._internal.atomic.fsync_dir: filesystems that cannot flush a folder are not failing.
_FSYNC_UNSUPPORTED = frozenset(
    {errno.EINVAL, errno.EBADF, errno.EROFS, errno.ENOTSUP, errno.EACCES}
)


@dataclass(frozen=True)
class PreparedDownload:
    """A verified copy waiting beside its destination for the rename."""

    folder: str
    """The destination's folder as signed (walked again for every later step, or reached
    through the batch's :class:`OpenFolders`)."""
    name: str
    temporary_name: str
    policy: DestinationPolicy

    @property
    def destination(self) -> Path:
        return Path(self.folder) / self.name

    @property
    def temporary(self) -> Path:
        return Path(self.folder) / self.temporary_name


def temporary_name(name: str) -> str:
    """The hidden name a payload is written under before the rename (recorded in the placement
    ledger first, so that only files the agent made are ever cleaned up)."""
    return f".{name}.airseal-{secrets.token_hex(6)}.tmp"


def _by_descriptor(os_name: OperatingSystem) -> bool:
    return os_name != "windows" and safe_walk_supported()


def _account_ids(owner: str) -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam(owner)
    except KeyError:
        raise ActionFailed(f"account {owner!r} does not exist on this endpoint") from None
    return entry.pw_uid, entry.pw_gid


def check_destination(
    options: DownloadOptions,
    os_name: OperatingSystem,
    policy: DestinationPolicy,
    *,
    action: str,
    subject: str,
    walk: bool = True,
    folders: OpenFolders | None = None,
) -> None:
    """Refuse, before anything is written, a destination that is unsafe, outside the allowed
    roots, or (``walk``) reached through a link already there that the policy forbids (the
    folder walked through ``folders`` when given: once per folder for a whole batch)."""
    problem = destination_problem(options.dest, os_name)
    if problem is not None:
        raise UnsafeDestination(f"download destination {options.dest!r} {problem}", subject=subject)
    check_roots(options.dest, policy, os_name, action=action, subject=subject)
    if not walk or not _by_descriptor(os_name):
        return
    parent, name = split_destination(options.dest, os_name)
    try:
        if folders is None:
            opened = open_folder(parent, policy, create=False, dest=options.dest, subject=subject)
        else:
            opened = folders.get(parent, create=False, dest=options.dest, subject=subject)
    except ActionFailed:
        return  # not the policy's business: the placement reports it as the action's failure
    if opened is not None:
        fd, reached = opened
        if folders is None:
            os.close(fd)
        if reached != parent:
            check_roots(f"{reached}/{name}", policy, os_name, action=action, subject=subject)


def prepare_download(
    staged: StagedPayload,
    options: DownloadOptions,
    os_name: OperatingSystem,
    *,
    privileged: bool,
    subject: str,
    action: str = "",
    policy: DestinationPolicy | None = None,
    temporary: str | None = None,
    folders: OpenFolders | None = None,
    buffer: memoryview | None = None,
) -> PreparedDownload:
    """Copy the staged payload beside its destination, verified, with mode and owner set
    (the folder reached through ``folders`` when given, else walked here; read through
    ``buffer`` when given)."""
    policy = policy or DestinationPolicy()
    action = action or staged.action_id
    check_destination(options, os_name, policy, action=action, subject=subject, walk=False)
    problem = owner_problem(os_name, options.owner, privileged=privileged)
    if problem is not None:
        raise ActionFailed(problem, subject=options.dest)
    ids = _account_ids(options.owner) if options.owner else None
    parent, name = split_destination(options.dest, os_name)
    prepared = PreparedDownload(parent, name, temporary or temporary_name(name), policy)
    owned = folders is None
    if _by_descriptor(os_name):
        if folders is None:
            opened = open_folder(parent, policy, create=True, dest=options.dest, subject=subject)
        else:
            opened = folders.get(parent, create=True, dest=options.dest, subject=subject)
        assert opened is not None
        folder_fd, reached = opened
        if reached != parent:
            try:
                check_roots(f"{reached}/{name}", policy, os_name, action=action, subject=subject)
            except BaseException:
                if owned:
                    os.close(folder_fd)
                raise
    else:  # pragma: no cover - Windows: by path, as before
        folder_fd = -1
        try:
            Path(parent).mkdir(parents=True, exist_ok=True, mode=0o755)
        except OSError as exc:
            raise ActionFailed(
                f"cannot create the folder {parent}: {exc.strerror}", subject=options.dest
            ) from None
    try:
        fd = _create_temporary(prepared, folder_fd, options.dest)
    finally:
        if folder_fd >= 0 and owned:
            os.close(folder_fd)
    try:
        copy_verified(staged, fd, buffer=buffer)
        if file_mode_applies(os_name):
            os.fchmod(fd, int(options.file_mode, 8))
        if ids is not None:
            os.fchown(fd, *ids)
    except BaseException:
        os.close(fd)
        discard(prepared)
        raise
    os.close(fd)
    return prepared


def _create_temporary(prepared: PreparedDownload, folder_fd: int, dest: str) -> int:
    try:
        if folder_fd >= 0:
            existing = os.stat(prepared.name, dir_fd=folder_fd, follow_symlinks=False)
        else:  # pragma: no cover - Windows
            existing = os.lstat(prepared.destination)
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise ActionFailed(
            f"cannot look at the destination: {exc.strerror}", subject=dest
        ) from None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise ActionFailed("the destination is a folder", subject=dest)
    try:
        if folder_fd >= 0:
            return os.open(prepared.temporary_name, _NEW_FILE_AT, 0o600, dir_fd=folder_fd)
        return new_file(prepared.temporary, 0o600)  # pragma: no cover - Windows
    except OSError as exc:
        raise ActionFailed(
            f"cannot write in {prepared.folder}: {exc.strerror}", subject=dest
        ) from None


def flush_everything(files: Sequence[Path] = ()) -> None:
    """Make written data durable: one ``sync()`` on POSIX, per-file flushes elsewhere."""
    if hasattr(os, "sync"):
        os.sync()
        return
    for path in files:  # pragma: no cover - Windows
        with contextlib.suppress(OSError), open(path, "rb+") as handle:
            os.fsync(handle.fileno())


def _reopen(prepared: PreparedDownload, folders: OpenFolders | None) -> tuple[int, bool]:
    """The destination's folder again: the batch's descriptor, else walked as before (a link
    planted since is refused). Also whether the caller owns (closes) the descriptor."""
    where = str(prepared.destination)
    if folders is not None:
        opened = folders.get(prepared.folder, create=False, dest=where, subject=where)
    else:
        opened = open_folder(
            prepared.folder, prepared.policy, create=False, dest=where, subject=where
        )
    if opened is None:
        raise ActionFailed("the destination's folder disappeared", subject=prepared.folder)
    return opened[0], folders is None


def commit(prepared: PreparedDownload, folders: OpenFolders | None = None) -> None:
    """Rename the verified copy over the destination (atomic)."""
    if not safe_walk_supported():  # pragma: no cover - Windows
        try:
            os.replace(prepared.temporary, prepared.destination)
        except OSError as exc:
            discard(prepared)
            raise ActionFailed(
                f"cannot place the file: {exc.strerror}", subject=str(prepared.destination)
            ) from None
        return
    try:
        fd, owned = _reopen(prepared, folders)
    except UnsafeDestination as exc:
        # A link appeared on the way since the copy was made: the copy stays where it is (the
        # ledger names it for the next start) and the destination is left alone.
        raise ActionFailed(exc.detail, subject=str(prepared.destination)) from None
    try:
        os.replace(prepared.temporary_name, prepared.name, src_dir_fd=fd, dst_dir_fd=fd)
    except OSError as exc:
        discard(prepared)
        raise ActionFailed(
            f"cannot place the file: {exc.strerror}", subject=str(prepared.destination)
        ) from None
    finally:
        if owned:
            os.close(fd)


def flush_folders(
    prepared: Sequence[PreparedDownload], folders: OpenFolders | None = None
) -> None:
    """Make the renames durable: each destination folder flushed once."""
    from airseal._internal.atomic import fsync_dir

    by_folder = {p.folder: p for p in prepared}
    for folder in sorted(by_folder):
        if not safe_walk_supported():  # pragma: no cover - Windows
            fsync_dir(Path(folder))
            continue
        try:
            fd, owned = _reopen(by_folder[folder], folders)
        except (ActionFailed, UnsafeDestination):
            continue
        try:
            os.fsync(fd)
        except OSError as exc:
            if exc.errno not in _FSYNC_UNSUPPORTED:
                raise
        finally:
            if owned:
                os.close(fd)


def discard(prepared: PreparedDownload) -> None:
    unlink_in(prepared.folder, prepared.temporary_name, prepared.policy)
