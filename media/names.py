"""File names and relative paths that are safe on FAT32 and exFAT, and on every agent's OS.

A stick written on Linux is read on Windows and macOS: a name that Linux accepts but Windows
cannot open (``CON.txt``, ``a:b``, ``name.``) would make an export that looks whole on the
appliance and fails at the endpoint. FAT32 and exFAT compare names ignoring case, so two names
differing only in case would overwrite each other. These checks run before anything is written
and again on every path read from media.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

from airseal.media.errors import UnsafeName, UnsafePath

MAX_NAME_UTF16_UNITS = 255
MAX_PATH_CHARS = 1024
MAX_PATH_DEPTH = 8

FORBIDDEN_CHARACTERS = frozenset('<>:"/\\|?*')
RESERVED_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"COM{i}" for i in "123456789¹²³"]
    + [f"LPT{i}" for i in "123456789¹²³"]
)
_DRIVE = re.compile(r"^[A-Za-z]:")
_FORBIDDEN_OR_CONTROL = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
"""Any character of :data:`FORBIDDEN_CHARACTERS` or a control character: one C-speed scan."""


def utf16_units(name: str) -> int:
    """Length as FAT long file names count it (UTF-16 code units)."""
    return len(name.encode("utf-16-le")) // 2


def _reserved(name: str) -> bool:
    # Windows reserves a device name with any extension too ("NUL.txt", "com1.tar.gz"), and
    # ignores trailing spaces before the dot ("CON .txt").
    stem = name.split(".", 1)[0].rstrip(" ")
    return stem.upper() in RESERVED_NAMES


@functools.lru_cache(maxsize=4096)
def name_problem(name: str) -> str | None:
    """Why ``name`` is not a safe single path component, or ``None`` when it is.

    Cached: an import checks the same few components (``airseal``, ``actions``...) thousands of
    times; the answer depends on the name alone."""
    if not name:
        return "empty name"
    if name in (".", ".."):
        return f"{name!r} is a relative reference, not a name"
    if _FORBIDDEN_OR_CONTROL.search(name):
        bad = sorted(
            {c for c in name if c in FORBIDDEN_CHARACTERS or ord(c) < 0x20 or c == "\x7f"}
        )
        return "contains characters not allowed on FAT: " + " ".join(repr(c) for c in bad)
    if name[-1] in ". ":
        return "ends with a dot or a space (Windows strips them, so the file cannot be opened)"
    if _reserved(name):
        return "is a reserved device name on Windows"
    if not name.isascii() and any(unicodedata.category(c) == "Cs" for c in name):
        return "contains a lone surrogate (not valid Unicode)"
    if utf16_units(name) > MAX_NAME_UTF16_UNITS:
        return f"is longer than {MAX_NAME_UTF16_UNITS} UTF-16 units"
    return None


def check_name(name: str, *, subject: str | None = None) -> str:
    """Return ``name`` unchanged if it is a safe component, else raise :class:`UnsafeName`."""
    problem = name_problem(name)
    if problem is not None:
        raise UnsafeName(f"{name!r} {problem}", subject=subject or name)
    return name


def is_safe_name(name: str) -> bool:
    return name_problem(name) is None


def normalise_name(name: str, *, replacement: str = "_") -> str:
    """A safe name derived from ``name`` (for suggestions to operators, never for reading media).

    Forbidden and control characters become ``replacement``, trailing dots and spaces are dropped,
    reserved device names get a leading underscore, and the result is cut to 255 UTF-16 units.
    """
    cleaned = "".join(
        replacement
        if (c in FORBIDDEN_CHARACTERS or ord(c) < 0x20 or c == "\x7f")
        or unicodedata.category(c) == "Cs"
        else c
        for c in name
    )
    cleaned = cleaned.rstrip(". ")
    if not cleaned or cleaned in (".", ".."):
        cleaned = replacement
    if _reserved(cleaned):
        cleaned = "_" + cleaned
    while utf16_units(cleaned) > MAX_NAME_UTF16_UNITS:
        cleaned = cleaned[:-1]
    return cleaned.rstrip(". ") or replacement


def collision_key(name: str) -> str:
    """The key under which FAT32/exFAT (and macOS, which normalises) see two names as one."""
    return unicodedata.normalize("NFC", name).casefold()


def check_unique(names: Iterable[str], *, subject: str | None = None) -> None:
    """Raise :class:`UnsafeName` if two names are the same ignoring case (and normalisation)."""
    seen: dict[str, str] = {}
    for name in names:
        key = collision_key(name)
        if key in seen:
            raise UnsafeName(
                f"{name!r} and {seen[key]!r} are the same name on FAT32/exFAT (case-insensitive)",
                subject=subject or name,
            )
        seen[key] = name


def safe_relative_path(path: str, *, subject: str | None = None) -> str:
    """Return ``path`` if it is a safe relative media path, else raise :class:`UnsafePath`.

    Safe means: '/'-separated, not absolute, no drive letter, no backslash, no empty, '.' or '..'
    component, at most ``MAX_PATH_DEPTH`` components, and every component a safe name.
    """
    where = subject or path
    if not path:
        raise UnsafePath("empty path", subject=where)
    if len(path) > MAX_PATH_CHARS:
        raise UnsafePath(f"path is longer than {MAX_PATH_CHARS} characters", subject=where)
    if "\\" in path:
        raise UnsafePath("path contains a backslash", subject=where)
    if path.startswith("/"):
        raise UnsafePath("path is absolute", subject=where)
    if _DRIVE.match(path):
        raise UnsafePath("path starts with a drive letter", subject=where)
    parts = path.split("/")
    if len(parts) > MAX_PATH_DEPTH:
        raise UnsafePath(f"path is deeper than {MAX_PATH_DEPTH} components", subject=where)
    for part in parts:
        if part in ("", ".", ".."):
            raise UnsafePath(
                f"path has an {'empty' if not part else repr(part)} component", subject=where
            )
        problem = name_problem(part)
        if problem is not None:
            raise UnsafeName(f"component {part!r} {problem}", subject=where)
    return path


def is_safe_relative_path(path: str) -> bool:
    try:
        safe_relative_path(path)
    except (UnsafePath, UnsafeName):
        return False
    return True
