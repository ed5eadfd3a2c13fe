"""The writer, the check, the capacity probe and the split decision on a real exFAT filesystem
(mkfs.exfat image on a loop device, mounted with exfat-fuse), and the filesystem identification
from real-format mount tables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from airseal.media import layout
from airseal.media.capacity import probe_capacity
from airseal.media.check import check_media
from airseal.media.errors import UnsafeName
from airseal.media.export_plan import plan_export
from airseal.media.filesystem import boot_sector_kind, identify_filesystem
from airseal.media.statement import action_statement
from airseal.media.writer import ActionToExport, write_export
from airseal.trustroot.bundle import bundle_to_json, sign_statement
from airseal.trustroot.signer import PrivateKeySigner
from tests.realparts.exfat import Exfat, exfat_mount, fsck
from tests.realparts.fat32 import fat32_mount

from .crash import ExportSeries, count_steps, run_export_in_child
from .helpers import action_predicate, export_header, make_action, signing_callback

pytestmark = pytest.mark.root


@pytest.fixture
def exfat(tmp_path: Path) -> Iterator[Exfat]:
    """A 64 MiB exFAT volume; after unmounting, ``fsck.exfat -n`` must find it clean."""
    with exfat_mount(tmp_path, 64) as ex:
        yield ex
    clean, output = fsck(ex.image)
    assert clean, output


def test_exfat_is_identified_and_payloads_are_not_split(
    exfat: Exfat, tmp_path: Path, signer: PrivateKeySigner
) -> None:
    filesystem = identify_filesystem(exfat.mount)
    assert (filesystem.kind, filesystem.split_threshold) == ("exfat", None)
    assert filesystem.how == f"boot sector of {exfat.device}"  # exfat-fuse mounts as fuseblk
    action = make_action(signer, tmp_path, "act-big", 3_000_000)
    # the threshold the writer uses by default: nothing is split on exFAT...
    plan = plan_export([action], [], split_threshold=filesystem.split_threshold)
    assert [len(item.targets) for item in plan.items] == [1, 1]
    # ...where the same payload above FAT32's threshold would be
    plan = plan_export([action], [], split_threshold=1_000_000)
    assert [len(item.targets) for item in plan.items] == [1, 3]


def test_round_trip_on_exfat(exfat: Exfat, tmp_path: Path, signer: PrivateKeySigner) -> None:
    actions = [
        make_action(signer, tmp_path, "act-big", 3_000_000, seed=1),
        make_action(signer, tmp_path, "act-small", 20_000, seed=2),
    ]
    capacity = probe_capacity(exfat.mount)
    assert capacity.method == "statvfs" and capacity.free_bytes  # exfat-fuse reports its size
    result = write_export(
        exfat.mount, actions, export_header(signer, "exp-1"), signing_callback(signer)
    )
    assert result.capacity.method == "statvfs" and result.read_back_ok
    assert os.listdir(exfat.mount / "airseal/actions/act-big/payload") == ["act-big.bin"]
    assert probe_capacity(exfat.mount).free_bytes < capacity.free_bytes  # type: ignore[operator]
    report = check_media(exfat.mount)
    assert report.status == "complete", report.findings
    assert report.files_checked == len(result.files) == 4  # 2 bundles, 2 whole payloads

    # a second export replaces the first, then tampering is seen through exFAT too
    write_export(
        exfat.mount, actions[1:], export_header(signer, "exp-2", 2), signing_callback(signer)
    )
    assert os.listdir(exfat.mount / "airseal/actions") == ["act-small"]
    payload = exfat.mount / "airseal/actions/act-small/payload/act-small.bin"
    with open(payload, "r+b") as f:
        f.seek(7)
        byte = f.read(1)
        f.seek(7)
        f.write(bytes([byte[0] ^ 0xFF]))
    report = check_media(exfat.mount)
    assert report.export_id == "exp-2"
    assert [(f.path, f.check) for f in report.damaged] == [
        ("airseal/actions/act-small/payload/act-small.bin", "sha256")
    ]


@pytest.mark.slow
def test_a_payload_above_fat32s_limit_is_written_whole_on_exfat(
    tmp_path: Path, signer: PrivateKeySigner
) -> None:
    """The reason sticks above 32 GB are exFAT: a 4 GiB + 1 MiB payload, one file, verified."""
    size = layout.FAT32_MAX_FILE_SIZE + 1 + 1024 * 1024
    source = tmp_path / "big.src"
    with open(source, "wb") as f:  # sparse on the host: only the exFAT copy costs disk
        f.truncate(size)
        f.seek(size - 5)
        f.write(b"tail!")
    predicate = action_predicate("act-huge", source, "huge.img")
    action = ActionToExport(
        "act-huge", 1, predicate.name,
        bundle_to_json(sign_statement(signer, action_statement(predicate))), source, "huge.img",
    )
    with exfat_mount(tmp_path, 4400) as ex:
        write_export(ex.mount, [action], export_header(signer, "exp-big"), signing_callback(signer))
        placed = ex.mount / "airseal/actions/act-huge/payload"
        assert [(p.name, p.stat().st_size) for p in placed.iterdir()] == [("huge.img", size)]
        report = check_media(ex.mount)
        assert report.status == "complete", report.findings
        assert report.bytes_checked > size
    clean, output = fsck(ex.image)
    assert clean, output


def test_kills_on_exfat_leave_previous_or_incomplete(
    tmp_path: Path, signer: PrivateKeySigner
) -> None:
    """An exporter killed at steps and times spread over an export, on exFAT as on FAT32."""
    steps = count_steps(tmp_path, signer, 1_000_000)
    source = tmp_path / "src"
    source.mkdir()
    with exfat_mount(tmp_path, 64) as ex:
        series = ExportSeries(ex.mount, signer, source, 1_000_000)
        series.advance()
        outcome = run_export_in_child(series.next_run)
        assert outcome.exit_code == 0
        series.sequence += 1
        seen = [series.kill_next(at_step=len(steps) * i // 10 + 1) for i in range(10)]
        seen += [series.kill_next(after=outcome.seconds * (i + 0.5) / 6) for i in range(6)]
        assert "incomplete" in seen
    clean, output = fsck(ex.image)
    assert clean, output  # the FUSE daemon outlives the killed exporter


def test_names_unsafe_on_exfat_are_refused_before_writing(
    exfat: Exfat, tmp_path: Path, signer: PrivateKeySigner
) -> None:
    action = make_action(signer, tmp_path, "act-1", 100)
    for name in ("aux.bin", "what?.bin", "tab\there"):
        bad = ActionToExport(action.id, 1, action.name, action.bundle, action.payload, name)
        with pytest.raises(UnsafeName):
            write_export(exfat.mount, [bad], export_header(signer, "e"), signing_callback(signer))
    twins = [make_action(signer, tmp_path, "Setup", 10), make_action(signer, tmp_path, "SETUP", 10)]
    with pytest.raises(UnsafeName, match="case-insensitive"):
        write_export(exfat.mount, twins, export_header(signer, "e"), signing_callback(signer))
    assert os.listdir(exfat.mount) == []


def test_fat32_keeps_the_4_gib_split(tmp_path: Path) -> None:
    with fat32_mount(tmp_path, 34) as fat:
        filesystem = identify_filesystem(fat.mount)
    assert (filesystem.kind, filesystem.split_threshold) == ("fat", layout.FAT32_MAX_FILE_SIZE)
    assert filesystem.how == "mount table: fuse.fusefat"


def test_boot_sectors_of_real_images(tmp_path: Path) -> None:
    with exfat_mount(tmp_path, 64, name="a") as ex:
        pass
    with fat32_mount(tmp_path, 34, name="b") as fat:
        pass
    assert boot_sector_kind(ex.image) == "exfat"
    assert boot_sector_kind(fat.image) == "fat"
    plain = tmp_path / "zeros.img"
    plain.write_bytes(bytes(4096))
    assert boot_sector_kind(plain) is None
    assert boot_sector_kind(tmp_path / "missing.img") is None
    # a fuseblk mount whose source is an exFAT volume, as a mount table names it
    mountinfo = f"40 22 7:0 / /media/stick rw - fuseblk {ex.image} rw,user_id=0\n"
    assert identify_filesystem("/media/stick/airseal", mountinfo).kind == "exfat"


MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 8:17 / /media/a rw - vfat /dev/sdb1 rw
31 22 8:33 / /media/b rw - exfat /dev/sdc1 rw
32 22 8:49 / /media/c rw - ntfs3 /dev/sdd1 rw
33 22 0:50 / /media/d rw - fuse.fusefat fusefat rw
34 22 0:51 / /media/e rw - fuseblk /dev/does-not-exist rw
35 22 0:52 / /media/f rw - fuse.sshfs host:/x rw
"""


@pytest.mark.parametrize(
    ("path", "kind", "threshold"),
    [
        ("/media/a", "fat", layout.FAT32_MAX_FILE_SIZE),
        ("/media/b/airseal", "exfat", None),
        ("/media/c", "ntfs3", None),
        ("/media/d", "fat", layout.FAT32_MAX_FILE_SIZE),
        ("/srv", "ext4", None),
        # unidentified: split as for FAT32, since parts are read everywhere
        ("/media/e", "unknown", layout.FAT32_MAX_FILE_SIZE),
        ("/media/f", "unknown", layout.FAT32_MAX_FILE_SIZE),
    ],
)
def test_filesystem_from_the_mount_table(path: str, kind: str, threshold: int | None) -> None:
    filesystem = identify_filesystem(path, MOUNTINFO)
    assert (filesystem.kind, filesystem.split_threshold) == (kind, threshold)


def test_no_mount_table_splits_as_for_fat32() -> None:
    filesystem = identify_filesystem("/anywhere", "")
    assert (filesystem.kind, filesystem.split_threshold) == ("unknown", layout.FAT32_MAX_FILE_SIZE)
