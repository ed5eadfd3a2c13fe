"""Where a download may go: the endpoint's destination policy, and the walk to the destination's
folder that never follows a link the policy does not allow.

A root agent that resolved ``/srv/drop/linkdir/p.txt`` by path would write wherever a local
user pointed ``linkdir``. So the destination's folder is reached from ``/`` one component at a
time, each opened relative to the one before with ``O_NOFOLLOW | O_DIRECTORY`` (missing folders
are created at that folder's descriptor), and the file is then placed relative to the final
folder's descriptor (:mod:`airseal.agent.placement`). A component that is a link is refused
(:class:`DestinationThroughLink`, naming the link) unless the endpoint's policy allows it:

``refuse``      (default) no link anywhere on the way;
``root-owned``  only links nobody but root could have planted: owned by root, in a folder only
                root may write (``/bin -> usr/bin``, macOS's ``/etc -> private/etc``); the
                link's target is then walked the same way;
``follow``      any link (today's behaviour before this policy existed), still walked.

The allowed roots (:class:`DestinationPolicy`) are absolute folders a download must stay below,
checked on the signed destination before anything is written and again on the folder the walk
really reached. No roots set means any absolute path, as before the policy existed: a default
list would have to guess each site's layout, and an endpoint shows "any folder" loudly.

Windows has no ``O_NOFOLLOW`` for folders and no ``openat``: there the folder is created and
used by path, as before (:func:`safe_walk_supported`); its junctions need administrator rights
to create in the places an agent writes to.
"""

from __future__ import annotations

import contextlib
import errno
import ntpath
import os
import posixpath
import stat
from collections import deque
from dataclasses import dataclass
from typing import Literal, get_args

from airseal.agent.errors import ActionFailed, DestinationOutsidePolicy, DestinationThroughLink
from airseal.agent.platforms import OperatingSystem

LinkPolicy = Literal["refuse", "root-owned", "follow"]
LINK_POLICIES: tuple[str, ...] = get_args(LinkPolicy)
MAX_LINK_HOPS = 40
"""As the kernel's own limit on links in one path (ELOOP)."""

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_OPEN_FOLDER = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC


@dataclass(frozen=True)
class DestinationPolicy:
    """What an administrator allows downloads to do on this endpoint."""

    allowed_roots: tuple[str, ...] = ()
    links: LinkPolicy = "refuse"

    def describe_roots(self) -> str:
        return ", ".join(self.allowed_roots) if self.allowed_roots else "any folder (no roots set)"


def safe_walk_supported() -> bool:
    """Whether folders can be opened without following links and used by descriptor here."""
    return bool(_O_NOFOLLOW and _O_DIRECTORY) and os.open in os.supports_dir_fd


def root_problem(root: str, os_name: OperatingSystem) -> str | None:
    """Why ``root`` cannot be an allowed destination root, or ``None``."""
    if "\x00" in root or len(root) > 4096:
        return "is not a path"
    if os_name == "windows":
        if not (len(root) >= 3 and root[0].isalpha() and root[1:3] == ":\\"):
            return "is not an absolute Windows path (C:\\...)"
        parts = root[3:].split("\\")
    else:
        if not root.startswith("/"):
            return "is not an absolute path"
        parts = root[1:].split("/")
    parts = parts[:-1] if parts and parts[-1] == "" else parts
    if any(p in ("", ".", "..") for p in parts):
        return "has an empty, '.' or '..' component"
    return None


def _components(path: str, os_name: OperatingSystem) -> list[str]:
    if os_name == "windows":
        return [p.casefold() for p in ntpath.normpath(path).split("\\") if p]
    return [p for p in posixpath.normpath(path).split("/") if p]


def within_roots(path: str, roots: tuple[str, ...], os_name: OperatingSystem) -> bool:
    """Whether ``path`` lies below a root (component-wise, never by string prefix; ignoring
    case on Windows). No roots: everything is within."""
    if not roots:
        return True
    parts = _components(path, os_name)
    for root in roots:
        wanted = _components(root, os_name)
        if len(parts) > len(wanted) and parts[: len(wanted)] == wanted:
            return True
    return False


def check_roots(
    dest: str, policy: DestinationPolicy, os_name: OperatingSystem, *, action: str, subject: str
) -> None:
    """Refuse a destination outside the allowed roots (a pure check on the signed path)."""
    if not within_roots(dest, policy.allowed_roots, os_name):
        raise DestinationOutsidePolicy(
            f"action {action} downloads to {dest!r}, outside this endpoint's allowed "
            f"destination roots ({policy.describe_roots()}; policy destination.allowed-roots)",
            subject=subject,
        )


def _link_allowed(policy: LinkPolicy, link: os.stat_result, folder: os.stat_result) -> bool:
    if policy == "follow":
        return True
    if policy == "root-owned":
        return link.st_uid == 0 and folder.st_uid == 0 and not folder.st_mode & 0o022
    return False


