"""MediaSource.write_receipt: the one write an agent makes, through the same safe walk as reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from airseal.media.errors import InvalidReceipt, MediaWriteError, MissingFile, UnsafeEntry
from airseal.media.limits import MAX_RECEIPT_BYTES
from airseal.media.reader import DirectorySource, MediaSource
from airseal.media.rules import MediaEntry


@pytest.fixture(params=[True, False], ids=["openat", "portable"])
def use_dir_fd(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def media(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    (root / "airseal").mkdir(parents=True)
    return root


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_writes_the_receipt_and_its_folders(media: Path, use_dir_fd: bool) -> None:
    source = DirectorySource(media, use_dir_fd=use_dir_fd)
    where = source.write_receipt("agent-1", "export-1", b'{"receipt": 1}')
    assert where == "airseal/receipts/agent-1/export-1.json"
    assert (media / where).read_bytes() == b'{"receipt": 1}'
    assert tree(media / "airseal") == [
        "receipts",
        "receipts/agent-1",
        "receipts/agent-1/export-1.json",
    ]


def test_a_second_receipt_replaces_the_first_atomically(media: Path, use_dir_fd: bool) -> None:
    source = DirectorySource(media, use_dir_fd=use_dir_fd)
    source.write_receipt("agent-1", "export-1", b"first")
    source.write_receipt("agent-1", "export-1", b"second")
    folder = media / "airseal/receipts/agent-1"
    assert [p.name for p in folder.iterdir()] == ["export-1.json"]  # no temporary file left
    assert (folder / "export-1.json").read_bytes() == b"second"


@pytest.mark.parametrize("linked", ["receipts", "agent-id"])
def test_a_symlinked_folder_is_refused_and_nothing_is_written_through_it(
    media: Path, tmp_path: Path, use_dir_fd: bool, linked: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if linked == "receipts":
        (media / "airseal/receipts").symlink_to(elsewhere, target_is_directory=True)
        subject = "airseal/receipts"
    else:
        (media / "airseal/receipts").mkdir()
        (media / "airseal/receipts/agent-1").symlink_to(elsewhere, target_is_directory=True)
        subject = "airseal/receipts/agent-1"
    source = DirectorySource(media, use_dir_fd=use_dir_fd)
    with pytest.raises(UnsafeEntry, match="symlink, not a plain folder") as caught:
        source.write_receipt("agent-1", "export-1", b"data")
    assert caught.value.subject == subject
    assert list(elsewhere.iterdir()) == []


def test_a_dangling_symlink_is_refused_not_created_through(
    media: Path, tmp_path: Path, use_dir_fd: bool
) -> None:
    target = tmp_path / "would-be-created"
    (media / "airseal/receipts").symlink_to(target, target_is_directory=True)
    with pytest.raises(UnsafeEntry):
        DirectorySource(media, use_dir_fd=use_dir_fd).write_receipt("agent-1", "e", b"data")
    assert not target.exists()


def test_a_file_where_a_folder_belongs_is_refused(media: Path, use_dir_fd: bool) -> None:
    (media / "airseal/receipts").write_bytes(b"not a folder")
    with pytest.raises(UnsafeEntry, match="file, not a plain folder"):
        DirectorySource(media, use_dir_fd=use_dir_fd).write_receipt("agent-1", "e", b"data")


def test_the_media_folder_must_exist(tmp_path: Path, use_dir_fd: bool) -> None:
    with pytest.raises(MissingFile) as caught:
        DirectorySource(tmp_path, use_dir_fd=use_dir_fd).write_receipt("agent-1", "e", b"data")
    assert caught.value.subject == "airseal"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("agent_id", "export_id", "size"),
    [("../x", "e", 10), ("agent-1", "CON/..", 10), ("agent-1", "e", MAX_RECEIPT_BYTES + 1)],
)
def test_the_receipt_rules_apply(
    media: Path, use_dir_fd: bool, agent_id: str, export_id: str, size: int
) -> None:
    with pytest.raises(InvalidReceipt):
        DirectorySource(media, use_dir_fd=use_dir_fd).write_receipt(
            agent_id, export_id, b"x" * size
        )
    assert tree(media / "airseal") == []


def test_a_failed_write_is_a_media_write_error_and_leaves_no_temporary(
    media: Path, use_dir_fd: bool
) -> None:
    folder = media / "airseal/receipts/agent-1"
    (folder / "e.json").mkdir(parents=True)  # the rename onto a folder fails
    with pytest.raises(MediaWriteError) as caught:
        DirectorySource(media, use_dir_fd=use_dir_fd).write_receipt("agent-1", "e", b"data")
    assert caught.value.subject == "airseal/receipts/agent-1/e.json"
    assert [p.name for p in folder.iterdir()] == ["e.json"]


class ReadOnlySource(MediaSource):
    """A source with only the read side (as a test fixture or an image reader may be)."""

    def list_dir(self, path: str = "") -> list[MediaEntry]:
        return []

    def walk(self, top: str) -> Iterator[MediaEntry]:
        return iter(())

    def stat(self, path: str) -> MediaEntry | None:
        return None

    def open(self, path: str, *, max_size: int) -> BinaryIO:
        raise NotImplementedError


def test_a_source_without_a_write_side_refuses_to_write() -> None:
    with pytest.raises(MediaWriteError, match="cannot be written") as caught:
        ReadOnlySource().write_receipt("agent-1", "export-1", b"data")
    assert caught.value.subject == "airseal/receipts/agent-1/export-1.json"
    assert ReadOnlySource().label == "media"
