"""Safe extraction of tar and zip payloads.

The member list is judged first, as a pure decision (:func:`check_members`), and only a list
that passes is extracted; extraction writes every file itself (never ``extractall``) into a
fresh private folder. Refused, for every member:

- absolute names, drive letters, backslashes, ``..`` or empty components, NUL;
- devices, fifos and anything that is not a file, folder or link;
- symbolic links whose target is absolute, leaves the extraction folder, or passes through
  another link (link chains can escape where each link alone looks contained); any member
  *below* a link (it would be written through the link). Links are created last;
- hard links (tar) to anything but an earlier regular file member (they are extracted as copies);
- two members with the same name (ignoring case on macOS and Windows, whose filesystems do);
- more members, bigger members or more bytes in total than the limits; sizes are enforced on
  the bytes actually written, not only on what the headers claim (zip bombs);
- on Windows, any link (creating one needs a privilege and they are rarely meant), and names
  Windows cannot hold (``CON``, ``a:b``, trailing dots).

Set-id and sticky bits are dropped; the file to run is made executable by its owner.

Before anything is written the target filesystem must have room for every byte the headers
declare plus a margin (:func:`check_space`): a bomb within the limits fails as an action
(a full disk is not the media's fault) instead of filling the agent's state filesystem.
"""

from __future__ import annotations

import functools
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Literal

from airseal.agent.errors import InsufficientSpace, UnsafeArchive
from airseal.agent.platforms import OperatingSystem
from airseal.media.names import collision_key, name_problem

ArchiveKind = Literal["tar", "zip"]
MemberKind = Literal["file", "dir", "symlink", "hardlink", "other"]

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz")
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_UNREADABLE: tuple[type[Exception], ...] = (
    tarfile.TarError,
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    NotImplementedError,  # zip versions and compression methods zipfile does not know
    RuntimeError,  # encrypted zip members
)
"""What the standard library raises for archives it cannot read."""
_UNREADABLE_HEADERS: tuple[type[Exception], ...] = (*_UNREADABLE, OSError, ValueError)
"""Reading headers writes nothing, so an OSError there is the archive's (a bad gzip or bz2)."""
CHUNK = 1024 * 1024
MAX_LINK_TARGET = 4096
MAX_NAME = 4096
MAX_DEPTH = 32
SPACE_MARGIN_BYTES = 16 * 1024 * 1024
"""Room left free after an extraction: the journal, the receipt and the system need some."""
BLOCK_BYTES = 4096
"""What every member costs at least on disk (its last partial block, its inode)."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 20_000
    max_member_bytes: int = 8 * 1024**3
    max_total_bytes: int = 16 * 1024**3


@dataclass(frozen=True)
class Member:
    """An archive member as read from its header, before any judgement."""

    name: str
    kind: MemberKind
    size: int = 0
    mode: int | None = None
    link_target: str | None = None
    index: int = 0


@dataclass(frozen=True)
class CheckedMember:
    """A member cleared for extraction; ``path`` is normalised ('/'-separated, relative)."""

    member: Member
    path: str
    mode: int
    link_path: str | None = None
    """For hard links: the normalised path of the file it copies."""


def archive_kind(payload_name: str) -> ArchiveKind | None:
    """``tar`` (plain or gzip/bzip2/xz), ``zip``, or ``None``: judged by the signed name."""
    lower = payload_name.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith(_TAR_SUFFIXES):
        return "tar"
    return None


def normalise_name(name: str, os_name: OperatingSystem) -> tuple[str, ...] | str:
    """The member's path components, or the reason it is unsafe (a ``str``)."""
    if not name:
        return "has an empty name"
    if "\x00" in name:
        return "contains a NUL character"
    if len(name) > MAX_NAME:
        return f"name is longer than {MAX_NAME} characters"
    if "\\" in name:
        return "contains a backslash (a Windows path separator)"
    if name.startswith("/"):
        return "is an absolute path"
    if len(name) >= 2 and name[1] == ":" and name[0].isalpha():
        return "starts with a drive letter"
    trimmed = name[2:] if name.startswith("./") else name
    trimmed = trimmed.rstrip("/")
    if not trimmed or trimmed == ".":
        return ()
    parts = tuple(trimmed.split("/"))
    if len(parts) > MAX_DEPTH:
        return f"is nested deeper than {MAX_DEPTH} folders"
    for part in parts:
        if part in ("", ".", ".."):
            return f"has an {'empty' if not part else repr(part)} component"
        if os_name == "windows":
            problem = name_problem(part)
            if problem is not None:
                return f"component {part!r} {problem}"
    return parts


