"""The writer, the check and the capacity probe on a real FAT32 filesystem (fusefat)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airseal.media.capacity import fat32_space, probe_capacity
from airseal.media.check import check_media
from airseal.media.errors import InsufficientSpace, UnsafeName
from airseal.media.writer import ActionToExport, write_export
from airseal.trustroot.signer import PrivateKeySigner
from tests.realparts.fat32 import Fat32, fat32_mount, fsck

from .crash import ExportSeries, count_steps, run_export_in_child
from .helpers import export_header, make_action, signing_callback, write_payload

THRESHOLD = 256 * 1024


def tree(mount: Path) -> dict[str, int]:
    return {
        str(p.relative_to(mount)): p.stat().st_size for p in sorted(mount.rglob("*")) if p.is_file()
    }


def fat_actions(signer: PrivateKeySigner, workdir: Path, seed: int) -> list[ActionToExport]:
    return [
        make_action(signer, workdir, "act-split", 1_000_000, seed=seed, version=seed + 1),
        make_action(signer, workdir, "act-small", 20_000, seed=seed + 1, version=seed + 1),
    ]


def test_round_trip_on_fat32_with_a_split_payload(
    fat32: Fat32, tmp_path: Path, signer: PrivateKeySigner
) -> None:
    actions = fat_actions(signer, tmp_path, 0)
    result = write_export(
        fat32.mount,
        actions,
        export_header(signer, "exp-1"),
        signing_callback(signer),
        split_threshold=THRESHOLD,
    )
    assert result.capacity.method == f"fat32:{fat32.image}"
    parts = sorted(os.listdir(fat32.mount / "airseal/actions/act-split/payload"))
    assert parts == [f"act-split.bin.part00{i}" for i in range(4)]
    report = check_media(fat32.mount)
    assert report.status == "complete", report.findings
    assert report.files_checked == len(result.files) == 7

    # a second export replaces the first on FAT32 too
    second = fat_actions(signer, tmp_path, 5)
    write_export(
        fat32.mount,
        second[1:],
        export_header(signer, "exp-2", 2),
        signing_callback(signer),
        split_threshold=THRESHOLD,
    )
    report = check_media(fat32.mount)
    assert (report.status, report.export_id) == ("complete", "exp-2"), report.findings
    assert os.listdir(fat32.mount / "airseal/actions") == ["act-small"]

    # tampering is seen through FAT too (in place: fusefat refuses O_TRUNC)
    payload = fat32.mount / "airseal/actions/act-small/payload/act-small.bin"
    with open(payload, "r+b") as f:
        f.seek(7)
        byte = f.read(1)
        f.seek(7)
        f.write(bytes([byte[0] ^ 0xFF]))
    report = check_media(fat32.mount)
    assert [(f.path, f.check) for f in report.damaged] == [
        ("airseal/actions/act-small/payload/act-small.bin", "sha256")
    ]


def test_names_unsafe_on_fat_are_refused_before_writing(
    fat32: Fat32, tmp_path: Path, signer: PrivateKeySigner
) -> None:
    action = make_action(signer, tmp_path, "act-1", 100)
    for name in ("aux.bin", "what?.bin", "dots..."):
        bad = ActionToExport(action.id, 1, action.name, action.bundle, action.payload, name)
        with pytest.raises(UnsafeName):
            write_export(fat32.mount, [bad], export_header(signer, "e"), signing_callback(signer))
    twins = [make_action(signer, tmp_path, "Setup", 10), make_action(signer, tmp_path, "SETUP", 10)]
    with pytest.raises(UnsafeName, match="case-insensitive"):
        write_export(fat32.mount, twins, export_header(signer, "e"), signing_callback(signer))
    assert os.listdir(fat32.mount) == []


def test_capacity_probe_reads_the_fat_behind_fusefat(fat32: Fat32, tmp_path: Path) -> None:
    assert os.statvfs(fat32.mount).f_blocks == 0  # why the fallback exists
    before = probe_capacity(fat32.mount)
    assert before.method == f"fat32:{fat32.image}"
    assert before.cluster_size == 512
    write_payload(fat32.mount / "filler.bin", 1_000_000)
    after = probe_capacity(fat32.mount)
    assert before.free_bytes is not None and after.free_bytes is not None
    assert before.free_bytes - after.free_bytes == -(-1_000_000 // 512) * 512
    assert after.free_bytes == fat32_space(fat32.image).free_bytes


def test_capacity_probe_with_fsname_mount_option(tmp_path: Path) -> None:
    with fat32_mount(tmp_path, 34, name="named", fsname=True) as fat:
        capacity = probe_capacity(fat.mount)
        assert capacity.method == f"fat32:{fat.image}"
        assert capacity.free_bytes == fat32_space(fat.image).free_bytes


def test_nearly_full_media_fails_before_writing_and_keeps_the_old_export(
    fat32: Fat32, tmp_path: Path, signer: PrivateKeySigner
) -> None:
    old = [make_action(signer, tmp_path, "act-old", 50_000, seed=1)]
    write_export(fat32.mount, old, export_header(signer, "exp-1"), signing_callback(signer))
    free = probe_capacity(fat32.mount).free_bytes
    assert free is not None
    write_payload(fat32.mount / "filler.bin", free - 1_500_000)
    before = tree(fat32.mount)

    new = fat_actions(signer, tmp_path, 3)  # ~1 MB, plus the margin: does not fit in 1.5 MB
    with pytest.raises(InsufficientSpace) as caught:
        write_export(
            fat32.mount,
            new,
            export_header(signer, "exp-2", 2),
            signing_callback(signer),
            split_threshold=THRESHOLD,
        )
    message = str(caught.value)
    assert "needs" in message and "bytes free" in message and f"fat32:{fat32.image}" in message
    assert "previous export" in message
    assert tree(fat32.mount) == before  # nothing written, not even a staging folder
    report = check_media(fat32.mount)
    assert (report.status, report.export_id) == ("complete", "exp-1"), report.findings


def test_kills_on_fat32_leave_previous_or_incomplete(
    tmp_path: Path, signer: PrivateKeySigner
) -> None:
    """Fewer kills than on a plain folder (fusefat is slow), spread over steps and time."""
    steps = count_steps(tmp_path, signer, 1_000_000)
    source = tmp_path / "src"
    source.mkdir()
    with fat32_mount(tmp_path, 40) as fat:
        series = ExportSeries(fat.mount, signer, source, 1_000_000)
        series.advance()
        outcome = run_export_in_child(series.next_run)
        assert outcome.exit_code == 0
        series.sequence += 1
        seen = [series.kill_next(at_step=len(steps) * i // 10 + 1) for i in range(10)]
        seen += [series.kill_next(after=outcome.seconds * (i + 0.5) / 6) for i in range(6)]
        assert "incomplete" in seen
    clean, output = fsck(fat.image)
    assert clean, output  # the FUSE daemon outlives the killed exporter: FAT stays consistent


def test_a_payload_over_several_read_back_windows_on_fat32(
    fat32: Fat32, tmp_path: Path, signer: PrivateKeySigner
) -> None:
    """fusefat refuses reads past the size a descriptor saw at open: the read-back, which trails
    the writer window by window, failed with EPERM on every payload above one window (32 MiB
    by default; 2 MiB here, so the payload spans five)."""
    action = make_action(signer, tmp_path, "act-big", 10_000_000, seed=3, version=1)
    write_export(
        fat32.mount, [action], export_header(signer, "exp-w"), signing_callback(signer),
        split_threshold=4 * 1024**3 - 1, readback_window=2 * 1024**2,
    )
    report = check_media(fat32.mount)
    assert report.status == "complete", report.findings
