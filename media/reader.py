"""Media access: a pluggable source that reads safely and writes only receipts.

:class:`MediaSource` is to media what python-tuf's ``FetcherInterface`` is to a repository: the
rest of the code never touches paths on the stick directly. :class:`DirectorySource` reads a real
directory (a mounted stick, an image mounted with fusefat, a test folder) and refuses, at open
time and not only when listing, symlinks, hard links, special files, unsafe paths and files
larger than the caller's cap: every path is walked component by component from the root with
``O_NOFOLLOW`` directory descriptors and the opened file is checked with ``fstat``, so a symlink
swapped in after the listing is still refused. Within one pass over the media
(:meth:`MediaSource.folders_held`) the folders already reached that way are kept open and the
walk starts from the deepest one held (docs/media-format.md section 9.1).

The one thing an agent writes to media is its receipt (:meth:`MediaSource.write_receipt`); it
goes through the same source, walked the same way, so a link planted where a receipts folder
belongs is refused rather than written through. The checks of the files a statement lists are in
:mod:`airseal.media.verdict`.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import stat
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NoReturn, cast

from airseal.media import layout
from airseal.media.errors import (
    InvalidReceipt,
    MediaReadError,
    MediaWriteError,
    MissingFile,
    OversizedFile,
    TooManyEntries,
    UnsafeEntry,
    UnsafeName,
    UnsafePath,
)
from airseal.media.limits import (
    MAX_DEPTH,
    MAX_ENTRIES,
    MAX_EXPORT_BUNDLE_BYTES,
    MAX_TOP_LEVEL_ENTRIES,
)
from airseal.media.names import safe_relative_path
from airseal.media.receipt import receipt_media_path
from airseal.media.rules import EntryKind, MediaEntry, entry_kind, receipt_problem

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_REPARSE_POINT = getattr(stat, "FILE_ATTRIBUTE_REPARSE_POINT", 0x400)
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY
_FOLDER = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
_HELD_FOLDERS = 32
"""Folder descriptors :meth:`DirectorySource.folders_held` keeps beyond the chain in use."""


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

    @property
    def label(self) -> str:
        """How reports and the journal name this media (a mount point, an image)."""
        return "media"

    @contextlib.contextmanager
    def folders_held(self) -> Iterator[None]:
        """One pass over the media: the source may keep the folders it reaches open until the
        block ends instead of walking to each from the root again (:class:`DirectorySource`
        does; by default nothing changes)."""
        yield

    def write_receipt(self, agent_id: str, export_id: str, data: bytes) -> str:
        """Put an agent's receipt at ``airseal/receipts/<agent-id>/<export-id>.json``, atomically
        (temporary file, fsync, rename), creating the two folders if needed. Returns its path on
        the media.

        The name and size must pass :func:`airseal.media.rules.receipt_problem`
        (:class:`InvalidReceipt`); ``airseal/`` must exist (:class:`MissingFile`); a link or file
        where a folder belongs is refused with nothing written through it (:class:`UnsafeEntry`);
        a failed write is a :class:`MediaWriteError`.
        """
        relative = receipt_media_path(agent_id, export_id)
        where = layout.on_mount(relative)
        problem = receipt_problem(relative, len(data))
        if problem is not None:
            raise InvalidReceipt(problem, subject=where)
        self._put_file(where.split("/"), data, existing=1)
        return where

    def _put_file(self, parts: list[str], data: bytes, *, existing: int) -> None:
        """Replace the file at ``parts`` atomically; the first ``existing`` folders must be there,
        the others are created. A source that cannot write refuses."""
        raise MediaWriteError("this media cannot be written to", subject="/".join(parts))


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
        self._held: OrderedDict[tuple[str, ...], int] | None = None

    @property
    def label(self) -> str:
        return str(self.root)

    # -- walking the tree without following anything --------------------------------------------

    def _open_root(self) -> int:
        try:
            return os.open(self.root, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
        except OSError as exc:
            raise MediaReadError(f"cannot open the media folder: {exc.strerror}") from None

    def _open_dir(self, parts: list[str]) -> int:
        """A descriptor for the folder at ``parts``, no component followed if it is a link.

        Inside :meth:`folders_held` the walk starts from the deepest folder of ``parts`` whose
        descriptor is held (each was itself reached this way) and the descriptor returned is
        held too: release it with :meth:`_release`, never ``os.close``."""
        held = self._held
        start = 0
        if held is None:
            fd = self._open_root()
        else:
            if () not in held:
                held[()] = self._open_root()
            while start < len(parts) and tuple(parts[: start + 1]) in held:
                start += 1
            for depth in range(start + 1):  # the chain in use becomes the newest
                held.move_to_end(tuple(parts[:depth]))
            fd = held[tuple(parts[:start])]
        try:
            for i in range(start, len(parts)):
                part = parts[i]
                try:
                    child = os.open(part, _FOLDER, dir_fd=fd)
                except OSError as exc:
                    self._raise_for(exc, fd, part, "/".join(parts[: i + 1]))
                if held is None:
                    os.close(fd)
                else:
                    held[tuple(parts[: i + 1])] = child
                fd = child
        except BaseException:
            if held is None:
                os.close(fd)
            raise
        if held is not None:
            self._evict(held, len(parts))
        return fd

    def _release(self, fd: int) -> None:
        """Done with a folder descriptor from :meth:`_open_dir`: closed unless it is held."""
        if self._held is None:
            os.close(fd)

    @staticmethod
    def _evict(held: OrderedDict[tuple[str, ...], int], depth: int) -> None:
        # The chain just used was moved to the end, so the oldest are never part of it.
        while len(held) > _HELD_FOLDERS + depth:
            _, fd = held.popitem(last=False)
            os.close(fd)

    @contextlib.contextmanager
    def folders_held(self) -> Iterator[None]:
        """Within this block, keep the descriptors of recently reached folders (at most a few
        dozen) and start each later walk from the deepest one held instead of from the root.

        As safe as walking from the root each time: every held descriptor was reached from the
        root one component at a time with ``O_NOFOLLOW | O_DIRECTORY``, and a descriptor names
        the folder that was checked, not a path, so a link swapped in for that folder afterwards
        is never followed; a new component is still opened without following and every file is
        still checked with ``lstat`` and ``fstat``. What it cannot see is a folder *replaced*
        during the block: it keeps reading the one it checked (whose files are then verified
        against the listing as any other). Callers hold folders for one pass over the media
        (listing and hashing, reading statements, staging), not across passes. Nested blocks
        share the outer one's descriptors."""
        if self._held is not None or not self._dir_fd:
            yield
            return
        self._held = OrderedDict()
        try:
            yield
        finally:
            held, self._held = self._held, None
            for fd in held.values():
                os.close(fd)

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
                self._release(fd)
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
                self._release(fd)
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
                self._release(dir_fd)
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

    # -- the one write: a receipt ----------------------------------------------------------------

    def _put_file(self, parts: list[str], data: bytes, *, existing: int) -> None:
        if not self._dir_fd:
            self._put_file_by_path(parts, data, existing)
            return
        where, temporary = "/".join(parts), _temporary_name(parts[-1])
        fd = self._open_root()
        try:
            for i, part in enumerate(parts[:-1]):
                child = self._enter_writable(fd, part, "/".join(parts[: i + 1]), i >= existing)
                os.close(fd)
                fd = child
            try:
                _write_and_close(os.open(temporary, _NEW_FILE, 0o644, dir_fd=fd), data)
                os.replace(temporary, parts[-1], src_dir_fd=fd, dst_dir_fd=fd)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(temporary, dir_fd=fd)
                raise MediaWriteError(exc.strerror or str(exc), subject=where) from None
            with contextlib.suppress(OSError):
                os.fsync(fd)  # makes the rename durable
        finally:
            os.close(fd)

    def _put_file_by_path(self, parts: list[str], data: bytes, existing: int) -> None:
        folder = self._writable_folder_path(parts[:-1], existing)
        temporary = folder / _temporary_name(parts[-1])
        try:
            _write_and_close(os.open(temporary, _NEW_FILE, 0o644), data)
            os.replace(temporary, folder / parts[-1])
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise MediaWriteError(exc.strerror or str(exc), subject="/".join(parts)) from None
        with contextlib.suppress(OSError):
            fd = os.open(folder, os.O_RDONLY | _O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _enter_writable(self, dir_fd: int, name: str, subject: str, create: bool) -> int:
        """A descriptor for the folder ``name`` in ``dir_fd`` (made if absent and ``create``);
        never through a link: ``O_NOFOLLOW`` on every open, ``mkdir`` only where nothing is."""
        try:
            return os.open(name, _FOLDER, dir_fd=dir_fd)
        except FileNotFoundError:
            if not create:
                raise MissingFile("is absent", subject=subject) from None
        except OSError as exc:
            self._refuse_folder(exc, dir_fd, name, subject)
        try:
            os.mkdir(name, dir_fd=dir_fd)
        except FileExistsError:
            pass  # made meanwhile: opened without following, like any other
        except OSError as exc:
            raise MediaWriteError(exc.strerror or str(exc), subject=subject) from None
        try:
            return os.open(name, _FOLDER, dir_fd=dir_fd)
        except OSError as exc:
            self._refuse_folder(exc, dir_fd, name, subject)

    def _refuse_folder(self, exc: OSError, dir_fd: int, name: str, subject: str) -> NoReturn:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            raise MediaWriteError(exc.strerror or str(exc), subject=subject) from None
        kind = self._entry(subject, st).kind
        if kind is not EntryKind.DIRECTORY:
            raise UnsafeEntry(f"is a {kind.value}, not a plain folder", subject=subject)
        raise MediaWriteError(exc.strerror or str(exc), subject=subject) from None

    def _writable_folder_path(self, parts: list[str], existing: int) -> Path:
        """The portable walk for writing: ``lstat`` every component, make the missing ones."""
        folder = self.root
        for i, part in enumerate(parts):
            folder = folder / part
            subject = "/".join(parts[: i + 1])
            try:
                try:
                    st = os.lstat(folder)
                except FileNotFoundError:
                    if i < existing:
                        raise MissingFile("is absent", subject=subject) from None
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(folder)
                    st = os.lstat(folder)
            except OSError as exc:
                raise MediaWriteError(exc.strerror or str(exc), subject=subject) from None
            entry = self._entry(subject, st)
            if entry.kind is not EntryKind.DIRECTORY:
                raise UnsafeEntry(f"is a {entry.kind.value}, not a plain folder", subject=subject)
        return folder


# -- the export statement's bytes -----------------------------------------------------------------


def read_export_bundle(source: MediaSource) -> bytes:
    """The bytes of ``airseal/export.sigstore.json``, capped at ``MAX_EXPORT_BUNDLE_BYTES``.

    Nothing is parsed or verified: the agent verifies these bytes against its trust root before
    it reads the statement (:func:`airseal.media.statement.read_export_statement`) and then checks
    the files with :func:`airseal.media.verdict.verify_media_files`.
    """
    return source.read_bytes(
        layout.on_mount(layout.STATEMENT_NAME), max_size=MAX_EXPORT_BUNDLE_BYTES
    )


def _temporary_name(name: str) -> str:
    """A hidden, random sibling name for writing ``name`` before the rename."""
    return f".{name.rsplit('.', 1)[0]}.{secrets.token_hex(4)}.tmp"


def _write_and_close(fd: int, data: bytes) -> None:
    """Write all of ``data`` to a new file and fsync it before closing."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