def _key(path: str, os_name: OperatingSystem) -> str:
    return path if os_name == "linux" else collision_key(path)


def _resolve_link(
    parent: tuple[str, ...], target: str, links: set[str], os_name: OperatingSystem
) -> str | None:
    """Why a symlink target is unsafe, or ``None``: relative, stays inside, not through a link."""
    if not target or "\x00" in target or len(target) > MAX_LINK_TARGET:
        return "has an empty, overlong or NUL-containing link target"
    if target.startswith("/") or "\\" in target or (len(target) >= 2 and target[1] == ":"):
        return f"links to {target!r}, an absolute path"
    current = list(parent)
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not current:
                return f"links to {target!r}, outside the archive"
            current.pop()
            continue
        current.append(part)
        if _key("/".join(current), os_name) in links:
            return f"links to {target!r} through another link"
    return None


def check_members(
    members: Iterable[Member],
    os_name: OperatingSystem,
    limits: ArchiveLimits = ArchiveLimits(),
    *,
    subject: str,
) -> list[CheckedMember]:
    """Judge a whole member list; raise :class:`UnsafeArchive` naming ``subject!member``."""
    checked: list[CheckedMember] = []
    seen: dict[str, MemberKind] = {}
    files: dict[str, int] = {}
    links: set[str] = set()
    total = 0
    all_members = list(members)
    if len(all_members) > limits.max_members:
        raise UnsafeArchive(f"holds more than {limits.max_members} members", subject=subject)
    link_keys = {
        _key("/".join(p), os_name)
        for m in all_members
        if m.kind == "symlink" and isinstance(p := normalise_name(m.name, os_name), tuple)
    }
    for member in all_members:
        where = f"{subject}!{member.name}"

        def refuse(reason: str, where: str = where) -> UnsafeArchive:
            return UnsafeArchive(reason, subject=where)

        parts = normalise_name(member.name, os_name)
        if isinstance(parts, str):
            raise refuse(parts)
        if member.kind == "other":
            raise refuse("is a device, fifo or other special file")
        if not parts:
            if member.kind == "dir":
                continue
            raise refuse("names the extraction folder itself")
        path = "/".join(parts)
        key = _key(path, os_name)
        for i in range(1, len(parts)):
            prefix = _key("/".join(parts[:i]), os_name)
            if prefix in link_keys:
                raise refuse("lies below a link (it would be written through the link)")
            if prefix in seen and seen[prefix] != "dir":
                raise refuse("lies below a file")
        if key in seen:
            if member.kind == "dir" and seen[key] == "dir":
                continue
            raise refuse(
                "appears twice" + ("" if os_name == "linux" else " (names differ only in case)")
            )
        if member.size < 0 or member.size > limits.max_member_bytes:
            raise refuse(f"is {member.size} bytes, over the {limits.max_member_bytes} byte limit")
        mode = (member.mode if member.mode is not None else 0) & 0o777
        link_path: str | None = None
        if member.kind == "symlink":
            if os_name == "windows":
                raise refuse("is a symbolic link (links are not extracted on Windows)")
            problem = _resolve_link(parts[:-1], member.link_target or "", link_keys, os_name)
            if problem is not None:
                raise refuse(problem)
            links.add(key)
        elif member.kind == "hardlink":
            target = normalise_name(member.link_target or "", os_name)
            if isinstance(target, str) or not target:
                raise refuse(f"hard-links to {member.link_target!r}, which is unsafe")
            link_path = "/".join(target)
            if _key(link_path, os_name) not in files:
                raise refuse(f"hard-links to {member.link_target!r}, not an earlier regular file")
            mode = mode or 0o644
            total += files[_key(link_path, os_name)]
        elif member.kind == "file":
            mode = mode or 0o644
            files[key] = member.size
        else:
            mode = (mode or 0o755) | 0o700
        total += member.size
        if total > limits.max_total_bytes:
            raise refuse(f"brings the archive over {limits.max_total_bytes} bytes in total")
        seen[key] = member.kind
        checked.append(CheckedMember(member, path, mode, link_path))
    return checked


