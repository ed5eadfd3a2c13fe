"""Reading media safely: a pluggable source, and the file checks shared by check and agent.

:class:`MediaSource` is to media what python-tuf's ``FetcherInterface`` is to a repository: the
rest of the code never touches paths on the stick directly. :class:`DirectorySource` reads a real
directory (a mounted stick, an image mounted with fusefat, a test folder) and refuses, at open
time and not only when listing, symlinks, hard links, special files, unsafe paths and files
larger than the caller's cap: every path is walked component by component from the root with
``O_NOFOLLOW`` directory descriptors and the opened file is checked with ``fstat``, so a symlink
swapped in after the listing is still refused.

:func:`verify_media_files` applies :mod:`airseal.media.rules` to a listing and hashes what the rules
clear, re-joining split payloads; it reports findings rather than raising, so the courier sees
every problem at once, and :meth:`MediaVerdict.raise_first` turns them into typed errors for the
agent.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NoReturn, cast

from airseal.media import layout
from airseal.media.errors import (
    BadMedia,
    MediaDigestMismatch,
    MediaReadError,
    MissingFile,
    OversizedFile,
    SizeMismatch,
    TooManyEntries,
    UnlistedFile,
    UnsafeEntry,
    UnsafeName,
    UnsafePath,
)
from airseal.media.limits import (
    MAX_DEPTH,
    MAX_ENTRIES,
    MAX_EXPORT_BUNDLE_BYTES,
    MAX_TOP_LEVEL_ENTRIES,
    MiB,
)
from airseal.media.names import safe_relative_path
from airseal.media.rules import EntryKind, Finding, MediaEntry, entry_kind, judge_listing
from airseal.media.statement import ExportContents

CHUNK_SIZE = MiB
ProgressCallback = Callable[[int, int], None]
"""Called with ``(bytes_done, bytes_total)``."""

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_REPARSE_POINT = getattr(stat, "FILE_ATTRIBUTE_REPARSE_POINT", 0x400)


class MediaSource(ABC):
    """Where media is read from. Paths are relative to the source root, '/'-separated.

    Implementations never follow links, refuse anything but plain files in :meth:`open`, and
    enforce ``max_size`` while reading, not only from the size reported when opening.
    """

    @abstractmethod
    def list_dir(self, path: str = "") -> list[MediaEntry]:
        """The entries of one folder ("" = the root), sorted by name."""

    @abstractmethod
    def walk(self, top: str) -> Iterator[MediaEntry]:
        """Every entry below ``top`` (not ``top`` itself), depth first, links not followed.

        Raises :class:`TooManyEntries` beyond ``MAX_ENTRIES`` entries or ``MAX_DEPTH`` levels.
        """

    @abstractmethod
    def stat(self, path: str) -> MediaEntry | None:
        """The entry at ``path`` (not followed), or ``None`` when nothing is there."""

    @abstractmethod
    def open(self, path: str, *, max_size: int) -> BinaryIO:
        """Open a plain file; refuse links, special files and files over ``max_size``."""

    def read_bytes(self, path: str, *, max_size: int) -> bytes:
        """The whole file, read with the cap enforced."""
        with self.open(path, max_size=max_size) as stream:
            return stream.read()


class _CappedReader(io.RawIOBase):
    """A raw reader over a file descriptor that fails once more than ``limit`` bytes appear."""

    def __init__(self, fd: int, limit: int, subject: str) -> None:
        super().__init__()
        self._file = io.FileIO(fd, "rb", closefd=True)
        self._remaining = limit
        self._limit = limit
        self._subject = subject

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._file.fileno()

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._remaining + 1)
        if want == 0:
            return 0
        try:
            n = self._file.readinto(view[:want]) or 0
        except OSError as exc:
            raise MediaReadError(str(exc), subject=self._subject) from None
        if n > self._remaining:
            raise OversizedFile(
                f"grew past the {self._limit} byte limit while being read", subject=self._subject
            )
        self._remaining -= n
        return n

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


class DirectorySource(MediaSource):
    """Media in a real directory. ``use_dir_fd=False`` forces the portable path-based opener
    (used on Windows, which has no ``openat``; tested on Linux too)."""

    def __init__(self, root: str | os.PathLike[str], *, use_dir_fd: bool | None = None) -> None:
        self.root = Path(root)
        supported = os.open in os.supports_dir_fd and bool(_O_NOFOLLOW) and bool(_O_DIRECTORY)
        self._dir_fd = supported if use_dir_fd is None else (use_dir_fd and supported)

    # -- walking the tree without following anything --------------------------------------------

    def _open_root(self) -> int:
        try:
            return os.open(self.root, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
        except OSError as exc:
            raise MediaReadError(f"cannot open the media folder: {exc.strerror}") from None

    def _open_dir(self, parts: list[str]) -> int:
        """A descriptor for the folder at ``parts``, no component followed if it is a link."""
        fd = self._open_root()
        try:
            for i, part in enumerate(parts):
                try:
                    child = os.open(
                        part,
                        os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC,
                        dir_fd=fd,
                    )
                except OSError as exc:
                    self._raise_for(exc, fd, part, "/".join(parts[: i + 1]))
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _raise_for(self, exc: OSError, dir_fd: int, name: str, subject: str) -> NoReturn:
        if exc.errno == errno.ENOENT:
            raise MissingFile("is absent", subject=subject) from None
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            raise MediaReadError(exc.strerror or str(exc), subject=subject) from None
        kind = entry_kind(st.st_mode)
        if kind is not EntryKind.DIRECTORY and kind is not EntryKind.FILE:
            raise UnsafeEntry(f"is a {kind.value}, not a plain file or folder", subject=subject)
        if exc.errno == errno.ENOTDIR:
            raise MissingFile("is a file where a folder was expected", subject=subject) from None
        raise MediaReadError(exc.strerror or str(exc), subject=subject) from None

    def _entry(self, path: str, st: os.stat_result) -> MediaEntry:
        reparse = bool(getattr(st, "st_file_attributes", 0) & _REPARSE_POINT)
        kind = entry_kind(st.st_mode, reparse_point=reparse)
        size = st.st_size if kind is EntryKind.FILE else 0
        return MediaEntry(path, kind, size, st.st_nlink)

    def _scan(self, path: str, limit: int) -> list[MediaEntry]:
        parts = path.split("/") if path else []
        prefix = f"{path}/" if path else ""
        entries: list[MediaEntry] = []
        if self._dir_fd:
            fd = self._open_dir(parts)
            try:
                with os.scandir(fd) as it:
                    for item in it:
                        if len(entries) >= limit:
                            raise TooManyEntries(f"more than {limit} entries", subject=path or ".")
                        st = os.stat(item.name, dir_fd=fd, follow_symlinks=False)
                        entries.append(self._entry(prefix + item.name, st))
            except OSError as exc:
                raise MediaReadError(exc.strerror or str(exc), subject=path or ".") from None
            finally:
                os.close(fd)
        else:
            directory = self._checked_path(parts, path, want_dir=True)
            try:
                with os.scandir(directory) as it:
                    for item in it:
                        if len(entries) >= limit:
                            raise TooManyEntries(f"more than {limit} entries", subject=path or ".")
                        st = item.stat(follow_symlinks=False)
                        entries.append(self._entry(prefix + item.name, st))
            except OSError as exc:
                raise MediaReadError(exc.strerror or str(exc), subject=path or ".") from None
        entries.sort(key=lambda e: e.path)
        return entries

    def _checked_path(self, parts: list[str], subject: str, *, want_dir: bool) -> Path:
        """Portable path-based walk: ``lstat`` every component (the TOCTOU window is closed
        afterwards by comparing the opened file with the last ``lstat``)."""
        current = self.root
        for i, part in enumerate(parts):
            current = current / part
            where = "/".join(parts[: i + 1])
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                raise MissingFile("is absent", subject=where) from None
            except OSError as exc:
                raise MediaReadError(exc.strerror or str(exc), subject=where) from None
            entry = self._entry(where, st)
            last = i == len(parts) - 1
            if entry.kind is EntryKind.DIRECTORY and (want_dir or not last):
                continue
            if entry.kind is EntryKind.FILE and last and not want_dir:
                continue
            if entry.kind is EntryKind.DIRECTORY:
                raise MissingFile("is a folder where a file was expected", subject=where)
            if entry.kind is EntryKind.FILE:
                raise MissingFile("is a file where a folder was expected", subject=where)
            raise UnsafeEntry(f"is a {entry.kind.value}, not a plain file or folder", subject=where)
        return current

    def list_dir(self, path: str = "") -> list[MediaEntry]:
        if path:
            safe_relative_path(path)
        return self._scan(path, MAX_TOP_LEVEL_ENTRIES)

    def walk(self, top: str) -> Iterator[MediaEntry]:
        safe_relative_path(top)
        count = 0
        base_depth = top.count("/") + 1
        pending = [top]
        while pending:
            current = pending.pop()
            entries = self._scan(current, MAX_ENTRIES - count + 1)
            count += len(entries)
            if count > MAX_ENTRIES:
                raise TooManyEntries(f"more than {MAX_ENTRIES} entries", subject=top)
            yield from entries
            subdirs = [e.path for e in entries if e.kind is EntryKind.DIRECTORY]
            for sub in reversed(subdirs):
                if sub.count("/") + 1 - base_depth >= MAX_DEPTH:
                    raise TooManyEntries(f"folders nested deeper than {MAX_DEPTH}", subject=sub)
                try:
                    safe_relative_path(sub)
                except (UnsafePath, UnsafeName):
                    continue  # an unsafe folder name is reported, never entered
                pending.append(sub)

    def stat(self, path: str) -> MediaEntry | None:
        safe_relative_path(path)
        parts = path.split("/")
        if self._dir_fd:
            try:
                fd = self._open_dir(parts[:-1])
            except MissingFile:
                return None
            try:
                st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise MediaReadError(exc.strerror or str(exc), subject=path) from None
            finally:
                os.close(fd)
            return self._entry(path, st)
        try:
            parent = self._checked_path(parts[:-1], path, want_dir=True)
            st = os.lstat(parent / parts[-1])
        except (MissingFile, FileNotFoundError):
            return None
        except OSError as exc:
            raise MediaReadError(exc.strerror or str(exc), subject=path) from None
        return self._entry(path, st)

    def open(self, path: str, *, max_size: int) -> BinaryIO:
        safe_relative_path(path)
        parts = path.split("/")
        flags = os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK | _O_NOCTTY | _O_BINARY
        if self._dir_fd:
            dir_fd = self._open_dir(parts[:-1])
            try:
                # lstat first: a device node or fifo is refused without ever being opened.
                try:
                    before = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
                except FileNotFoundError:
                    raise MissingFile("is absent", subject=path) from None
                self._require_plain_file(self._entry(path, before), path, max_size)
                try:
                    fd = os.open(parts[-1], flags, dir_fd=dir_fd)
                except OSError as exc:
                    self._raise_for(exc, dir_fd, parts[-1], path)
            finally:
                os.close(dir_fd)
        else:
            target = self._checked_path(parts, path, want_dir=False)
            before = os.lstat(target)
            self._require_plain_file(self._entry(path, before), path, max_size)
            try:
                fd = os.open(target, flags)
            except OSError as exc:
                raise MediaReadError(exc.strerror or str(exc), subject=path) from None
        try:
            after = os.fstat(fd)
            if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
                raise UnsafeEntry("was replaced while being opened", subject=path)
            self._require_plain_file(self._entry(path, after), path, max_size)
            if _O_NONBLOCK:
                os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return cast(BinaryIO, _CappedReader(fd, max_size, path))

    @staticmethod
    def _require_plain_file(entry: MediaEntry, path: str, max_size: int) -> None:
        if entry.kind is EntryKind.DIRECTORY:
            raise MissingFile("is a folder where a file was expected", subject=path)
        if entry.kind is not EntryKind.FILE:
            raise UnsafeEntry(f"is a {entry.kind.value}, not a plain file", subject=path)
        if entry.links > 1:
            raise UnsafeEntry(f"is a hard link ({entry.links} links)", subject=path)
        if entry.size > max_size:
            raise OversizedFile(
                f"is {entry.size} bytes, over the {max_size} byte limit", subject=path
            )


# -- checking the files an export statement lists -----------------------------------------------


def read_export_bundle(source: MediaSource) -> bytes:
    """The bytes of ``airseal/export.sigstore.json``, capped at ``MAX_EXPORT_BUNDLE_BYTES``.

    Nothing is parsed or verified: the agent verifies these bytes against its trust root before
    it reads the statement (:func:`airseal.media.statement.read_export_statement`) and then checks
    the
    files with :func:`verify_media_files`.
    """
    return source.read_bytes(
        layout.on_mount(layout.STATEMENT_NAME), max_size=MAX_EXPORT_BUNDLE_BYTES
    )


@dataclass
class MediaVerdict:
    """Findings about the files under ``airseal/`` against an export statement."""

    missing: list[Finding] = field(default_factory=list)
    damaged: list[Finding] = field(default_factory=list)
    extra: list[Finding] = field(default_factory=list)
    unsafe: list[Finding] = field(default_factory=list)
    files_checked: int = 0
    bytes_checked: int = 0
    receipts: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.damaged or self.extra or self.unsafe)

    def record(self, finding: Finding) -> None:
        """File a finding under missing, unsafe or damaged according to its check."""
        if finding.check == "present":
            self.missing.append(finding)
        elif finding.check in ("entry-type", "name", "path"):
            self.unsafe.append(finding)
        else:
            self.damaged.append(finding)

    def raise_first(self) -> None:
        """Raise the first finding as a typed :class:`BadMedia` error (for the agent)."""
        for findings in (self.unsafe, self.damaged, self.missing, self.extra):
            for finding in findings:
                raise _finding_error(finding)


def _finding_error(finding: Finding) -> BadMedia:
    classes: dict[str, type[BadMedia]] = {
        "entry-type": UnsafeEntry,
        "name": UnsafeName,
        "path": UnsafePath,
        "size": SizeMismatch,
        "size-limit": OversizedFile,
        "sha256": MediaDigestMismatch,
        "present": MissingFile,
        "listed": UnlistedFile,
        "entry-count": TooManyEntries,
    }
    error_class = classes.get(finding.check, BadMedia)
    return error_class(finding.reason, subject=finding.path, check=finding.check)


def _hash_into(
    source: MediaSource,
    path: str,
    size: int,
    sinks: list[hashlib._Hash],
    buffer: memoryview,
    progress: Callable[[int], None],
) -> int:
    total = 0
    with source.open(path, max_size=size) as stream:
        while True:
            n = stream.readinto(buffer)  # type: ignore[attr-defined]
            if not n:
                break
            chunk = buffer[:n]
            for sink in sinks:
                sink.update(chunk)
            total += n
            progress(n)
    return total


def verify_media_files(
    source: MediaSource,
    contents: ExportContents,
    *,
    on_progress: ProgressCallback | None = None,
) -> MediaVerdict:
    """Check every file under ``airseal/`` against ``contents`` (a read export statement).

    Every listed file must be a plain file with the listed size and sha256; nothing else may be
    there except the statement and valid receipts; split payloads are hashed part by part, in
    order, and the joined digest must equal the action's payload digest. Streamed, 1 MiB at a
    time. Whether ``contents`` is *authentic* is not decided here.
    """
    verdict = MediaVerdict()
    listed = contents.by_path()
    try:
        entries = list(source.walk(layout.MEDIA_DIR))
    except (BadMedia, MediaReadError) as exc:
        verdict.record(Finding(exc.subject or layout.MEDIA_DIR, exc.check, exc.detail))
        return verdict
    listing = judge_listing(entries, {p: f.size for p, f in listed.items()})
    verdict.missing.extend(listing.missing)
    verdict.damaged.extend(listing.damaged)
    verdict.extra.extend(listing.extra)
    verdict.unsafe.extend(listing.unsafe)
    verdict.receipts = listing.receipts

    clear = set(listing.to_hash)
    total = sum(listed[p].size for p in clear)
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if on_progress is not None:
            on_progress(done, total)

    buffer = memoryview(bytearray(CHUNK_SIZE))
    groups: list[tuple[list[str], str | None, str]] = []
    in_payload: set[str] = set()
    for action in contents.predicate.actions:
        paths = list(action.payload_paths)
        in_payload.update(paths)
        joined = action.payload.sha256 if action.payload.parts else None
        groups.append((paths, joined, action.id))
    for path in listing.to_hash:
        if path not in in_payload:
            groups.append(([path], None, ""))
    for paths, joined_sha, action_id in groups:
        whole = hashlib.sha256()
        all_good = True
        for path in paths:
            if path not in clear:
                all_good = False
                continue
            file_hash = hashlib.sha256()
            where = layout.on_mount(path)
            try:
                n = _hash_into(
                    source, where, listed[path].size, [file_hash, whole], buffer, progress
                )
            except (BadMedia, MediaReadError) as exc:
                verdict.record(Finding(where, exc.check, exc.detail))
                all_good = False
                continue
            verdict.files_checked += 1
            verdict.bytes_checked += n
            if n != listed[path].size:
                verdict.damaged.append(
                    Finding(
                        where, "size", f"read {n} bytes, the statement lists {listed[path].size}"
                    )
                )
                all_good = False
            elif file_hash.hexdigest() != listed[path].sha256:
                verdict.damaged.append(
                    Finding(
                        where,
                        "sha256",
                        f"sha256 is {file_hash.hexdigest()}, the statement lists "
                        f"{listed[path].sha256}",
                    )
                )
                all_good = False
        if joined_sha is not None and all_good and whole.hexdigest() != joined_sha:
            first = layout.on_mount(paths[0])
            verdict.damaged.append(
                Finding(
                    first,
                    "sha256",
                    f"the {len(paths)} parts of action {action_id}'s payload join to sha256 "
                    f"{whole.hexdigest()}, the action lists {joined_sha}",
                )
            )
    return verdict
