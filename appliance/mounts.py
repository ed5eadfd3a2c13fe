"""Where removable media are mounted, and whether an export will fit on one.

Detection reads the mount table (``/proc/self/mountinfo``): a mount counts as removable media
when its filesystem is one USB sticks carry (FAT, exFAT, NTFS, or a FUSE FAT driver) or when it
sits under a conventional media folder (``/media``, ``/run/media``, ``/mnt``). Nothing is
mounted or written here: the operator still chooses, or types any folder.

The space check uses the same estimate the export writer applies before it writes
(:func:`airseal.media.capacity.space_needed` over every file the export will hold), so the figure
shown
before exporting is the one the export will be held to.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from airseal.media import layout
from airseal.media.capacity import (
    Capacity,
    find_mount,
    probe_capacity,
    read_mount_table,
    space_needed,
)
from airseal.media.filesystem import identify_filesystem

REMOVABLE_FILESYSTEMS = frozenset(
    {
        "vfat",
        "msdos",
        "exfat",
        "ntfs",
        "ntfs3",
        "fuseblk",
        "fuse.fusefat",
        "fusefat",
        "fuse.exfat",
        "fuse.exfat-fuse",
        "fuse.ntfs-3g",
    }
)
MEDIA_FOLDERS = ("/media/", "/run/media/", "/mnt/")
_HIDDEN_FILESYSTEMS = frozenset({"proc", "sysfs", "tmpfs", "devtmpfs", "cgroup", "cgroup2"})


@dataclass(frozen=True)
class MediaMount:
    mount_point: str
    fstype: str
    source: str

    def describe(self) -> str:
        return f"{self.mount_point} ({self.fstype}, {self.source})"


def detect_media(mountinfo: str | None = None) -> list[MediaMount]:
    """Mounted removable media, by mount point (an empty list when there is no mount table)."""
    found: dict[str, MediaMount] = {}
    for mount in read_mount_table(mountinfo):
        point, fstype, source = mount.mount_point, mount.fstype, mount.source
        if fstype in _HIDDEN_FILESYSTEMS:
            continue
        under_media = (point + "/").startswith(MEDIA_FOLDERS) and point.rstrip("/") not in (
            "/media",
            "/run/media",
            "/mnt",
        )
        if fstype in REMOVABLE_FILESYSTEMS or under_media:
            found[point] = MediaMount(point, fstype, source)
    return sorted(found.values(), key=lambda m: m.mount_point)


@dataclass(frozen=True)
class SpaceCheck:
    """Free space on the target against what the chosen actions need."""

    target: str
    free_bytes: int | None
    needed_bytes: int
    payload_bytes: int
    method: str
    filesystem: str | None

    @property
    def fits(self) -> bool | None:
        """``None`` when the free space cannot be known (the export then refuses by default)."""
        return None if self.free_bytes is None else self.free_bytes >= self.needed_bytes


def check_space(
    db: sqlite_utils.Database,
    target: Path,
    action_ids: Sequence[str],
    *,
    probe: Callable[[Path], Capacity] = probe_capacity,
    mountinfo: str | None = None,
) -> SpaceCheck:
    """How much the export of ``action_ids`` (latest versions) needs on ``target``, and what
    is free there (``probe`` measures it; tests pass a fixed one, and a fixed ``mountinfo``
    for the filesystem shown). Space held by a previous export is counted as in use."""
    from airseal.appliance.actions import get_action

    target = Path(target)
    if not target.is_dir():
        from airseal.appliance.errors import UsageError

        raise UsageError(f"{target} is not a folder", hint="give the mount point of the media")
    capacity = probe(target)
    filesystem = identify_filesystem(target, mountinfo)
    files: list[tuple[str, int]] = []
    payload_bytes = 0
    for action_id in dict.fromkeys(action_ids):
        record = get_action(db, action_id)
        payload = record.predicate.payload
        size = payload.size
        payload_bytes += size
        files.append((layout.ACTION_BUNDLE_NAME, len(record.bundle.encode())))
        limit = filesystem.split_threshold or max(size, 1)
        parts = max(1, -(-size // limit))
        for index in range(parts):
            files.append((payload.name, min(limit, size - index * limit)))
    files.append((layout.STATEMENT_NAME, 4096 + 1024 * len(files)))
    directories = 3 + 2 * len(action_ids)
    needed = space_needed(files, directories, capacity.cluster_size)
    mount = find_mount(os.fspath(target), mountinfo)
    return SpaceCheck(
        target=str(target),
        free_bytes=capacity.free_bytes,
        needed_bytes=needed,
        payload_bytes=payload_bytes,
        method=capacity.method,
        filesystem=mount.fstype if mount else None,
    )