# -- reading member lists ----------------------------------------------------------------------


def _tar_members(archive: tarfile.TarFile, limits: ArchiveLimits) -> Iterator[Member]:
    for index, info in enumerate(_iter_tar(archive, limits)):
        if info.isreg():
            kind: MemberKind = "file"
        elif info.isdir():
            kind = "dir"
        elif info.issym():
            kind = "symlink"
        elif info.islnk():
            kind = "hardlink"
        else:
            kind = "other"
        yield Member(
            info.name,
            kind,
            info.size if kind == "file" else 0,
            info.mode,
            info.linkname if kind in ("symlink", "hardlink") else None,
            index,
        )


def _iter_tar(archive: tarfile.TarFile, limits: ArchiveLimits) -> Iterator[tarfile.TarInfo]:
    count = 0
    while True:
        info = archive.next()
        if info is None:
            return
        count += 1
        if count > limits.max_members:
            raise UnsafeArchive(f"holds more than {limits.max_members} members")
        yield info


def _zip_members(archive: zipfile.ZipFile, limits: ArchiveLimits) -> Iterator[Member]:
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise UnsafeArchive(f"holds more than {limits.max_members} members")
    for index, info in enumerate(infos):
        unix_mode = info.external_attr >> 16 if info.create_system == 3 else 0
        # not info.is_dir(): it indexes the name, and an empty name is the checks' to refuse
        if info.filename.endswith("/") or stat.S_ISDIR(unix_mode):
            yield Member(info.filename, "dir", 0, unix_mode or None, None, index)
            continue
        if unix_mode and stat.S_ISLNK(unix_mode):
            if info.file_size > MAX_LINK_TARGET:
                yield Member(info.filename, "symlink", 0, None, "\x00", index)
                continue
            target = archive.read(info).decode("utf-8", errors="replace")
            yield Member(info.filename, "symlink", 0, None, target, index)
            continue
        if unix_mode and not stat.S_ISREG(unix_mode) and stat.S_IFMT(unix_mode):
            yield Member(info.filename, "other", 0, None, None, index)
            continue
        yield Member(info.filename, "file", info.file_size, unix_mode or None, None, index)


def read_members(
    stream: BinaryIO, kind: ArchiveKind, limits: ArchiveLimits, *, subject: str
) -> list[Member]:
    """Every member's header (no content is extracted). Unreadable archives are refused."""
    try:
        if kind == "zip":
            with zipfile.ZipFile(stream) as archive:
                return list(_zip_members(archive, limits))
        with tarfile.open(fileobj=stream, mode="r:*") as archive:
            return list(_tar_members(archive, limits))
    except UnsafeArchive as exc:
        raise UnsafeArchive(exc.detail, subject=subject) from None
    except _UNREADABLE_HEADERS as exc:
        raise UnsafeArchive(f"is not a readable {kind} archive ({exc})", subject=subject) from None


# -- extraction --------------------------------------------------------------------------------


def declared_bytes(checked: Iterable[CheckedMember]) -> int:
    """What extraction writes, by the headers (hard links are extracted as copies)."""
    files: dict[str, int] = {}
    total = 0
    for item in checked:
        if item.member.kind == "file":
            files[item.path] = item.member.size
            total += item.member.size
        elif item.member.kind == "hardlink" and item.link_path is not None:
            total += files.get(item.link_path, 0)
    return total


def check_space(checked: list[CheckedMember], destination: Path, *, subject: str) -> None:
    """Refuse to start an extraction the filesystem has no room for (nothing is written)."""
    declared = declared_bytes(checked)
    needed = declared + BLOCK_BYTES * len(checked) + SPACE_MARGIN_BYTES
    try:
        free = shutil.disk_usage(destination).free
    except OSError as exc:
        raise InsufficientSpace(
            f"cannot tell the free space where {subject} is extracted: {exc.strerror}",
            subject=subject,
        ) from None
    if needed > free:
        raise InsufficientSpace(
            f"extracting needs {needed} bytes ({declared} declared by the archive's "
            f"{len(checked)} members, plus a {SPACE_MARGIN_BYTES} byte margin); the "
            f"filesystem of {destination} has {free} bytes free; nothing was extracted",
            subject=subject,
        )