def open_folder(
    folder: str, policy: DestinationPolicy, *, create: bool, dest: str, subject: str
) -> tuple[int, str] | None:
    """Open the absolute POSIX ``folder`` without following a link the policy forbids.

    Returns the folder's descriptor (the caller closes it) and the path the walk really
    reached; ``None`` when ``create`` is false and a component does not exist yet (nothing
    below it can be a link). Raises :class:`DestinationThroughLink` naming the link, or
    :class:`ActionFailed` when a component is a file or cannot be created.
    """
    pending = deque(p for p in folder.split("/") if p)
    stack = [os.open("/", os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)]
    walked: list[str] = []
    hops = 0
    try:
        while pending:
            part = pending.popleft()
            if part in ("", "."):
                continue
            if part == "..":  # only from a link's target
                if len(stack) > 1:
                    os.close(stack.pop())
                    walked.pop()
                continue
            here = "/" + "/".join([*walked, part])
            try:
                child = _open_child(stack[-1], part, create=create, here=here, dest=dest)
            except _IsLink:
                link = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
                if not _link_allowed(policy.links, link, os.fstat(stack[-1])):
                    target = os.readlink(part, dir_fd=stack[-1])
                    raise DestinationThroughLink(
                        f"download destination {dest!r}: {here} is a symbolic link (to "
                        f"{target!r}); the endpoint policy destination.links={policy.links} "
                        "does not follow it",
                        subject=subject,
                    ) from None
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise ActionFailed(
                        f"more than {MAX_LINK_HOPS} links on the way to {dest!r}", subject=dest
                    ) from None
                target = os.readlink(part, dir_fd=stack[-1])
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                    walked.clear()
                pending.extendleft(reversed([p for p in target.split("/") if p]))
                continue
            if child is None:
                return None
            stack.append(child)
            walked.append(part)
        result = stack.pop()
        return result, "/" + "/".join(walked)
    finally:
        for fd in stack:
            os.close(fd)


class OpenFolders:
    """Destination folders walked once per batch of downloads and then used by descriptor.

    :func:`open_folder` costs one ``open`` per path component; a batch that walked every
    destination's folder again for each step (copy, rename, flush) spent most of its system
    calls there. Here each folder is walked from ``/`` once, exactly as :func:`open_folder` does
    (the policy's links only, never a forbidden one), and the descriptor is kept for the rest of
    the batch: the copy is created with ``openat(fd, name, O_CREAT | O_EXCL | O_NOFOLLOW)``, the
    rename and the folder's flush go through the same descriptor.

    Why keeping the descriptor is as safe as walking again: a descriptor names the folder
    itself (its inode), not the path that led to it. Once it was reached without a forbidden
    link, swapping a component above it for a link later (``/srv/drop -> /etc``) changes what
    the path means, not what the descriptor is; the file still lands in the folder the walk
    checked. Walking again would only re-check a path the agent no longer uses. What a later
    swap can do is move the folder itself somewhere else, which needs write access to its
    parent and to the new parent: the file then lands in a folder that user could have written
    into anyway, exactly as when the swap happens between a walk and its use. A folder that was
    missing (``create=False``) is not remembered, so a later step walks for it again.

    At most ``limit`` descriptors stay open (the oldest is closed first and walked again if it
    is needed again), so a batch with thousands of folders cannot exhaust the process's files.

    ``remember_missing`` (the check before anything is written, never the placement): a folder
    found missing stays missing for the rest of the batch instead of being walked again for
    every download into it; the placement walks for it anyway, creating it, under the same
    policy.
    """

    def __init__(
        self, policy: DestinationPolicy, *, limit: int = 256, remember_missing: bool = False
    ) -> None:
        self.policy = policy
        self.limit = limit
        self._open: dict[str, tuple[int, str]] = {}
        self._missing: set[str] | None = set() if remember_missing else None

    def get(
        self, folder: str, *, create: bool, dest: str, subject: str
    ) -> tuple[int, str] | None:
        """As :func:`open_folder`, but the descriptor belongs to this object (do not close
        it; it is valid until the next :meth:`get` or :meth:`close`)."""
        known = self._open.get(folder)
        if known is not None:
            return known
        if self._missing is not None and not create and folder in self._missing:
            return None
        opened = open_folder(folder, self.policy, create=create, dest=dest, subject=subject)
        if opened is None:
            if self._missing is not None:
                self._missing.add(folder)
            return None
        while len(self._open) >= self.limit:
            oldest = next(iter(self._open))
            os.close(self._open.pop(oldest)[0])
        self._open[folder] = opened
        return opened

    def close(self) -> None:
        while self._open:
            _, (fd, _) = self._open.popitem()
            os.close(fd)

    def __enter__(self) -> OpenFolders:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class _IsLink(Exception):
    pass


def _open_child(parent: int, name: str, *, create: bool, here: str, dest: str) -> int | None:
    for _attempt in range(3):
        try:
            return os.open(name, _OPEN_FOLDER, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                return None
            try:
                os.mkdir(name, 0o755, dir_fd=parent)
            except FileExistsError:
                continue  # appeared meanwhile: look at it again
            except OSError as exc:
                raise ActionFailed(
                    f"cannot create the folder {here}: {exc.strerror}", subject=dest
                ) from None
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                raise ActionFailed(
                    f"cannot open the folder {here}: {exc.strerror}", subject=dest
                ) from None
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                raise _IsLink from None
            raise ActionFailed(f"{here} is not a folder", subject=dest) from None
    raise ActionFailed(f"{here} keeps changing while it is opened", subject=dest)


def unlink_in(folder: str, name: str, policy: DestinationPolicy) -> bool:
    """Remove the regular file ``name`` from ``folder`` (reached as :func:`open_folder` does);
    whether it was there. Never removes a folder or a link, never follows a forbidden link."""
    if not safe_walk_supported():  # pragma: no cover - Windows
        path = os.path.join(folder, name)
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(path).st_mode):
                os.unlink(path)
                return True
        return False
    try:
        opened = open_folder(folder, policy, create=False, dest=folder, subject=folder)
    except (ActionFailed, DestinationThroughLink, OSError):
        return False
    if opened is None:
        return False
    fd, _ = opened
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            return False
        os.unlink(name, dir_fd=fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
