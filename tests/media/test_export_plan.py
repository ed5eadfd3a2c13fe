"""Step 1 of an export (airseal.media.export_plan): every source placed and checked, no writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airseal.media.capacity import Capacity
from airseal.media.errors import InsufficientSpace, UnsafeName
from airseal.media.export_plan import ExtraFile, check_capacity, check_target, plan_export
from airseal.trustroot.signer import PrivateKeySigner

from .helpers import SPLIT_THRESHOLD, standard_actions


def test_each_source_is_placed_and_large_payloads_are_split(
    tmp_path: Path, signer: PrivateKeySigner
) -> None:
    actions = standard_actions(signer, tmp_path)
    plan = plan_export(actions, [], split_threshold=SPLIT_THRESHOLD)
    split = next(item for item in plan.items if item.action is actions[0])
    assert [path for path, _ in split.targets] == [
        f"actions/act-split/payload/act-split.bin.part{n:03d}" for n in range(3)
    ]
    last = 300_000 - 2 * SPLIT_THRESHOLD
    assert [size for _, size in split.targets] == [SPLIT_THRESHOLD, SPLIT_THRESHOLD, last]
    assert split.signed_sha256 is not None  # the read-back checks against what was signed
    assert len(plan.items) == 2 * len(actions)  # a bundle and a payload per action
    assert plan.total_bytes == sum(item.size for item in plan.items)


def test_extra_files_may_not_take_reserved_places(
    tmp_path: Path, signer: PrivateKeySigner
) -> None:
    source = tmp_path / "root.json"
    source.write_text("{}")
    actions = standard_actions(signer, tmp_path)
    with pytest.raises(UnsafeName):
        plan_export(
            actions, [ExtraFile("Receipts/x.json", source)], split_threshold=SPLIT_THRESHOLD
        )


def test_checks_refuse_without_touching_the_media(
    tmp_path: Path, signer: PrivateKeySigner
) -> None:
    mount = tmp_path / "usb"
    mount.mkdir()
    (mount / ".airseal-staging-old").mkdir()
    (mount / ".airseal-staging-old" / "part").write_bytes(b"x" * 1000)
    plan = plan_export(standard_actions(signer, tmp_path), [], split_threshold=SPLIT_THRESHOLD)
    leftovers, reclaimable = check_target(mount)
    assert [p.name for p in leftovers] == [".airseal-staging-old"] and reclaimable == 1000
    with pytest.raises(InsufficientSpace):
        check_capacity(
            mount,
            plan,
            new_dirs=9,
            reclaimable=reclaimable,
            probe=lambda _: Capacity(free_bytes=1024, cluster_size=512, method="test"),
            allow_unknown_capacity=False,
        )
    assert sorted(os.listdir(mount)) == [".airseal-staging-old"]
