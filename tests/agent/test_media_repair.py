"""Self-repairing media: PAR2 repair data written with an export (media/parity.py), damage within
the parity's limit repaired by `media repair` (and by Debian's own `par2`), then the agent
imports; beyond the limit a clear refusal; hostile repair data never lets par2 touch a file
outside airseal/."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from airseal.media import parity
from airseal.media.check import check_media
from airseal.media.parity import (
    ParityToolMissing,
    UnsafeRepairData,
    par2_tool,
    plan_parity,
    repair_media,
)
from tests.realparts.fat32 import fat32_mount, fsck

from .conftest import ImportRunner
from .helpers import ActionBuild, Distributor, new_distributor, sign_action, write_media

PART = 4096


def _export(
    base: Path, mount: Path, percent: int, distributor: Distributor | None = None,
    parts_in: str = "payloads.par2", skipped: str = "",
) -> tuple[Path, Path]:
    """Two downloads: a 20 KiB payload split into five parts and a whole one, both covered by
    ``payloads.par2`` (made from the appliance's copies while the export is written)."""
    distributor = distributor or new_distributor(base / "keys")
    payload = base / "tool.conf"
    payload.write_bytes(os.urandom(5 * PART))
    whole = base / "small.conf"
    whole.write_bytes(os.urandom(3000))
    actions = [
        sign_action(ActionBuild("dl", payload, dest=str(base / "dest/tool.conf")), distributor),
        sign_action(ActionBuild("whole", whole, dest=str(base / "dest/small.conf")),
                    distributor),
    ]
    write_media(mount, distributor, actions, split_threshold=PART, parity_percent=percent,
                allow_unknown_capacity=True)
    repair = sorted(os.listdir(mount / "airseal-repair"))
    assert [name.split(".")[0] for name in repair] == ["airseal"] * 2 + ["payloads"] * 2, repair
    assert [name.split(".")[1][:5] for name in repair] == ["par2", "vol00"] * 2, repair
    parts = {f"airseal/actions/dl/payload/tool.conf.part00{i}" for i in range(5)}
    assert parts <= _names_in(mount, parts_in)
    whole = "airseal/actions/whole/payload/small.conf"
    assert whole in _names_in(mount, "airseal.par2" if skipped == whole else "payloads.par2")
    return mount / "airseal/actions/dl/payload", payload


def _names_in(mount: Path, index: str) -> set[str]:
    """The files a set's index names (its FileDesc packets)."""
    data = (mount / "airseal-repair" / index).read_bytes()
    return {
        data[at + 120 : at + int.from_bytes(data[at + 8 : at + 16], "little")]
        .rstrip(b"\0").decode()
        for at in range(len(data)) if data.startswith(b"PAR2\0PKT", at)
        and data[at + 48 : at + 64] == b"PAR 2.0\0FileDesc"
    }


def _damage(parts: Path) -> None:
    """Random bytes over two places of one part and of the whole payload, another part
    deleted."""
    with open(parts.parents[1] / "whole/payload/small.conf", "r+b") as handle:
        handle.seek(100)
        handle.write(os.urandom(16))
    with open(parts / "tool.conf.part001", "r+b") as handle:
        for offset in (10, 3000):
            handle.seek(offset)
            handle.write(os.urandom(16))
    (parts / "tool.conf.part003").unlink()


def _tree(mount: Path) -> dict[str, bytes]:
    return {str(p.relative_to(mount)): p.read_bytes() for p in mount.rglob("*") if p.is_file()}


def test_plan_uses_few_large_blocks() -> None:
    plan = plan_parity([1 << 30, 2000, 1500], 10)
    assert plan.source_blocks == 102 and plan.recovery_blocks == 11
    assert plan.block_size % 4 == 0 and plan.block_size * 100 >= 1 << 30
    with pytest.raises(ValueError, match="1 to 100"):
        plan_parity([10], 0)


@pytest.mark.parametrize(
    ("size", "percent", "block", "recovery"),
    [
        (100 << 10, 10, 1024, 10),  # tiny: 100 blocks, as ever
        (1 << 20, 10, 4096, 26),  # small: sector-sized blocks, many damage sites (cheap)
        (100 << 20, 10, 256 << 10, 40),  # data x recovery blocks = the budget (4 GiB)
        (8 << 30, 10, 85899348, 10),  # large: the floor, a cost proportional to the data
        (1 << 30, 50, 53687092, 10),  # more percent: bigger blocks, not more of them
    ],
)
def test_recovery_blocks_follow_the_cpu_budget(
    size: int, percent: int, block: int, recovery: int
) -> None:
    plan = plan_parity([size], percent)
    assert (plan.block_size, plan.recovery_blocks) == (block, recovery)
    assert plan.recovery_blocks * plan.block_size >= size * percent // 100


def test_parts_without_scratch_space_are_covered_from_the_media(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(parity, "_copy_slice", no_space)
    mount = tmp_path / "usb"
    parts, _ = _export(tmp_path, mount, 40, parts_in="airseal.par2")
    assert _names_in(mount, "payloads.par2") == {"airseal/actions/whole/payload/small.conf"}
    _damage(parts)
    assert repair_media(mount).ok


def test_a_payload_the_background_set_skipped_is_covered_from_the_media(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A creator that leaves a file out (par2cmdline-turbo skips links) loses no coverage: what
    ``payloads.par2`` names is read back, the rest goes to ``airseal.par2``."""
    creator = tmp_path / "par2-drops-the-last-file"
    creator.write_text('#!/bin/bash\nexec par2 "${@:1:$#-1}"\n')
    creator.chmod(0o755)
    monkeypatch.setattr(parity, "PAR2_TOOL", str(creator))
    mount = tmp_path / "usb"
    parts, _ = _export(tmp_path, mount, 40, skipped="airseal/actions/whole/payload/small.conf")
    monkeypatch.undo()
    _damage(parts)
    assert repair_media(mount).ok


def test_a_missing_par2_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ParityToolMissing) as caught:
        par2_tool()
    assert "par2" in str(caught.value)
    assert "apt-get install par2" in caught.value.hint and "parity-percent 0" in caught.value.hint


def test_damage_within_the_limit_is_repaired_then_the_agent_imports(
    tmp_path: Path, run_import: ImportRunner, distributor: Distributor
) -> None:
    parts, payload = _export(tmp_path, tmp_path / "usb", 40, distributor)
    _damage(parts)
    assert check_media(tmp_path / "usb").status != "complete"

    report = repair_media(tmp_path / "usb")
    assert report.outcome == "repaired" and report.ok, report
    states = {f.path.rsplit("/", 1)[-1]: f.state for f in report.files if f.state != "found"}
    assert states == {
        "tool.conf.part001": "damaged", "tool.conf.part003": "missing", "small.conf": "damaged"
    }
    assert sorted(os.listdir(parts)) == [f"tool.conf.part00{i}" for i in range(5)]  # no backups

    imported = run_import(tmp_path / "usb")
    assert imported.status == "completed", imported
    assert (tmp_path / "dest" / "tool.conf").read_bytes() == payload.read_bytes()
    assert repair_media(tmp_path / "usb").outcome == "intact"


def test_debians_par2_repairs_the_same_media_without_airseal(tmp_path: Path) -> None:
    mount = tmp_path / "usb"
    parts, _ = _export(tmp_path, mount, 40)
    _damage(parts)
    for index in ("airseal.par2", "payloads.par2"):  # as docs/courier-guide.md says
        done = subprocess.run(
            ["par2", "repair", "-q", "-p", "-B", str(mount), str(mount / "airseal-repair" / index)],
            capture_output=True, text=True, check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert check_media(mount).status == "complete"


def test_beyond_the_limit_says_how_much_is_short_and_changes_nothing(tmp_path: Path) -> None:
    mount = tmp_path / "usb"
    parts, _ = _export(tmp_path, mount, 10)
    (parts / "tool.conf.part001").unlink()
    (parts / "tool.conf.part003").unlink()
    before = _tree(mount)

    report = repair_media(mount)
    assert report.outcome == "beyond-limit" and not report.ok
    assert report.blocks_short > 0 and report.bytes_short == report.blocks_short * report.block_size
    assert {f.state for f in report.files} == {"found", "missing"}
    assert report.check.status == "incomplete"
    assert _tree(mount) == before


def _patch_repair_names(mount: Path, old: bytes, new: bytes) -> None:
    assert len(old) == len(new)
    for path in (mount / "airseal-repair").iterdir():
        path.write_bytes(path.read_bytes().replace(old, new))


@pytest.mark.parametrize(
    "hostile",
    ["traversal", "outside-airseal", "link-in-path", "receipts"],
)
def test_hostile_repair_data_is_refused_before_par2_runs(tmp_path: Path, hostile: str) -> None:
    mount = tmp_path / "usb"
    parts, _ = _export(tmp_path, mount, 40)
    statement = b"airseal/export.sigstore.json"
    if hostile == "traversal":
        _patch_repair_names(mount, statement, b"airseal/../../../tmp/pwned.x")
    elif hostile == "receipts":
        _patch_repair_names(mount, statement, b"airseal/receipts/a/pwned.xyz")
    elif hostile == "outside-airseal":
        (mount / "notes.txt").write_bytes(b"x" * 100)
        shutil.rmtree(mount / "airseal-repair")
        subprocess.run(
            ["par2", "c", "-q", "-q", "-B", str(mount), str(mount / "airseal-repair/airseal.par2"),
             "notes.txt", "airseal/export.sigstore.json"],
            cwd=mount, check=True,
        )
    else:
        outside = tmp_path / "elsewhere"
        shutil.copytree(parts, outside)
        shutil.rmtree(parts)
        parts.symlink_to(outside)
        (outside / "tool.conf.part002").write_bytes(b"damaged")
    before = _tree(tmp_path)
    with pytest.raises(UnsafeRepairData) as caught:
        repair_media(mount)
    assert caught.value.check == "parity"
    assert _tree(tmp_path) == before


def test_repair_on_fat32(
    tmp_path: Path, run_import: ImportRunner, distributor: Distributor
) -> None:
    with fat32_mount(tmp_path, 40) as fat:
        parts, payload = _export(tmp_path, fat.mount, 40, distributor)
        _damage(parts)
        report = repair_media(fat.mount)
        assert report.outcome == "repaired" and report.ok, report
        assert run_import(fat.mount).status == "completed"
        assert (tmp_path / "dest" / "tool.conf").read_bytes() == payload.read_bytes()
    clean, output = fsck(fat.image)
    assert clean, output


class _Pulled(Exception):
    pass


def test_repair_data_follows_its_export_and_an_interrupted_export_leaves_none(
    tmp_path: Path,
) -> None:
    mount = tmp_path / "usb"
    _export(tmp_path, mount, 20)
    distributor = new_distributor(tmp_path / "keys2")
    payload = tmp_path / "next.conf"
    payload.write_bytes(os.urandom(3000))
    action = [sign_action(ActionBuild("next", payload, dest=str(tmp_path / "n")), distributor)]

    def pull(step: str) -> None:
        if step.startswith("write actions/next/payload"):
            raise _Pulled

    with pytest.raises(_Pulled):
        write_media(mount, distributor, action, export_id="export-2", sequence=2,
                    parity_percent=20, on_step=pull)
    assert sorted(os.listdir(mount)) == ["airseal", "airseal-repair"]  # nothing left over
    assert repair_media(mount).outcome == "intact"  # the previous export keeps its repair data

    write_media(mount, distributor, action, export_id="export-3", sequence=3, parity_percent=20)
    report = repair_media(mount)
    assert report.outcome == "intact" and report.ok
    assert {f.path for f in report.files} == {
        "airseal/export.sigstore.json", "airseal/actions/next/action.sigstore.json",
        "airseal/actions/next/payload/next.conf",
    }
