"""Signed names shown to people: what could deceive is escaped, and said why (issue 13, item 8)."""

from __future__ import annotations

import pytest

from airseal.media.confusables import confusable_reason, confusable_warning, escape_confusables


@pytest.mark.parametrize(
    ("name", "shown", "reason"),
    [
        ("run\u202ehs.txt", "run\\u202ehs.txt", "bidirectional control characters (U+202E)"),
        ("a\u2067b\u2069.sh", "a\\u2067b\\u2069.sh", "bidirectional control characters"),
        ("set\u200bup.sh", "set\\u200bup.sh", "invisible or control characters (U+200B)"),
        ("tab\there", "tab\\x09here", "invisible or control characters (U+0009)"),
        ("no\u00a0break", "no\\xa0break", "invisible or control characters (U+00A0)"),
        ("p\u0430ypal.sh", "p\\u0430ypal.sh", "letters that imitate other scripts"),
        ("\uff53etup.sh", "\\uff53etup.sh", "letters that imitate other scripts"),
        ("C:\\Temp\\\u202eexe.txt", "C:\\\\Temp\\\\\\u202eexe.txt", "bidirectional"),
    ],
)
def test_deceptive_names_are_escaped_with_a_reason(name, shown, reason):
    assert escape_confusables(name) == shown
    found = confusable_reason(name)
    assert found is not None and reason in found
    assert all(ord(c) < 0x7F and c.isprintable() for c in escape_confusables(name))
    warning = confusable_warning("payload name", name)
    assert warning is not None and shown in warning and "shown escaped" in warning


@pytest.mark.parametrize(
    "name",
    [
        "setup.sh",
        "(Tools)Install agent v2",
        "C:\\Program Files\\Tool\\tool.exe",
        "/opt/tool/etc/tool.conf",
        "café-déjà.txt",
        "Установка.sh",  # one script per word: Cyrillic, then Latin
        "データ更新.txt",  # Japanese mixes kana and kanji legitimately
        "Ελληνικά.txt",
    ],
)
def test_ordinary_names_are_shown_as_they_are(name):
    assert confusable_reason(name) is None
    assert escape_confusables(name) == name
    assert confusable_warning("name", name) is None
