"""The courier's check against tampered media: every problem reported with the file named."""

from __future__ import annotations

import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from airseal.media.check import CheckReport, check_media
from airseal.media.limits import MAX_EXPORT_BUNDLE_BYTES
from airseal.media.statement import EXPORT_PREDICATE_TYPE
from airseal.media.writer import write_export
from airseal.trustroot.bundle import bundle_to_json, parse_bundle, sign_statement
from airseal.trustroot.dsse import Statement
from airseal.trustroot.signer import PrivateKeySigner

from .helpers import NOW, SPLIT_THRESHOLD, export_header, signing_callback, standard_actions

PAYLOAD = "airseal/actions/act-small/payload/act-small.bin"
PART1 = "airseal/actions/act-split/payload/act-split.bin.part001"


@pytest.fixture
def mount(tmp_path: Path, signer: PrivateKeySigner) -> Path:
    stick = tmp_path / "stick"
    stick.mkdir()
    write_export(
        stick,
        standard_actions(signer, tmp_path),
        export_header(signer, "exp-1"),
        signing_callback(signer),
        split_threshold=SPLIT_THRESHOLD,
    )
    return stick


def only(report: CheckReport, kind: str) -> list[tuple[str, str]]:
    """``(path, check)`` of the findings of one kind, asserting there are no others."""
    found = getattr(report, kind)
    others = [f for f in report.findings if f not in found]
    assert not others, others
    return [(f.path, f.check) for f in found]


def test_untouched_media_checks_complete(mount: Path) -> None:
    progress: list[tuple[int, int]] = []
    report = check_media(mount, now=NOW, on_progress=lambda d, t: progress.append((d, t)))
    assert report.status == "complete" and report.ok
    assert (report.export_id, report.sequence, report.actions) == ("exp-1", 1, 3)
    assert report.expires == NOW + timedelta(days=14)
    assert report.expired is False
    assert check_media(mount, now=NOW + timedelta(days=15)).expired is True
    assert progress[-1][0] == progress[-1][1] == report.bytes_checked
    data = json.loads(report.to_json())
    assert data["status"] == "complete"
    assert data["exportId"] == "exp-1"
    assert data["expires"] == "2025-06-15T12:00:00Z"
    assert "not checked" in data["authenticity"]


def test_flipped_byte(mount: Path) -> None:
    path = mount / PAYLOAD
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    report = check_media(mount)
    assert report.status == "damaged"
    assert only(report, "damaged") == [(PAYLOAD, "sha256")]
    assert "the statement lists" in report.damaged[0].reason
    assert json.loads(report.to_json())["damaged"][0]["path"] == PAYLOAD


def test_flipped_byte_in_a_part_of_a_split_payload(mount: Path) -> None:
    path = mount / PART1
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x80
    path.write_bytes(bytes(data))
    report = check_media(mount)
    assert only(report, "damaged") == [(PART1, "sha256")]


def test_truncated_file(mount: Path) -> None:
    os.truncate(mount / PAYLOAD, 10)
    report = check_media(mount)
    assert report.status == "damaged"
    assert only(report, "damaged") == [(PAYLOAD, "size")]
    assert "is 10 bytes, the statement lists 5000" in report.damaged[0].reason


def test_missing_file(mount: Path) -> None:
    (mount / PART1).unlink()
    report = check_media(mount)
    assert report.status == "incomplete"
    assert only(report, "missing") == [(PART1, "present")]


def test_extra_file(mount: Path) -> None:
    (mount / "airseal/actions/act-small/payload/evil.sh").write_text("#!/bin/sh\n")
    report = check_media(mount)
    assert report.status == "damaged"
    assert only(report, "extra") == [("airseal/actions/act-small/payload/evil.sh", "listed")]


def test_files_outside_airseal_are_not_our_business(mount: Path) -> None:
    (mount / "holiday.jpg").write_bytes(b"\xff\xd8")
    assert check_media(mount).status == "complete"


