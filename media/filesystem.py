"""Which filesystem holds the media, and so whether large payloads must be split.

FAT32 cannot hold a file of 4 GiB or more, so an export splits larger payloads into ``.partNNN``
files there. exFAT (what sticks above 32 GB come formatted with), NTFS and the Unix filesystems
hold files far larger than any payload, so an export on them writes every payload whole.

The filesystem is read from the mount table (``/proc/self/mountinfo``). A kernel driver names it
(``vfat``, ``exfat``, ``ntfs3``, ``ext4``, ...); a FUSE driver for a block device does not
(exfat-fuse and ntfs-3g both mount as ``fuseblk``), so then the volume's boot sector is read: the
OEM name at offset 3 (``EXFAT   ``, ``NTFS    ``) or the FAT32 type at offset 82. Hand-written
because no library in the dependency set identifies a mounted volume; ``blkid`` would be a
subprocess for sixteen bytes.

When the filesystem cannot be identified (no mount table, as on macOS or Windows, a FUSE driver
without a readable source, an unfamiliar type) the export splits as for FAT32: parts are read
everywhere, a file too large for the filesystem is not written at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

from airseal.media import layout
from airseal.media.capacity import find_mount

FAT: Final = "fat"
EXFAT: Final = "exfat"

_FAT_TYPES: Final = frozenset({"vfat", "msdos", "fat", "umsdos", "fuse.fusefat", "fusefat"})
_EXFAT_TYPES: Final = frozenset({"exfat", "fuse.exfat", "fuse.exfat-fuse"})
_LARGE_FILE_TYPES: Final = frozenset(
    {
        "ntfs", "ntfs3", "fuse.ntfs-3g", "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "zfs",
        "tmpfs", "overlay", "hfsplus", "apfs", "9p", "virtiofs", "nfs", "nfs4",
    }
)
_FUSE_BLOCK_TYPES: Final = frozenset({"fuseblk", "fuse"})


@dataclass(frozen=True)
class Filesystem:
    """The filesystem holding the media, as far as it can be known."""

    kind: str
    """``fat``, ``exfat``, another filesystem type (``ntfs``, ``ext4``...), or ``unknown``."""
    max_file_size: int | None
    """The largest file it holds; ``None`` when no payload can reach its limit."""
    how: str
    """How it was identified, for messages (``mount table: vfat``, ``boot sector of /dev/sdb1``)."""

    @property
    def split_threshold(self) -> int | None:
        """Payloads above this many bytes are split; ``None``: never split."""
        return self.max_file_size


def boot_sector_kind(device: str | os.PathLike[str]) -> str | None:
    """``exfat``, ``ntfs`` or ``fat`` from a volume's first sector; ``None`` otherwise."""
    try:
        with open(device, "rb") as f:
            boot = f.read(512)
    except OSError:
        return None
    if len(boot) < 512 or boot[510:512] != b"\x55\xaa":
        return None
    if boot[3:11] == b"EXFAT   ":
        return EXFAT
    if boot[3:11] == b"NTFS    ":
        return "ntfs"
    if boot[82:90] == b"FAT32   " or boot[54:59] in (b"FAT12", b"FAT16"):
        return FAT
    return None


def _from_kind(kind: str, how: str) -> Filesystem:
    limit = layout.FAT32_MAX_FILE_SIZE if kind in (FAT, "unknown") else None
    return Filesystem(kind, limit, how)


def identify_filesystem(
    path: str | os.PathLike[str], mountinfo: str | None = None
) -> Filesystem:
    """The filesystem holding ``path`` (see the module docstring); ``mountinfo`` for tests."""
    mount = find_mount(path, mountinfo)
    if mount is None:
        return _from_kind("unknown", "no mount table")
    fstype = mount.fstype
    if fstype in _FAT_TYPES:
        return _from_kind(FAT, f"mount table: {fstype}")
    if fstype in _EXFAT_TYPES:
        return _from_kind(EXFAT, f"mount table: {fstype}")
    if fstype in _LARGE_FILE_TYPES:
        return _from_kind(fstype, f"mount table: {fstype}")
    if fstype in _FUSE_BLOCK_TYPES and mount.source.startswith("/"):
        kind = boot_sector_kind(mount.source)
        if kind is not None:
            return _from_kind(kind, f"boot sector of {mount.source}")
        return _from_kind("unknown", f"{fstype} on {mount.source}, boot sector not recognised")
    return _from_kind("unknown", f"mount table: {fstype}")
