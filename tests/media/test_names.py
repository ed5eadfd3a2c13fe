"""FAT32/exFAT-safe names and relative paths."""

from __future__ import annotations

import pytest

from airseal.media.errors import UnsafeName, UnsafePath
from airseal.media.names import (
    check_name,
    check_unique,
    is_safe_name,
    is_safe_relative_path,
    name_problem,
    normalise_name,
    safe_relative_path,
    utf16_units,
)


@pytest.mark.parametrize(
    "name",
    [
        "CON",
        "con",
        "PRN",
        "AUX",
        "NUL",
        "COM1",
        "com9",
        "LPT1",
        "lpt9",
        "NUL.txt",
        "con.tar.gz",
        "CON .txt",
        "COM¹",
        "CONIN$",
    ],
)
def test_reserved_device_names_are_refused_with_any_extension(name: str) -> None:
    assert name_problem(name) == "is a reserved device name on Windows"
    with pytest.raises(UnsafeName, match="reserved"):
        check_name(name)


@pytest.mark.parametrize("name", ["CONSOLE", "COM10", "LPT0x", "nullable.txt", "aux_file"])
def test_names_that_only_start_like_device_names_are_fine(name: str) -> None:
    assert is_safe_name(name)


@pytest.mark.parametrize("char", [*list('<>:"/\\|?*'), "\x00", "\x01", "\x1f", "\x7f"])
def test_forbidden_and_control_characters(char: str) -> None:
    problem = name_problem(f"a{char}b")
    assert problem is not None and "not allowed on FAT" in problem


@pytest.mark.parametrize("name", ["name.", "name ", "name. ", "...", "a.."])
def test_trailing_dots_and_spaces(name: str) -> None:
    problem = name_problem(name)
    assert problem is not None and "ends with a dot or a space" in problem


@pytest.mark.parametrize("name", ["", ".", ".."])
def test_empty_and_relative_references(name: str) -> None:
    assert name_problem(name) is not None


def test_length_is_counted_in_utf16_units() -> None:
    assert utf16_units("a" * 255) == 255
    assert is_safe_name("a" * 255)
    assert not is_safe_name("a" * 256)
    emoji = "\U0001f600"  # two UTF-16 units
    assert utf16_units(emoji) == 2
    assert is_safe_name(emoji * 127)
    assert not is_safe_name(emoji * 128)


def test_lone_surrogates_are_refused() -> None:
    problem = name_problem("bad\udcff")
    assert problem is not None and "surrogate" in problem


def test_ordinary_names_pass() -> None:
    for name in ["setup.exe", "payload.tar.gz", "Ünïcödé – file", ".hidden", "a b c", "x.part000"]:
        assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a:b?.txt", "a_b_.txt"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("trailing. . ", "trailing"),
        ("...", "_"),
        ("", "_"),
        ("ctl\x01x", "ctl_x"),
    ],
)
def test_normalise_gives_a_safe_name(name: str, expected: str) -> None:
    assert normalise_name(name) == expected
    assert is_safe_name(normalise_name(name))


def test_normalise_cuts_to_255_units() -> None:
    assert utf16_units(normalise_name("x" * 400)) == 255


def test_case_insensitive_uniqueness() -> None:
    check_unique(["a.bin", "b.bin", "A.bin.part000"])
    with pytest.raises(UnsafeName, match="same name on FAT32"):
        check_unique(["setup.EXE", "Setup.exe"])
    with pytest.raises(UnsafeName):
        check_unique(["Straße", "STRASSE"])  # casefold: ß == ss
    with pytest.raises(UnsafeName):
        check_unique(["\u00e9", "e\u0301"])  # NFC: é == e + combining acute


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "a/../b",
        "../a",
        "a/./b",
        "a//b",
        "a/",
        "C:/x",
        "c:x",
        "a\\b",
        "",
        "a/CON/b",
        "a/b:c",
        "/".join("d" * 9),
    ],
)
def test_unsafe_relative_paths_are_refused(path: str) -> None:
    assert not is_safe_relative_path(path)
    with pytest.raises((UnsafePath, UnsafeName)):
        safe_relative_path(path)


def test_unsafe_path_errors_name_the_path_and_the_check() -> None:
    with pytest.raises(UnsafePath) as caught:
        safe_relative_path("actions/../../etc/passwd")
    assert caught.value.subject == "actions/../../etc/passwd"
    assert "[path]" in str(caught.value)
    assert caught.value.hint


def test_safe_relative_paths_pass() -> None:
    for path in [
        "export.sigstore.json",
        "actions/a-1/payload/setup.exe",
        "tuf/metadata/1.root.json",
    ]:
        assert safe_relative_path(path) == path
