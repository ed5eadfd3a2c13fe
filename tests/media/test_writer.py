"""The export writer on a plain directory: layout, split payloads, refusals, replacement."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path

import pytest

from airseal.media.capacity import Capacity
from airseal.media.check import check_media
from airseal.media.errors import (
    InsufficientSpace,
    MediaWriteError,
    PayloadMismatch,
    ReadBackMismatch,
    UnknownCapacity,
    UnsafeName,
)
from airseal.media.readback import ReadBack
from airseal.media.writer import ActionToExport, ExtraFile, write_export
from airseal.trustroot.bundle import parse_bundle
from airseal.trustroot.signer import PrivateKeySigner
from airseal.trustroot.verify import verify_dsse_bundle

from .helpers import (
    SPLIT_THRESHOLD,
    export_header,
    make_action,
    signing_callback,
    standard_actions,
)


def media_files(mount: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(mount)): p.read_bytes() for p in sorted(mount.rglob("*")) if p.is_file()
    }


@pytest.fixture
def mount(tmp_path: Path) -> Path:
    path = tmp_path / "stick"
    path.mkdir()
    return path


def test_export_round_trip_with_a_split_payload(
    tmp_path: Path, mount: Path, signer: PrivateKeySigner
) -> None:
    actions = standard_actions(signer, tmp_path)
    progress: list[tuple[int, int]] = []
    steps: list[str] = []
    result = write_export(
        mount,
        actions,
        export_header(signer, "exp-1"),
        signing_callback(signer),
        split_threshold=SPLIT_THRESHOLD,
        on_progress=lambda done, total: progress.append((done, total)),
        on_step=steps.append,
    )
    payload_dir = mount / "airseal/actions/act-split/payload"
    parts = sorted(p.name for p in payload_dir.iterdir())
    assert parts == ["act-split.bin.part000", "act-split.bin.part001", "act-split.bin.part002"]
    joined = b"".join((payload_dir / name).read_bytes() for name in parts)
    assert joined == actions[0].payload.read_bytes()
    assert (payload_dir / parts[0]).stat().st_size == SPLIT_THRESHOLD
    assert (mount / "airseal/actions/act-empty/payload/act-empty.bin").read_bytes() == b""
    assert sorted(os.listdir(mount)) == ["airseal"]  # staging and old folders are gone

    assert result.read_back_ok
    assert result.export_id == "exp-1"
    assert len(result.files) == 3 + 3 + 1 + 1
    assert progress[-1][0] == progress[-1][1] == 2 * sum(f.size for f in result.files)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(progress))
    assert steps[0].startswith("mkdir .airseal-staging-exp-1")
    assert any(s.startswith("move .airseal-staging-exp-1/export.sigstore.json") for s in steps)

    # The statement is genuinely signed by the key (what the agent will check).
    bundle = parse_bundle((mount / "airseal/export.sigstore.json").read_bytes())
    statement = verify_dsse_bundle(signer.public_key, bundle)
    assert statement == result.statement
    subjects = {s.name: s.sha256 for s in statement.subject}
    for written in result.files:
        data = (mount / "airseal" / written.path).read_bytes()
        assert subjects[written.path] == hashlib.sha256(data).hexdigest() == written.sha256
    predicate = statement.predicate
    split = next(a for a in predicate["actions"] if a["id"] == "act-split")
    assert split["payload"]["sha256"] == hashlib.sha256(joined).hexdigest()
    assert len(split["payload"]["parts"]) == 3
    assert {f["path"]: f["size"] for f in predicate["files"]} == {
        f.path: f.size for f in result.files
    }

    report = check_media(mount)
    assert report.status == "complete", report.findings
    assert report.files_checked == len(result.files)


def test_payload_exactly_at_the_threshold_is_not_split(
    tmp_path: Path, mount: Path, signer: PrivateKeySigner
) -> None:
    action = make_action(signer, tmp_path, "act-edge", 4096)
    write_export(
        mount, [action], export_header(signer, "e"), signing_callback(signer), split_threshold=4096
    )
    assert os.listdir(mount / "airseal/actions/act-edge/payload") == ["act-edge.bin"]


@pytest.mark.parametrize("payload_name", ["CON.txt", "a:b.bin", "trailing.", "x" * 256, "a/b"])
def test_payload_names_unsafe_on_fat_are_refused_before_writing(
    tmp_path: Path, mount: Path, signer: PrivateKeySigner, payload_name: str
) -> None:
    action = make_action(signer, tmp_path, "act-1", 10)
    bad = ActionToExport(
        action.id, action.version, action.name, action.bundle, action.payload, payload_name
    )
    with pytest.raises(UnsafeName):
        write_export(mount, [bad], export_header(signer, "e"), signing_callback(signer))
    assert os.listdir(mount) == []


def test_action_ids_that_collide_ignoring_case_are_refused(
    tmp_path: Path, mount: Path, signer: PrivateKeySigner
) -> None:
    first = make_action(signer, tmp_path, "Tool", 10)
    second = make_action(signer, tmp_path, "tool", 10)
    with pytest.raises(UnsafeName, match="same name on FAT32"):
        write_export(mount, [first, second], export_header(signer, "e"), signing_callback(signer))
    assert os.listdir(mount) == []


def test_a_payload_that_is_not_what_the_action_signed_is_refused(
    tmp_path: Path, mount: Path, signer: PrivateKeySigner
) -> None:
    write_export(
        mount,
        standard_actions(signer, tmp_path),
        export_header(signer, "exp-1"),
        signing_callback(signer),
        split_threshold=SPLIT_THRESHOLD,
    )
    before = media_files(mount)
    action = make_action(signer, tmp_path, "act-1", 1000)
    action.payload.write_bytes(b"\x00" * 1000)  # same size, other content
    with pytest.raises(PayloadMismatch, match="the action signed"):
        write_export(mount, [action], export_header(signer, "exp-2"), signing_callback(signer))
    assert media_files(mount) == before
    assert check_media(mount).export_id == "exp-1"

    other = make_action(signer, tmp_path, "act-2", 1000)
    renamed = ActionToExport("act-3", 1, other.name, other.bundle, other.payload, "act-2.bin")
    with pytest.raises(PayloadMismatch, match="differs in id"):
        write_export(mount, [renamed], export_header(signer, "exp-3"), signing_callback(signer))
    assert media_files(mount) == before


def test_a_source_that_changes_during_the_export_is_refused(
    tmp_path: Path, mount: Path, signer: PrivateKeySigner
) -> None:
    action = make_action(signer, tmp_path, "act-1", 300_000)

    def shrink(step: str) -> None:
        if step.startswith("write actions/act-1/payload"):
            os.truncate(action.payload, 1000)

    with pytest.raises(MediaWriteError, match="the source ended"):
        write_export(
            mount, [action], export_header(signer, "e"), signing_callback(signer), on_step=shrink
        )
    assert os.listdir(mount) == []  # the staging folder was removed


def test_a_signer_returning_the_wrong_statement_is_refused(
    tmp_path: Path, mount: Path, signer: PrivateKeySigner
) -> None:
    actions = standard_actions(signer, tmp_path)
    earlier = write_export(
        mount,
        actions,
        export_header(signer, "exp-1"),
        signing_callback(signer),
        split_threshold=SPLIT_THRESHOLD,
    )
    stale = (mount / "airseal/export.sigstore.json").read_bytes()
    with pytest.raises(MediaWriteError, match="does not carry this export's statement"):
        write_export(
            mount,
            actions,
            export_header(signer, "exp-2", 2),
            lambda _statement: stale,
            split_threshold=SPLIT_THRESHOLD,
        )
    report = check_media(mount)
    assert (report.status, report.export_id) == ("complete", earlier.export_id)


def test_a_new_export_replaces_the_old_one_and_keeps_receipts(
    tmp_path: Path, mount: Path, signer: PrivateKeySigner
) -> None:
    write_export(
        mount,
        standard_actions(signer, tmp_path),
        export_header(signer, "exp-1"),
        signing_callback(signer),
        split_threshold=SPLIT_THRESHOLD,
    )
    receipt = mount / "airseal/receipts/agent-1/exp-1.json"
    receipt.parent.mkdir(parents=True)
    receipt.write_text(json.dumps({"ok": True}))
    assert check_media(mount).receipts == 1

    only = make_action(signer, tmp_path, "act-new", 2000, seed=9)
    write_export(mount, [only], export_header(signer, "exp-2", 2), signing_callback(signer))
    assert sorted(os.listdir(mount / "airseal/actions")) == ["act-new"]
    assert receipt.read_text() == '{"ok": true}'
    report = check_media(mount)
    assert (report.status, report.export_id, report.sequence) == ("complete", "exp-2", 2)
    assert report.receipts == 1


def test_leftovers_of_an_interrupted_export_are_removed_by_the_next(
    tmp_path: Path, mount: Path, signer: PrivateKeySigner
) -> None:
    (mount / ".airseal-staging-exp-0/actions").mkdir(parents=True)
    (mount / ".airseal-staging-exp-0/actions/junk.bin").write_bytes(b"x" * 100)
    (mount / ".airseal-old-exp-0").mkdir()
    (mount / ".airseal-old-exp-x").write_text("a file, not a folder")
    os.symlink(tmp_path, mount / ".airseal-staging-exp-y")  # never followed, only removed
    (mount / "unrelated.txt").write_text("the courier's own file")
    result = write_export(
        mount,
        standard_actions(signer, tmp_path),
        export_header(signer, "exp-1"),
        signing_callback(signer),
        split_threshold=SPLIT_THRESHOLD,
    )
    assert sorted(result.removed_leftovers) == [
        ".airseal-old-exp-0",
        ".airseal-old-exp-x",
        ".airseal-staging-exp-0",
        ".airseal-staging-exp-y",
    ]
    assert (tmp_path / "store").is_dir()  # the symlink's target was left alone
    assert sorted(os.listdir(mount)) == ["airseal", "unrelated.txt"]
    assert check_media(mount).status == "complete"


def test_extra_files_are_listed_and_checked(
    tmp_path: Path, mount: Path, signer: PrivateKeySigner
) -> None:
    root = tmp_path / "root.json"
    root.write_text('{"signed": {}}')
    write_export(
        mount,
        [],
        export_header(signer, "exp-1"),
        signing_callback(signer),
        extra_files=[ExtraFile("tuf/metadata/root.json", root)],
    )
    assert (mount / "airseal/tuf/metadata/root.json").read_text() == '{"signed": {}}'
    assert check_media(mount).status == "complete"
    with pytest.raises(UnsafeName, match="extra files cannot"):
        write_export(
            mount,
            [],
            export_header(signer, "exp-2"),
            signing_callback(signer),
            extra_files=[ExtraFile("receipts/x/y.json", root)],
        )


def test_unknown_capacity_is_refused_unless_allowed(
    tmp_path: Path, mount: Path, signer: PrivateKeySigner
) -> None:
    def unknown(_mount: Path) -> Capacity:
        return Capacity(None, 4096, "unknown: test filesystem")

    actions = standard_actions(signer, tmp_path)
    with pytest.raises(UnknownCapacity, match="cannot tell whether") as caught:
        write_export(
            mount, actions, export_header(signer, "e"), signing_callback(signer), capacity=unknown
        )
    assert "ignore-capacity" in caught.value.diagnostics()
    assert os.listdir(mount) == []
    write_export(
        mount,
        actions,
        export_header(signer, "e"),
        signing_callback(signer),
        capacity=unknown,
        allow_unknown_capacity=True,
    )
    assert check_media(mount).status == "complete"


def test_insufficient_space_names_need_and_free(
    tmp_path: Path, mount: Path, signer: PrivateKeySigner
) -> None:
    def tiny(_mount: Path) -> Capacity:
        return Capacity(100_000, 4096, "statvfs")

    with pytest.raises(InsufficientSpace, match=r"needs \d+ bytes .* has 100000 bytes free"):
        write_export(
            mount,
            standard_actions(signer, tmp_path),
            export_header(signer, "e"),
            signing_callback(signer),
            capacity=tiny,
        )
    assert os.listdir(mount) == []


def test_airseal_folder_that_is_a_symlink_is_refused(
    tmp_path: Path, mount: Path, signer: PrivateKeySigner
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, mount / "airseal")
    with pytest.raises(MediaWriteError, match="not a plain folder"):
        write_export(
            mount,
            [make_action(signer, tmp_path, "act-1", 10)],
            export_header(signer, "e"),
            signing_callback(signer),
        )
    assert os.listdir(elsewhere) == []


def test_an_empty_export_is_refused(mount: Path, signer: PrivateKeySigner) -> None:
    with pytest.raises(ValueError, match="nothing to export"):
        write_export(mount, [], export_header(signer, "e"), signing_callback(signer))
    assert os.listdir(mount) == []


def test_bad_export_header_is_refused_before_writing(
    tmp_path: Path, mount: Path, signer: PrivateKeySigner
) -> None:
    header = export_header(signer, "exp/1")
    with pytest.raises(ValueError, match="export_id"):
        write_export(mount, [], header, signing_callback(signer))
    assert os.listdir(mount) == []


def test_read_back_catches_bytes_that_changed_on_the_media(tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    data = b"A" * 100_000
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    os.write(fd, data)
    with ReadBack() as readback:
        tracked = readback.track(path, fd, "airseal/file.bin")
        with open(path, "r+b") as other:  # the media returns something else than was written
            other.seek(5000)
            other.write(b"B")
        readback.finish(tracked, len(data), hashlib.sha256(data).hexdigest())
        with pytest.raises(ReadBackMismatch, match="read back sha256") as caught:
            readback.drain()
    assert caught.value.subject == "airseal/file.bin"


def test_read_back_catches_a_short_file(tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    os.write(fd, b"A" * 1000)
    os.truncate(path, 10)
    with ReadBack() as readback:
        tracked = readback.track(path, fd, "airseal/file.bin")
        readback.finish(tracked, 1000, hashlib.sha256(b"A" * 1000).hexdigest())
        with pytest.raises(ReadBackMismatch, match="ends after 10 bytes"):
            readback.drain()


def test_read_back_hashes_the_parts_of_a_payload_in_order(tmp_path: Path) -> None:
    """Payloads are not hashed by the writer: the read-back's whole digest over the parts, in
    order, is what the export compares with the signed digest, so a byte the media changes in
    any part shows there."""
    parts = [b"A" * 70_000, b"B" * 50_000, b"C" * 10]
    for corrupt in (None, 1):
        whole = hashlib.sha256()
        with ReadBack(window=16_384) as readback:
            for index, data in enumerate(parts):
                path = tmp_path / f"{corrupt}-part{index}"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT)
                os.write(fd, data)
                if index == corrupt:
                    with open(path, "r+b") as other:
                        other.seek(49_999)
                        other.write(b"x")
                tracked = readback.track(path, fd, f"airseal/part{index}", whole=whole)
                readback.written(tracked, len(data) // 2)
                readback.finish(tracked, len(data), None)
            results = readback.drain()
        assert [r.size for r in results] == [len(p) for p in parts]
        genuine = hashlib.sha256(b"".join(parts)).hexdigest()
        if corrupt is None:
            assert whole.hexdigest() == genuine
            assert [r.sha256 for r in results] == [hashlib.sha256(p).hexdigest() for p in parts]
        else:
            assert whole.hexdigest() != genuine
            assert results[1].sha256 != hashlib.sha256(parts[1]).hexdigest()
