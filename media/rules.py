"""The media reading rules, as pure decisions over a listing (no I/O here).

Shared by the courier's check and the agent's import: given what a :class:`MediaSource` found
under ``airseal/`` and what the export statement lists, decide which files are missing, which
have the wrong size, which are there but unlisted, and which are unsafe. Hashing, the one part
that needs the bytes, is done by :mod:`airseal.media.reader` for the files this module clears.

The rules (DESIGN.md, "Media"):
- only plain files and folders: no symlinks, hard links, fifos, devices or sockets;
- every name safe on FAT32/exFAT, every path relative without ``..``;
- every file under ``airseal/`` listed in the signed statement, except the statement itself and
  the ``receipts/`` subtree, which holds only ``receipts/<agent-id>/<export-id>.json`` files of
  bounded size and number;
- bounded sizes and counts everywhere (:mod:`airseal.media.limits`).
"""

from __future__ import annotations

import enum
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from airseal.media import layout
from airseal.media.limits import (
    MAX_ACTION_BUNDLE_BYTES,
    MAX_DEPTH,
    MAX_ENTRIES,
    MAX_EXPORT_BUNDLE_BYTES,
    MAX_RECEIPT_BYTES,
    MAX_RECEIPTS,
    MAX_SUBJECTS,
    MAX_TOP_LEVEL_ENTRIES,
)
from airseal.media.names import name_problem

__all__ = [
    "MAX_ACTION_BUNDLE_BYTES",
    "MAX_DEPTH",
    "MAX_ENTRIES",
    "MAX_EXPORT_BUNDLE_BYTES",
    "MAX_RECEIPTS",
    "MAX_RECEIPT_BYTES",
    "MAX_SUBJECTS",
    "MAX_TOP_LEVEL_ENTRIES",
    "EntryKind",
    "Finding",
    "ListingVerdict",
    "MediaEntry",
    "entry_kind",
    "entry_problem",
    "judge_listing",
    "receipt_problem",
]

_RECEIPT = re.compile(r"^receipts/([^/]+)/([^/]+)\.json$")


