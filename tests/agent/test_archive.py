"""Safe extraction: hostile tar and zip archives are refused before anything is written."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from airseal.agent.archive import (
    ArchiveLimits,
    Member,
    archive_kind,
    check_members,
    extract,
    normalise_name,
    run_target,
)
from airseal.agent.errors import UnsafeArchive

from .helpers import hostile_tar, tar_info, tar_payload, zip_payload, zip_symlink


def test_archive_kind_by_signed_name():
    assert archive_kind("a.tar") == archive_kind("a.TGZ") == archive_kind("a.tar.xz") == "tar"
    assert archive_kind("A.Zip") == "zip"
    assert archive_kind("setup.sh") is None and archive_kind("x.tar.gz.sig") is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:x", "drive"),
        ("a\\..\\x", "backslash"),
        ("a//b", "empty"),
        ("a/\x00b", "NUL"),
    ],
)
def test_unsafe_member_names(name, problem):
    result = normalise_name(name, "linux")
    assert isinstance(result, str) and problem in result


def test_names_windows_cannot_hold_are_refused_for_windows_only():
    assert normalise_name("dir/CON.txt", "linux") == ("dir", "CON.txt")
    assert "reserved" in normalise_name("dir/CON.txt", "windows")
    assert normalise_name("./a/b/", "windows") == ("a", "b")


def _refused(members, os_name="linux", limits=None):
    with pytest.raises(UnsafeArchive) as caught:
        check_members(members, os_name, limits or ArchiveLimits(), subject="airseal/p.tar")
    assert caught.value.subject.startswith("airseal/p.tar")
    return caught.value


def test_link_rules():
    ok = check_members(
        [
            Member("bin", "dir"),
            Member("bin/tool", "file", 3),
            Member("bin/t", "symlink", link_target="tool"),
            Member("lib", "symlink", link_target="bin"),
        ],
        "linux",
        subject="p",
    )
    assert [c.path for c in ok] == ["bin", "bin/tool", "bin/t", "lib"]
    assert "outside" in _refused([Member("x", "symlink", link_target="../etc")]).detail
    assert "outside" in _refused([Member("a/x", "symlink", link_target="../../etc")]).detail
    assert "absolute" in _refused([Member("x", "symlink", link_target="/etc/shadow")]).detail
    # each link alone stays inside, together they escape: l -> ".", m -> "l/.."
    chain = [Member("l", "symlink", link_target="."), Member("m", "symlink", link_target="l/..")]
    assert "through another link" in _refused(chain).detail
    below = [Member("l", "symlink", link_target="d"), Member("l/evil", "file", 1)]
    assert "below a link" in _refused(below).detail
    assert "Windows" in _refused([Member("x", "symlink", link_target="y")], "windows").detail


def test_hard_links_devices_duplicates_and_bounds():
    assert (
        "earlier regular file"
        in _refused([Member("h", "hardlink", link_target="etc/passwd")]).detail
    )
    assert "unsafe" in _refused([Member("h", "hardlink", link_target="../x")]).detail
    assert "special" in _refused([Member("dev", "other")]).detail
    assert "twice" in _refused([Member("a", "file", 1), Member("a", "file", 1)]).detail
    check_members([Member("A", "file", 1), Member("a", "file", 1)], "linux", subject="p")
    assert "case" in _refused([Member("A", "file", 1), Member("a", "file", 1)], "macos").detail
    limits = ArchiveLimits(max_members=2, max_member_bytes=10, max_total_bytes=15)
    assert (
        "members" in _refused([Member(f"f{i}", "file", 1) for i in range(3)], limits=limits).detail
    )
    assert "limit" in _refused([Member("big", "file", 11)], limits=limits).detail
    assert (
        "total"
        in _refused(
            [Member("a", "file", 8), Member("b", "hardlink", link_target="a")], limits=limits
        ).detail
    )


def _extract(path: Path, kind: str, into: Path, os_name: str = "linux", **limits: int):
    into.mkdir()
    with open(path, "rb") as stream:
        return extract(stream, kind, into, os_name, ArchiveLimits(**limits), subject="airseal/p")


def test_tar_extraction_keeps_modes_and_drops_setuid(tmp_path: Path):
    archive = tar_payload(
        tmp_path / "a.tar.gz",
        {"bin/run.sh": b"#!/bin/sh\necho hi\n", "etc/conf": b"x=1\n"},
        modes={"bin/run.sh": 0o4755, "etc/conf": 0o640},
    )
    out = tmp_path / "out"
    checked = _extract(archive, "tar", out)
    assert (out / "bin/run.sh").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (out / "bin/run.sh").stat().st_mode & 0o7777 == 0o755
    assert (out / "etc/conf").stat().st_mode & 0o777 == 0o640
    assert run_target(checked, "bin/run.sh", "linux") == "bin/run.sh"
    assert run_target(checked, "bin/missing", "linux") is None


def test_zip_extraction_with_an_internal_link(tmp_path: Path):
    archive = zip_payload(tmp_path / "a.zip", {"tool/run.sh": b"echo\n"})
    out = tmp_path / "out"
    _extract(archive, "zip", out)
    assert (out / "tool/run.sh").stat().st_mode & 0o777 == 0o755
    linked = zip_symlink(tmp_path / "l.zip", "alias", "tool/run.sh", {"tool/run.sh": b"echo\n"})
    out2 = tmp_path / "out2"
    _extract(linked, "zip", out2)
    assert os.readlink(out2 / "alias") == "tool/run.sh"


@pytest.mark.parametrize(
    ("entries", "check"),
    [
        ([(tar_info("../escape.sh"), b"x")], "'..'"),
        ([(tar_info("/tmp/abs.sh"), b"x")], "absolute"),
        ([tar_info("link", tarfile.SYMTYPE, link="../../../../tmp")], "outside"),
        ([tar_info("link", tarfile.SYMTYPE, link="/etc")], "absolute"),
        (
            [tar_info("link", tarfile.SYMTYPE, link="sub"), (tar_info("link/x"), b"x")],
            "below a link",
        ),
        ([tar_info("hl", tarfile.LNKTYPE, link="/etc/passwd")], "unsafe"),
        ([tar_info("dev", tarfile.CHRTYPE)], "special"),
        ([tar_info("fifo", tarfile.FIFOTYPE)], "special"),
    ],
)
def test_hostile_tars_write_nothing(tmp_path: Path, entries, check):
    archive = hostile_tar(tmp_path / "evil.tar", entries)
    out = tmp_path / "out"
    with pytest.raises(UnsafeArchive) as caught:
        _extract(archive, "tar", out)
    assert check in caught.value.detail and caught.value.subject.startswith("airseal/p!")
    assert list(out.iterdir()) == []
    assert not (tmp_path / "escape.sh").exists()


@pytest.mark.parametrize(
    ("name", "check"),
    [("../escape.sh", "'..'"), ("/tmp/abs.sh", "absolute"), ("a\\..\\b", "backslash")],
)
def test_hostile_zips_write_nothing(tmp_path: Path, name, check):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("fine.txt", b"ok")
        archive.writestr(zipfile.ZipInfo(name), b"x")
    out = tmp_path / "out"
    with pytest.raises(UnsafeArchive) as caught:
        _extract(path, "zip", out)
    assert check in caught.value.detail
    assert list(out.iterdir()) == []


def test_zip_symlink_escaping_is_refused(tmp_path: Path):
    path = zip_symlink(tmp_path / "evil.zip", "link", "../../etc/passwd")
    with pytest.raises(UnsafeArchive, match="outside"):
        _extract(path, "zip", tmp_path / "out")


def test_zip_whose_content_outgrows_its_header_is_refused(tmp_path: Path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.bin", b"\0" * 200_000)
    raw = bytearray(path.read_bytes())
    # shrink the declared size in the central directory: the content no longer matches it
    central = raw.rindex(b"PK\x01\x02")
    raw[central + 24 : central + 28] = (100).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(UnsafeArchive):
        _extract(path, "zip", tmp_path / "out")


def test_garbage_is_not_an_archive(tmp_path: Path):
    path = tmp_path / "x.tar"
    path.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(UnsafeArchive, match="readable tar"):
        _extract(path, "tar", tmp_path / "out")


def test_member_count_bound_stops_reading_early(tmp_path: Path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for i in range(50):
            info = tarfile.TarInfo(f"f{i}")
            tar.addfile(info, io.BytesIO(b""))
    path = tmp_path / "many.tar"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(UnsafeArchive, match="more than 10 members"):
        _extract(path, "tar", tmp_path / "out", max_members=10)


def _zip_bytes(name: str, data: bytes = b"target", *, link: bool = False) -> bytearray:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(name)
        if link:
            info.create_system = 3
            info.external_attr = (0o120777) << 16
        archive.writestr(info, data)
    return bytearray(buffer.getvalue())


def _patch(original: bytes | bytearray, signature: bytes, offset: int, value: int) -> bytes:
    data = bytearray(original)
    at = data.find(signature)
    data[at + offset] = value
    return bytes(data)


def _encrypted(data: bytearray) -> bytes:
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        data[at + offset] |= 1
    return bytes(data)


@pytest.mark.parametrize(
    ("archive", "problem"),
    [
        # found by bench/fuzz_parsers.py: each ended in an internal error (exit 70)
        (bytes(_zip_bytes("")), "has an empty name"),
        (_patch(_zip_bytes("a"), b"PK\x01\x02", 6, 148), "zip file version 14.8"),
        (_encrypted(_zip_bytes("link", link=True)), "is encrypted"),
        (
            _patch(_patch(_zip_bytes("l", link=True), b"PK\x03\x04", 8, 99), b"PK\x01\x02", 10, 99),
            "compression method is not supported",
        ),
    ],
)
def test_zips_the_standard_library_cannot_read_are_refused(tmp_path: Path, archive, problem):
    path = tmp_path / "x.zip"
    path.write_bytes(archive)
    with pytest.raises(UnsafeArchive, match=problem) as refused:
        _extract(path, "zip", tmp_path / "out")
    assert refused.value.check == "archive" and refused.value.subject.startswith("airseal/p")
    assert not any((tmp_path / "out").iterdir())