def test_symlink_in_place_of_a_file(mount: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.bin"
    shutil.copy(mount / PAYLOAD, copy)  # same bytes: only the link itself is wrong
    (mount / PAYLOAD).unlink()
    os.symlink(copy, mount / PAYLOAD)
    report = check_media(mount)
    assert report.status == "damaged"
    assert only(report, "unsafe") == [(PAYLOAD, "entry-type")]
    assert "symbolic link" in report.unsafe[0].reason


def test_symlinked_directory(mount: Path, tmp_path: Path) -> None:
    payload_dir = mount / "airseal/actions/act-split/payload"
    shutil.copytree(payload_dir, tmp_path / "payload-copy")
    shutil.rmtree(payload_dir)
    os.symlink(tmp_path / "payload-copy", payload_dir)
    report = check_media(mount)
    assert report.status == "damaged"
    assert ("airseal/actions/act-split/payload", "entry-type") in [
        (f.path, f.check) for f in report.unsafe
    ]
    assert report.files_checked == 5  # nothing behind the link was read


def test_fifo(mount: Path) -> None:
    os.mkfifo(mount / "airseal/actions/act-small/pipe")
    report = check_media(mount)
    assert only(report, "unsafe") == [("airseal/actions/act-small/pipe", "entry-type")]


def test_fifo_in_place_of_a_listed_file_does_not_hang(mount: Path) -> None:
    (mount / PAYLOAD).unlink()
    os.mkfifo(mount / PAYLOAD)
    report = check_media(mount)
    assert only(report, "unsafe") == [(PAYLOAD, "entry-type")]


def test_hard_link(mount: Path, tmp_path: Path) -> None:
    os.link(mount / PAYLOAD, tmp_path / "second-name")
    report = check_media(mount)
    assert only(report, "unsafe") == [(PAYLOAD, "entry-type")]
    assert "hard link" in report.unsafe[0].reason


@pytest.mark.parametrize("name", ["evil..", "CON", "aux.txt", "a:b"])
def test_file_with_a_name_unsafe_on_fat(mount: Path, name: str) -> None:
    (mount / "airseal/actions" / name).write_text("x")
    report = check_media(mount)
    assert only(report, "unsafe") == [(f"airseal/actions/{name}", "name")]


def test_file_named_with_dotdot_is_extra(mount: Path) -> None:
    (mount / "airseal/..evil").write_text("x")
    report = check_media(mount)
    assert only(report, "extra") == [("airseal/..evil", "listed")]


def _forge(mount: Path, signer: PrivateKeySigner, edit: callable) -> None:  # type: ignore[valid-type]
    """Re-sign a modified statement: the check does not verify signatures, only completeness."""
    path = mount / "airseal/export.sigstore.json"
    bundle = parse_bundle(path.read_bytes())
    assert bundle.dsse_envelope is not None
    data = json.loads(bundle.dsse_envelope.payload)
    edit(data)
    statement = Statement.model_validate(data)
    path.write_bytes(bundle_to_json(sign_statement(signer, statement)))


def test_statement_listing_a_path_with_dotdot_is_damaged(
    mount: Path, signer: PrivateKeySigner
) -> None:
    def escape(data: dict) -> None:  # type: ignore[type-arg]
        data["subject"].append({"name": "actions/../../etc/passwd", "digest": {"sha256": "0" * 64}})
        data["predicate"]["files"].append({"path": "actions/../../etc/passwd", "size": 1})

    _forge(mount, signer, escape)
    report = check_media(mount)
    assert report.status == "damaged"
    assert only(report, "damaged") == [("airseal/export.sigstore.json", "statement")]
    assert "'..'" in report.damaged[0].reason


def test_split_parts_must_join_to_the_payload_digest(mount: Path, signer: PrivateKeySigner) -> None:
    def wrong_join(data: dict) -> None:  # type: ignore[type-arg]
        split = next(a for a in data["predicate"]["actions"] if a["id"] == "act-split")
        split["payload"]["sha256"] = "0" * 64

    _forge(mount, signer, wrong_join)
    report = check_media(mount)
    assert report.status == "damaged"
    found = only(report, "damaged")
    assert found == [("airseal/actions/act-split/payload/act-split.bin.part000", "sha256")]
    assert "3 parts of action act-split's payload join to" in report.damaged[0].reason


def test_swapped_parts_are_damaged(mount: Path) -> None:
    first = mount / "airseal/actions/act-split/payload/act-split.bin.part000"
    second = mount / PART1
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)
    report = check_media(mount)
    assert {f.path for f in report.damaged} == {str(first.relative_to(mount)), PART1}


def test_statement_of_another_kind_is_damaged(mount: Path, signer: PrivateKeySigner) -> None:
    def retype(data: dict) -> None:  # type: ignore[type-arg]
        data["predicateType"] = EXPORT_PREDICATE_TYPE.replace("export", "other")

    _forge(mount, signer, retype)
    report = check_media(mount)
    assert only(report, "damaged") == [("airseal/export.sigstore.json", "statement")]


def test_garbage_statement_is_damaged(mount: Path) -> None:
    (mount / "airseal/export.sigstore.json").write_bytes(b"{not json")
    report = check_media(mount)
    assert only(report, "damaged") == [("airseal/export.sigstore.json", "statement")]


def test_oversized_statement_is_refused_unread(mount: Path) -> None:
    os.truncate(mount / "airseal/export.sigstore.json", MAX_EXPORT_BUNDLE_BYTES + 1)
    report = check_media(mount)
    assert only(report, "damaged") == [("airseal/export.sigstore.json", "size-limit")]


def test_symlinked_statement_is_unsafe(mount: Path, tmp_path: Path) -> None:
    statement = mount / "airseal/export.sigstore.json"
    shutil.copy(statement, tmp_path / "statement.json")
    statement.unlink()
    os.symlink(tmp_path / "statement.json", statement)
    report = check_media(mount)
    assert only(report, "unsafe") == [("airseal/export.sigstore.json", "entry-type")]


def test_missing_statement_is_incomplete(mount: Path) -> None:
    (mount / "airseal/export.sigstore.json").unlink()
    report = check_media(mount)
    assert report.status == "incomplete"
    assert only(report, "missing") == [("airseal/export.sigstore.json", "present")]


def test_no_export_at_all_is_incomplete(tmp_path: Path) -> None:
    report = check_media(tmp_path)
    assert report.status == "incomplete"
    assert only(report, "missing") == [("airseal", "present")]


def test_leftover_staging_folder_is_incomplete(mount: Path) -> None:
    (mount / ".airseal-staging-exp-2").mkdir()
    report = check_media(mount)
    assert report.status == "incomplete"
    assert report.export_id == "exp-1"
    assert only(report, "leftovers") == [(".airseal-staging-exp-2", "leftover")]


def test_valid_receipts_are_allowed_and_others_are_extra(mount: Path) -> None:
    receipts = mount / "airseal/receipts/agent-1"
    receipts.mkdir(parents=True)
    (receipts / "exp-1.json").write_text("{}")
    assert check_media(mount).status == "complete"
    (receipts / "payload.exe").write_text("MZ")
    report = check_media(mount)
    assert only(report, "extra") == [("airseal/receipts/agent-1/payload.exe", "listed")]