def _write_member(source: IO[bytes], target: Path, size: int, mode: int, where: str) -> None:
    fd = os.open(
        target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY, 0o600
    )
    written = 0
    with os.fdopen(fd, "wb") as out:
        while True:
            chunk = source.read(CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > size:
                raise UnsafeArchive(
                    f"holds more bytes than its header declares ({size})", subject=where
                )
            out.write(chunk)
    if written != size:
        raise UnsafeArchive(f"holds {written} bytes, its header declares {size}", subject=where)
    if hasattr(os, "chmod"):
        os.chmod(target, mode)


def _mkdirs(root: Path, relative: str) -> Path:
    current = root
    for part in relative.split("/") if relative else []:
        current = current / part
        try:
            os.mkdir(current, 0o700)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                raise
    return current


def extract(
    stream: BinaryIO,
    kind: ArchiveKind,
    destination: Path,
    os_name: OperatingSystem,
    limits: ArchiveLimits = ArchiveLimits(),
    *,
    subject: str,
) -> list[CheckedMember]:
    """Check every member, then extract into ``destination`` (an empty private folder).

    ``stream`` must be seekable: the headers are read and judged in full before any content.
    """
    start = stream.tell()
    checked = check_members(
        read_members(stream, kind, limits, subject=subject), os_name, limits, subject=subject
    )
    check_space(checked, destination, subject=subject)
    stream.seek(start)
    by_index = {c.member.index: c for c in checked}
    dir_modes: list[tuple[Path, int]] = []
    links: list[CheckedMember] = []
    try:
        for item, opener in _contents(stream, kind, limits, by_index, subject):
            _extract_one(item, destination, dir_modes, links, subject, opener)
    except _UNREADABLE as exc:
        raise UnsafeArchive(f"could not be extracted ({exc})", subject=subject) from None
    for link in links:
        parent, _, name = link.path.rpartition("/")
        folder = _mkdirs(destination, parent)
        os.symlink(link.member.link_target or "", folder / name)
    for directory, mode in reversed(dir_modes):
        os.chmod(directory, mode)
    return checked


def _contents(
    stream: BinaryIO,
    kind: ArchiveKind,
    limits: ArchiveLimits,
    by_index: dict[int, CheckedMember],
    subject: str,
) -> Iterator[tuple[CheckedMember, Callable[[], IO[bytes]]]]:
    """Each cleared member with a way to open its content, in archive order."""
    if kind == "zip":
        with zipfile.ZipFile(stream) as zipped:
            for index, zip_info in enumerate(zipped.infolist()):
                item = by_index.get(index)
                if item is not None:
                    yield item, functools.partial(zipped.open, zip_info)
        return
    with tarfile.open(fileobj=stream, mode="r:*") as tarred:
        for index, tar_info in enumerate(_iter_tar(tarred, limits)):
            item = by_index.get(index)
            if item is None:
                continue

            def open_tar(info: tarfile.TarInfo = tar_info) -> IO[bytes]:
                handle = tarred.extractfile(info)
                if handle is None:
                    raise UnsafeArchive("has no content", subject=f"{subject}!{info.name}")
                return handle

            yield item, open_tar


def _extract_one(
    item: CheckedMember,
    destination: Path,
    dir_modes: list[tuple[Path, int]],
    links: list[CheckedMember],
    subject: str,
    opener: Callable[[], IO[bytes]],
) -> None:
    where = f"{subject}!{item.member.name}"
    kind = item.member.kind
    if kind == "dir":
        dir_modes.append((_mkdirs(destination, item.path), item.mode))
        return
    if kind == "symlink":
        links.append(item)
        return
    parent, _, name = item.path.rpartition("/")
    folder = _mkdirs(destination, parent)
    if kind == "hardlink":
        assert item.link_path is not None
        source_path = destination / item.link_path
        with open(source_path, "rb") as source:
            size = os.fstat(source.fileno()).st_size
            _write_member(source, folder / name, size, item.mode, where)
        return
    with opener() as source:
        _write_member(source, folder / name, item.member.size, item.mode, where)


def run_target(checked: Iterable[CheckedMember], run: str, os_name: OperatingSystem) -> str | None:
    """The normalised path of the regular file ``run`` names, or ``None`` if there is none."""
    wanted = _key(posixpath.normpath(run), os_name)
    for item in checked:
        if item.member.kind in ("file", "hardlink") and _key(item.path, os_name) == wanted:
            return item.path
    return None
