"""Capacity: FAT32 boot sector and FAT parsing, the mount table, and the space estimate."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from airseal.media.capacity import (
    MARGIN_BYTES,
    NotFat32,
    fat32_space,
    find_mount,
    probe_capacity,
    space_needed,
)
from tests.realparts.fat32 import make_image, require_tools


def test_fresh_fat32_image_is_all_free_but_the_root_folder(tmp_path: Path) -> None:
    require_tools()
    image = tmp_path / "fresh.img"
    make_image(image, 40)
    space = fat32_space(image)
    assert space.cluster_size == 512
    assert space.free_clusters == space.total_clusters - 1  # the root folder's cluster
    assert space.fsinfo_free_clusters == space.free_clusters
    assert space.free_bytes == space.free_clusters * 512


def test_files_that_are_not_fat32_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\0" * 4096)
    with pytest.raises(NotFat32, match="signature"):
        fat32_space(junk)
    boot = bytearray(512)
    boot[510:512] = b"\x55\xaa"
    boot[11:13] = (512).to_bytes(2, "little")
    boot[13] = 3  # not a power of two
    junk.write_bytes(bytes(boot))
    with pytest.raises(NotFat32, match="sectors per cluster"):
        fat32_space(junk)


MOUNTINFO = """\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
42 22 0:39 / /tmp/with\\040space rw,nosuid,nodev,relatime - fuse.fusefat fusefat rw,user_id=0
43 22 0:40 / /tmp/named rw,nosuid,nodev,relatime - fuse /tmp/usb.img rw,user_id=0
"""


def test_mount_table_lookup_takes_the_deepest_mount_and_unescapes() -> None:
    found = find_mount("/tmp/with space/airseal", MOUNTINFO)
    assert found is not None
    assert (found.mount_point, found.fstype, found.source) == (
        "/tmp/with space",
        "fuse.fusefat",
        "fusefat",
    )
    named = find_mount("/tmp/named", MOUNTINFO)
    assert named is not None and named.source == "/tmp/usb.img"
    root = find_mount("/tmp/namedx", MOUNTINFO)
    assert root is not None and root.mount_point == "/"


def test_plain_directory_uses_statvfs(tmp_path: Path) -> None:
    capacity = probe_capacity(tmp_path)
    assert capacity.method == "statvfs"
    assert capacity.free_bytes is not None and capacity.free_bytes > 0


def test_space_needed_rounds_to_clusters_and_adds_folders_and_margin() -> None:
    files = [("a.bin", 1), ("b.bin", 512), ("c.bin", 513), ("empty", 0)]
    need = space_needed(files, directories=3, cluster_size=512)
    data = 512 + 512 + 1024 + 0
    entries = math.ceil(4 * 3 * 32 / 512) * 512  # exFAT: file, stream and one name entry each
    assert need == data + 3 * 512 + entries + MARGIN_BYTES