class EntryKind(enum.StrEnum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    FIFO = "fifo"
    DEVICE = "device"
    SOCKET = "socket"
    OTHER = "other"


def entry_kind(mode: int, *, reparse_point: bool = False) -> EntryKind:
    """Classify an ``lstat`` mode (a Windows reparse point counts as a link)."""
    if stat.S_ISLNK(mode) or reparse_point:
        return EntryKind.SYMLINK
    if stat.S_ISREG(mode):
        return EntryKind.FILE
    if stat.S_ISDIR(mode):
        return EntryKind.DIRECTORY
    if stat.S_ISFIFO(mode):
        return EntryKind.FIFO
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return EntryKind.DEVICE
    if stat.S_ISSOCK(mode):
        return EntryKind.SOCKET
    return EntryKind.OTHER


@dataclass(frozen=True)
class MediaEntry:
    """One entry found on media, never followed: path relative to the source root, as found."""

    path: str
    kind: EntryKind
    size: int = 0
    links: int = 1

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Finding:
    """One problem: which file (relative to the mount point), which check, and why."""

    path: str
    check: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: [{self.check}] {self.reason}"


_KIND_REASON = {
    EntryKind.SYMLINK: "is a symbolic link (media holds only plain files and folders)",
    EntryKind.FIFO: "is a fifo (named pipe)",
    EntryKind.DEVICE: "is a device node",
    EntryKind.SOCKET: "is a socket",
    EntryKind.OTHER: "is not a plain file or folder",
}


def entry_problem(entry: MediaEntry) -> Finding | None:
    """An unsafe entry: not a plain file or folder, a hard link, or a name unsafe on FAT."""
    if entry.kind in _KIND_REASON:
        return Finding(entry.path, "entry-type", _KIND_REASON[entry.kind])
    if entry.kind is EntryKind.FILE and entry.links > 1:
        return Finding(entry.path, "entry-type", f"is a hard link ({entry.links} links)")
    problem = name_problem(entry.name)
    if problem is not None:
        return Finding(entry.path, "name", f"name {entry.name!r} {problem}")
    return None


def receipt_problem(path: str, size: int) -> str | None:
    """Why a file under ``receipts/`` (path relative to ``airseal/``) is not a valid receipt."""
    match = _RECEIPT.match(path)
    if match is None:
        return "receipts/ holds only receipts/<agent-id>/<export-id>.json files"
    agent_id, export_id = match.groups()
    if not layout.is_identifier(agent_id):
        return f"{agent_id!r} is not an agent id"
    if not layout.is_identifier(export_id):
        return f"{export_id!r} is not an export id"
    if size > MAX_RECEIPT_BYTES:
        return f"receipt is {size} bytes, over the {MAX_RECEIPT_BYTES} byte limit"
    return None


def _receipt_dir_problem(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) == 1:
        return None
    if len(parts) == 2 and layout.is_identifier(parts[1]):
        return None
    return "receipts/ holds only one folder per agent id"


@dataclass
class ListingVerdict:
    """What the listing alone decides; ``to_hash`` are the files still to be hashed."""

    missing: list[Finding] = field(default_factory=list)
    damaged: list[Finding] = field(default_factory=list)
    extra: list[Finding] = field(default_factory=list)
    unsafe: list[Finding] = field(default_factory=list)
    to_hash: list[str] = field(default_factory=list)
    """Listed files (relative to ``airseal/``) present as plain files with the listed size."""
    receipts: int = 0


def judge_listing(
    entries: Iterable[MediaEntry],
    listed_sizes: Mapping[str, int],
) -> ListingVerdict:
    """Apply the rules to everything found under ``airseal/``.

    ``entries`` have paths relative to the mount point (``airseal/...``), as a
    :class:`airseal.media.reader.MediaSource` walks them; ``listed_sizes`` maps each listed path
    (relative to ``airseal/``) to its size.
    """
    verdict = ListingVerdict()
    prefix = layout.MEDIA_DIR + "/"
    listed_dirs = {
        "/".join(path.split("/")[:i])
        for path in listed_sizes
        for i in range(1, path.count("/") + 1)
    }
    seen: set[str] = set()
    receipts_key = layout.RECEIPTS_DIR
    for entry in entries:
        if not entry.path.startswith(prefix):
            verdict.extra.append(Finding(entry.path, "listed", "is outside airseal/"))
            continue
        rel = entry.path[len(prefix) :]
        unsafe = entry_problem(entry)
        if unsafe is not None:
            verdict.unsafe.append(unsafe)
            seen.add(rel)  # reported as unsafe, not also as missing
            continue
        top = rel.split("/", 1)[0]
        if entry.kind is EntryKind.DIRECTORY:
            if rel in listed_dirs:
                continue
            if top == receipts_key:
                problem = _receipt_dir_problem(rel)
                if problem is not None:
                    verdict.extra.append(Finding(entry.path, "listed", problem))
                continue
            verdict.extra.append(
                Finding(entry.path, "listed", "folder is not part of the signed export")
            )
            continue
        if rel == layout.STATEMENT_NAME:
            continue
        if rel in listed_sizes:
            seen.add(rel)
            expected = listed_sizes[rel]
            if entry.size != expected:
                verdict.damaged.append(
                    Finding(
                        entry.path,
                        "size",
                        f"is {entry.size} bytes, the statement lists {expected}",
                    )
                )
            else:
                verdict.to_hash.append(rel)
            continue
        if top == receipts_key:
            problem = receipt_problem(rel, entry.size)
            if problem is None:
                verdict.receipts += 1
                if verdict.receipts > MAX_RECEIPTS:
                    verdict.extra.append(
                        Finding(entry.path, "entry-count", f"more than {MAX_RECEIPTS} receipts")
                    )
                continue
            verdict.extra.append(Finding(entry.path, "listed", problem))
            continue
        verdict.extra.append(
            Finding(entry.path, "listed", "file is not listed in the export statement")
        )
    for rel in listed_sizes:
        if rel not in seen:
            verdict.missing.append(
                Finding(layout.on_mount(rel), "present", "is listed in the statement but absent")
            )
    order = {path: i for i, path in enumerate(listed_sizes)}
    verdict.to_hash.sort(key=order.__getitem__)
    return verdict
