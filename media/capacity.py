"""How much space is free on the media, and how much an export needs.

``statvfs`` answers for kernel filesystems (vfat, exfat, ext4, ...). FUSE's ``fusefat`` reports
a size of 0, so for a FUSE mount the backing FAT32 image or device is located and its free
clusters are counted from the FAT itself:

1. ``/proc/self/mountinfo`` names the filesystem type and source of the mount; when the source is
   a path to an image or block device (``fusefat -o fsname=IMG``), that is the candidate;
2. otherwise the running ``fusefat`` processes are examined: the image is one of their open files
   (``/proc/PID/fd``; the daemon changes directory to ``/``, so relative arguments are useless);
3. a candidate is accepted only if its boot sector is FAT32 *and* its data-cluster count equals
   the ``f_files`` that the mount reports (fusefat reports clusters as inodes), so an unrelated
   image is never measured by mistake.

When none of this works the answer is "unknown" (``free_bytes is None``) and the writer refuses
unless told to go ahead: guessing would risk a full stick halfway through an export.

Counting free FAT entries is authoritative; the FSInfo free count is a hint that may be stale,
and is reported but not used.
"""

from __future__ import annotations

import math
import os
import stat
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from airseal.media.limits import MiB

MARGIN_BYTES = 1 * MiB
"""Kept free beyond the estimate (directory growth, FSInfo, filesystem rounding)."""
FAT_DIRENTRY_BYTES = 32
_FAT_ENTRY_MASK = 0x0FFFFFFF
_FSINFO_LEAD = 0x41615252
_FSINFO_STRUCT = 0x61417272
_FUSEFAT_NAMES = ("fusefat",)


@dataclass(frozen=True)
class Capacity:
    """Free space on the media as far as it can be known."""

    free_bytes: int | None
    """``None`` when the free space cannot be determined."""
    cluster_size: int
    method: str
    """How it was determined, for messages: ``statvfs``, ``fat32:<image>`` or ``unknown: why``."""


@dataclass(frozen=True)
class Fat32Space:
    """What a FAT32 volume's boot sector and FAT say about its space."""

    cluster_size: int
    total_clusters: int
    free_clusters: int
    fsinfo_free_clusters: int | None

    @property
    def free_bytes(self) -> int:
        return self.free_clusters * self.cluster_size


@dataclass(frozen=True)
class MountInfo:
    mount_point: str
    fstype: str
    source: str


class NotFat32(ValueError):
    """The file does not start with a FAT32 boot sector."""


