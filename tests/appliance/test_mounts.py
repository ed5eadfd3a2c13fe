"""Which mounts the export screen offers as media, read from a real-format mount table."""

from __future__ import annotations

from airseal.appliance.mounts import detect_media
from airseal.media.capacity import find_mount, read_mount_table

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid - proc proc rw
30 22 8:17 / /media/ops/USB\\040STICK rw,nosuid,nodev - vfat /dev/sdb1 rw,fmask=0022
31 22 8:33 / /run/media/ops/BACKUP rw - ext4 /dev/sdc1 rw
32 22 0:50 / /tmp/fat rw - fuse.fusefat /work/fat.img rw,user_id=0
33 22 0:51 / /mnt rw - ext4 /dev/sdd1 rw
34 22 0:52 / /srv/data rw - xfs /dev/sde1 rw
garbage line without the separator
"""


def test_removable_filesystems_and_media_folders_are_offered():
    found = {m.mount_point: (m.fstype, m.source) for m in detect_media(MOUNTINFO)}
    assert found == {
        "/media/ops/USB STICK": ("vfat", "/dev/sdb1"),  # \040 unescaped
        "/run/media/ops/BACKUP": ("ext4", "/dev/sdc1"),  # under a media folder
        "/tmp/fat": ("fuse.fusefat", "/work/fat.img"),  # a FAT filesystem anywhere
    }


def test_the_deepest_mount_holds_a_path():
    assert find_mount("/media/ops/USB STICK/airseal", MOUNTINFO).fstype == "vfat"
    assert find_mount("/srv/data2", MOUNTINFO).mount_point == "/"
    assert len(read_mount_table(MOUNTINFO)) == 7


def test_no_mount_table_means_nothing_detected():
    assert detect_media("") == []
