"""DirectorySource: the safe reader refuses links, special files, unsafe paths, oversized files."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from airseal.media.errors import (
    MediaReadError,
    MissingFile,
    OversizedFile,
    TooManyEntries,
    UnsafeEntry,
    UnsafePath,
)
from airseal.media.limits import MAX_DEPTH, MAX_TOP_LEVEL_ENTRIES
from airseal.media.reader import DirectorySource
from airseal.media.rules import EntryKind


@pytest.fixture(params=[True, False], ids=["openat", "portable"])
def use_dir_fd(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def media(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    (root / "airseal" / "actions" / "a").mkdir(parents=True)
    (root / "airseal" / "actions" / "a" / "file.bin").write_bytes(b"0123456789")
    (root / "outside.txt").write_text("secret")
    return root


def test_reads_a_plain_file_and_lists_entries(media: Path, use_dir_fd: bool) -> None:
    source = DirectorySource(media, use_dir_fd=use_dir_fd)
    assert source.read_bytes("airseal/actions/a/file.bin", max_size=10) == b"0123456789"
    entries = {e.path: e for e in source.walk("airseal")}
    assert entries["airseal/actions"].kind is EntryKind.DIRECTORY
    assert entries["airseal/actions/a/file.bin"].kind is EntryKind.FILE
    assert entries["airseal/actions/a/file.bin"].size == 10
    assert [e.name for e in source.list_dir("")] == ["airseal", "outside.txt"]
    stat_entry = source.stat("airseal/actions/a/file.bin")
    assert stat_entry is not None and stat_entry.size == 10
    assert source.stat("airseal/nothing") is None


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../outside.txt", "airseal/../outside.txt", "airseal//x", "a\\b"]
)
def test_unsafe_paths_are_refused_before_any_io(media: Path, use_dir_fd: bool, path: str) -> None:
    with pytest.raises(UnsafePath):
        DirectorySource(media, use_dir_fd=use_dir_fd).open(path, max_size=100)


def test_symlinked_file_is_refused(media: Path, use_dir_fd: bool) -> None:
    os.symlink(media / "outside.txt", media / "airseal" / "link.txt")
    source = DirectorySource(media, use_dir_fd=use_dir_fd)
    with pytest.raises(UnsafeEntry, match="symlink") as caught:
        source.open("airseal/link.txt", max_size=100)
    assert caught.value.subject == "airseal/link.txt"
    entries = {e.path: e.kind for e in source.walk("airseal")}
    assert entries["airseal/link.txt"] is EntryKind.SYMLINK


def test_symlinked_directory_is_never_followed(media: Path, use_dir_fd: bool) -> None:
    elsewhere = media.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "file.bin").write_bytes(b"not on the media")
    os.symlink(elsewhere, media / "airseal" / "actions" / "b")
    source = DirectorySource(media, use_dir_fd=use_dir_fd)
    with pytest.raises(UnsafeEntry, match="symlink") as caught:
        source.open("airseal/actions/b/file.bin", max_size=100)
    assert caught.value.subject == "airseal/actions/b"
    paths = [e.path for e in source.walk("airseal")]
    assert "airseal/actions/b" in paths
    assert "airseal/actions/b/file.bin" not in paths


def test_hard_link_is_refused(media: Path, use_dir_fd: bool) -> None:
    os.link(media / "outside.txt", media / "airseal" / "hard.txt")
    with pytest.raises(UnsafeEntry, match="hard link"):
        DirectorySource(media, use_dir_fd=use_dir_fd).open("airseal/hard.txt", max_size=100)


def test_fifo_is_refused_without_blocking(media: Path, use_dir_fd: bool) -> None:
    os.mkfifo(media / "airseal" / "pipe")
    with pytest.raises(UnsafeEntry, match="fifo"):
        DirectorySource(media, use_dir_fd=use_dir_fd).open("airseal/pipe", max_size=100)


def test_device_node_is_refused_without_being_opened(media: Path, use_dir_fd: bool) -> None:
    os.mknod(media / "airseal" / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    with pytest.raises(UnsafeEntry, match="device"):
        DirectorySource(media, use_dir_fd=use_dir_fd).open("airseal/null", max_size=100)


def test_socket_is_refused(media: Path, use_dir_fd: bool) -> None:
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(media / "airseal" / "sock"))
        with pytest.raises(UnsafeEntry, match="socket"):
            DirectorySource(media, use_dir_fd=use_dir_fd).open("airseal/sock", max_size=100)
    finally:
        server.close()


def test_oversized_file_is_refused_before_reading(media: Path, use_dir_fd: bool) -> None:
    with pytest.raises(OversizedFile, match="over the 9 byte limit"):
        DirectorySource(media, use_dir_fd=use_dir_fd).open("airseal/actions/a/file.bin", max_size=9)


def test_file_that_grows_after_opening_is_cut_off_at_the_cap(media: Path, use_dir_fd: bool) -> None:
    source = DirectorySource(media, use_dir_fd=use_dir_fd)
    path = media / "airseal" / "actions" / "a" / "file.bin"
    with source.open("airseal/actions/a/file.bin", max_size=10) as stream:
        with open(path, "ab") as f:
            f.write(b"more")
        with pytest.raises(OversizedFile, match="grew past"):
            stream.read()


def test_symlink_swapped_in_after_listing_is_still_refused(media: Path, use_dir_fd: bool) -> None:
    source = DirectorySource(media, use_dir_fd=use_dir_fd)
    listed = {e.path: e for e in source.walk("airseal")}
    assert listed["airseal/actions/a/file.bin"].kind is EntryKind.FILE
    target = media / "airseal" / "actions" / "a" / "file.bin"
    target.unlink()
    os.symlink(media / "outside.txt", target)
    with pytest.raises(UnsafeEntry):
        source.open("airseal/actions/a/file.bin", max_size=100)


def test_directory_swapped_for_a_symlink_after_listing_is_refused(
    media: Path, use_dir_fd: bool
) -> None:
    source = DirectorySource(media, use_dir_fd=use_dir_fd)
    list(source.walk("airseal"))
    elsewhere = media.parent / "elsewhere"
    (media / "airseal" / "actions" / "a").rename(elsewhere)
    os.symlink(elsewhere, media / "airseal" / "actions" / "a")
    with pytest.raises(UnsafeEntry):
        source.open("airseal/actions/a/file.bin", max_size=100)


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_held_folders_read_the_same_and_are_closed_after_the_pass(tmp_path: Path) -> None:
    root = tmp_path / "media"
    for i in range(60):  # more folders than are held at once
        (root / "airseal" / "actions" / f"a{i:02d}").mkdir(parents=True)
        (root / "airseal" / "actions" / f"a{i:02d}" / "f.bin").write_bytes(b"x" * i)
    source = DirectorySource(root)
    before = _open_descriptors()
    plain = [e.path for e in source.walk("airseal")]
    with source.folders_held(), source.folders_held():  # nested: one pass
        assert [e.path for e in source.walk("airseal")] == plain
        for _ in range(2):
            for i in range(60):
                path = f"airseal/actions/a{i:02d}/f.bin"
                assert source.read_bytes(path, max_size=100) == b"x" * i
                assert source.stat(path) is not None
        assert _open_descriptors() <= before + 40
    assert _open_descriptors() == before


def test_held_folders_keep_refusing_links_and_report_missing_media(
    media: Path, tmp_path: Path
) -> None:
    source = DirectorySource(media)
    with source.folders_held():
        assert source.read_bytes("airseal/actions/a/file.bin", max_size=10) == b"0123456789"
        target = media / "airseal" / "actions" / "a" / "file.bin"
        target.unlink()
        os.symlink(media / "outside.txt", target)
        with pytest.raises(UnsafeEntry):  # a file swapped for a link in a held folder
            source.open("airseal/actions/a/file.bin", max_size=100)
        (media / "airseal" / "b").mkdir()
        os.symlink(media, media / "airseal" / "b" / "c")
        with pytest.raises(UnsafeEntry):  # a folder not yet held is walked without following
            source.open("airseal/b/c/outside.txt", max_size=100)
    absent = DirectorySource(tmp_path / "absent")
    with absent.folders_held(), pytest.raises(MediaReadError):  # reported on reading, as before
        absent.open("airseal/x", max_size=1)


def test_missing_file_and_folder_in_place_of_a_file(media: Path, use_dir_fd: bool) -> None:
    source = DirectorySource(media, use_dir_fd=use_dir_fd)
    with pytest.raises(MissingFile):
        source.open("airseal/absent.bin", max_size=100)
    with pytest.raises(MissingFile):
        source.open("airseal/absent/file.bin", max_size=100)
    with pytest.raises(MissingFile, match="folder"):
        source.open("airseal/actions", max_size=100)


def test_walk_stops_at_the_depth_limit(tmp_path: Path, use_dir_fd: bool) -> None:
    deep = tmp_path / "airseal"
    for i in range(MAX_DEPTH + 1):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    with pytest.raises(TooManyEntries, match="deeper"):
        list(DirectorySource(tmp_path, use_dir_fd=use_dir_fd).walk("airseal"))


def test_listing_stops_at_the_entry_limit(tmp_path: Path) -> None:
    for i in range(MAX_TOP_LEVEL_ENTRIES + 1):
        (tmp_path / f"f{i}").touch()
    with pytest.raises(TooManyEntries, match="more than"):
        DirectorySource(tmp_path).list_dir("")