def fat32_space(image: str | os.PathLike[str]) -> Fat32Space:
    """Read a FAT32 boot sector and count free clusters in the first FAT (read-only)."""
    with open(image, "rb") as f:
        boot = f.read(512)
        if len(boot) < 512 or boot[510:512] != b"\x55\xaa":
            raise NotFat32("no boot sector signature")
        bytes_per_sector, sectors_per_cluster, reserved, fats = struct.unpack_from(
            "<HBHB", boot, 11
        )
        root_entries, total16, _media, fat16_size = struct.unpack_from("<HHBH", boot, 17)
        total32, fat32_size = struct.unpack_from("<II", boot, 32)
        fsinfo_sector = struct.unpack_from("<H", boot, 48)[0]
        if bytes_per_sector not in (512, 1024, 2048, 4096):
            raise NotFat32(f"bytes per sector {bytes_per_sector}")
        if sectors_per_cluster == 0 or sectors_per_cluster & (sectors_per_cluster - 1):
            raise NotFat32(f"sectors per cluster {sectors_per_cluster}")
        if fats == 0 or reserved == 0 or root_entries != 0 or fat16_size != 0 or fat32_size == 0:
            raise NotFat32("not a FAT32 layout")
        total_sectors = total32 or total16
        data_sectors = total_sectors - reserved - fats * fat32_size
        if data_sectors <= 0:
            raise NotFat32("no data area")
        clusters = data_sectors // sectors_per_cluster
        if clusters + 2 > fat32_size * bytes_per_sector // 4:
            raise NotFat32("FAT too small for the cluster count")

        free = 0
        f.seek(reserved * bytes_per_sector)
        remaining = clusters + 2  # entries 0 and 1 are reserved
        index = 0
        while remaining:
            count = min(remaining, MiB // 4)
            raw = f.read(count * 4)
            if len(raw) != count * 4:
                raise NotFat32("FAT is truncated")
            entries = struct.unpack(f"<{count}I", raw)
            start = 2 - index if index < 2 else 0
            free += sum(1 for e in entries[start:] if e & _FAT_ENTRY_MASK == 0)
            index += count
            remaining -= count

        fsinfo_free: int | None = None
        if 0 < fsinfo_sector < reserved:
            f.seek(fsinfo_sector * bytes_per_sector)
            info = f.read(512)
            if len(info) == 512:
                (lead,) = struct.unpack_from("<I", info, 0)
                sig, hint = struct.unpack_from("<II", info, 484)
                if lead == _FSINFO_LEAD and sig == _FSINFO_STRUCT and hint <= clusters:
                    fsinfo_free = hint
    return Fat32Space(bytes_per_sector * sectors_per_cluster, clusters, free, fsinfo_free)


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def read_mount_table(mountinfo: str | None = None) -> list[MountInfo]:
    """Every mount in ``/proc/self/mountinfo`` (Linux), or in the text given; ``[]`` without one."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
    mounts: list[MountInfo] = []
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(" "), right.split(" ")
        if not sep or len(fields) < 5 or len(tail) < 2:
            continue
        mounts.append(MountInfo(_unescape(fields[4]), tail[0], _unescape(tail[1])))
    return mounts


def find_mount(path: str | os.PathLike[str], mountinfo: str | None = None) -> MountInfo | None:
    """The mount holding ``path`` according to ``/proc/self/mountinfo`` (Linux), or ``None``."""
    target = os.path.realpath(path)
    best: MountInfo | None = None
    for mount in read_mount_table(mountinfo):
        point = mount.mount_point
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.mount_point)):
            best = mount
    return best


def _fusefat_open_files() -> list[tuple[str, list[str]]]:
    """``(file, argv)`` for every regular file or block device a fusefat process holds open."""
    found: list[tuple[str, list[str]]] = []
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return found
    for pid in pids:
        try:
            argv = [a for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
            if not argv or os.path.basename(argv[0]).decode(errors="replace") not in _FUSEFAT_NAMES:
                continue
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if not target.startswith("/"):
                    continue
                mode = os.stat(target).st_mode
                if stat.S_ISREG(mode) or stat.S_ISBLK(mode):
                    found.append((target, [a.decode(errors="replace") for a in argv]))
        except OSError:
            continue
    return found


def _positional(argv: list[str]) -> list[str]:
    args, skip = [], False
    for arg in argv[1:]:
        if skip:
            skip = False
        elif arg == "-o":
            skip = True
        elif not arg.startswith("-"):
            args.append(arg)
    return args


def fuse_backing_image(mount: MountInfo, clusters_hint: int) -> tuple[Path, Fat32Space] | None:
    """The FAT32 image or device behind a FUSE mount, cross-checked by its cluster count."""
    candidates: list[tuple[int, str]] = []
    if mount.source.startswith("/"):
        candidates.append((0, mount.source))
    mount_name = os.path.basename(mount.mount_point.rstrip("/"))
    for target, argv in _fusefat_open_files():
        positional = _positional(argv)
        named = (
            len(positional) >= 2
            and os.path.basename(positional[-1].rstrip("/")) == mount_name
            and os.path.basename(positional[-2]) == os.path.basename(target)
        )
        candidates.append((1 if named else 2, target))
    matches: dict[str, Fat32Space] = {}
    best_rank: int | None = None
    for rank, candidate in sorted(candidates):
        if best_rank is not None and rank > best_rank:
            break
        try:
            space = fat32_space(candidate)
        except (OSError, NotFat32):
            continue
        if clusters_hint and space.total_clusters != clusters_hint:
            continue
        matches[os.path.realpath(candidate)] = space
        best_rank = rank
    if len(matches) != 1:
        return None
    ((path, space),) = matches.items()
    return Path(path), space


def probe_capacity(mount: str | os.PathLike[str]) -> Capacity:
    """Free bytes and allocation unit of the filesystem holding ``mount``."""
    try:
        vfs = os.statvfs(mount)
    except (OSError, AttributeError) as exc:
        return Capacity(None, 4096, f"unknown: statvfs failed ({exc})")
    unit = vfs.f_frsize or vfs.f_bsize or 4096
    if vfs.f_blocks > 0:
        return Capacity(vfs.f_bavail * unit, max(unit, 512), "statvfs")
    info = find_mount(mount)
    if info is None:
        return Capacity(None, unit, "unknown: statvfs reports size 0 and no mount table")
    if not info.fstype.startswith("fuse"):
        return Capacity(None, unit, f"unknown: statvfs reports size 0 on {info.fstype}")
    found = fuse_backing_image(info, vfs.f_files)
    if found is None:
        return Capacity(
            None,
            unit,
            f"unknown: {info.fstype} at {info.mount_point} reports size 0 and its FAT32 "
            "image could not be identified",
        )
    image, space = found
    return Capacity(space.free_bytes, space.cluster_size, f"fat32:{image}")


def space_needed(files: Iterable[tuple[str, int]], directories: int, cluster_size: int) -> int:
    """Bytes an export of ``files`` (``(name, size)``) in ``directories`` folders will take.

    Each file is rounded up to whole clusters; each folder takes at least one cluster plus
    its entries, counted as the larger of FAT32's (a short entry and long-name entries of 13
    UTF-16 units) and exFAT's (a file and a stream entry, and name entries of 15 units), all
    32 bytes each; a margin is added.
    """
    cluster = max(cluster_size, 512)
    data = 0
    entry_bytes = 0
    for name, size in files:
        data += math.ceil(size / cluster) * cluster
        units = len(name.encode("utf-16-le")) // 2
        entries = max(1 + math.ceil(units / 13), 2 + math.ceil(units / 15))
        entry_bytes += FAT_DIRENTRY_BYTES * entries
    folders = directories * cluster + math.ceil(entry_bytes / cluster) * cluster
    return data + folders + MARGIN_BYTES
