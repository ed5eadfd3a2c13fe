"""Signed names as people may safely read them: escaped where they could deceive, with a reason.

A name is signed, not vetted: ``run\\u202ehs.txt`` (a right-to-left override) prints as
``runtxt.sh``, a zero-width space hides inside a word, and ``pаypal`` may carry a Cyrillic
``а``. Whatever shows a signed name to a person (the agent's approval prompt, import report and
history, the appliance's CLI and TUI) shows :func:`escape_confusables` of it and warns with
:func:`confusable_reason`. Both sides of the air gap use this one module, so what an operator
sees on the appliance is what the endpoint user sees.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "confusable_reason",
    "confusable_warning",
    "escape_confusables",
    "shown_with_warning",
]

_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})
"""Controls, format characters (bidi controls, zero-width), surrogates, private-use and
unassigned code points, line/paragraph separators and spaces (ASCII space excepted)."""

_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)

_SCRIPT_FAMILIES = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK", "IDEOGRAPHIC": "CJK"}
"""Scripts that legitimately mix within one word count as one."""

_WORD = re.compile(r"\w+")


def _invisible(char: str) -> bool:
    return char != " " and unicodedata.category(char) in _INVISIBLE_CATEGORIES


def _script(char: str) -> str | None:
    """A letter's script, from its Unicode name (``CYRILLIC SMALL LETTER A`` -> CYRILLIC)."""
    if not unicodedata.category(char).startswith("L"):
        return None
    name = unicodedata.name(char, "")
    first = name.split(" ", 1)[0].split("-", 1)[0] if name else "UNKNOWN"
    return _SCRIPT_FAMILIES.get(first, first)


def _looks_ascii(char: str) -> bool:
    """A non-ASCII letter or digit that compatibility-normalises to ASCII (fullwidth ``ｓ``,
    mathematical ``𝐚``, the ``ﬁ`` ligature): made to look like something else."""
    if char.isascii() or not (char.isalpha() or char.isdigit()):
        return False
    folded = unicodedata.normalize("NFKC", char)
    return folded != char and folded.isascii()


def _suspicious_words(text: str) -> list[tuple[int, int]]:
    """Spans of words whose letters mix scripts (``pаypal``) or imitate ASCII."""
    spans = []
    for word in _WORD.finditer(text):
        scripts = {s for s in map(_script, word.group()) if s is not None}
        if len(scripts) > 1 or any(_looks_ascii(c) for c in word.group()):
            spans.append(word.span())
    return spans


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def confusable_reason(text: str) -> str | None:
    """Why ``text`` could deceive a reader, or ``None`` when it reads as what it is."""
    if text.isascii() and text.isprintable():
        # Printable ASCII has no control, bidi or invisible character, and every letter in it
        # is Latin: the checks below would find nothing (an import asks for thousands of names).
        return None
    reasons = []
    bidi = sorted({c for c in text if c in _BIDI_CONTROLS})
    if bidi:
        codes = ", ".join(f"U+{ord(c):04X}" for c in bidi)
        reasons.append(f"bidirectional control characters ({codes})")
    hidden = sorted({c for c in text if _invisible(c) and c not in _BIDI_CONTROLS})
    if hidden:
        codes = ", ".join(f"U+{ord(c):04X}" for c in hidden)
        reasons.append(f"invisible or control characters ({codes})")
    if _suspicious_words(text):
        reasons.append("letters that imitate other scripts")
    return "; ".join(reasons) if reasons else None


def escape_confusables(text: str) -> str:
    """``text`` with every invisible, control or bidi character, and every non-ASCII character
    of a mixed-script word, written as a Python escape (``run\\u202ehs.txt``). A backslash is
    doubled only when something else was escaped, so ordinary Windows paths read as they are."""
    if confusable_reason(text) is None:
        return text
    suspicious = _suspicious_words(text)

    def in_suspicious_word(index: int) -> bool:
        return any(start <= index < end for start, end in suspicious)

    out = []
    for index, char in enumerate(text):
        if char == "\\":
            out.append("\\\\")
        elif _invisible(char) or (not char.isascii() and in_suspicious_word(index)):
            out.append(_escape(char))
        else:
            out.append(char)
    return "".join(out)


def confusable_warning(label: str, text: str) -> str | None:
    """One line for a report or prompt: ``payload name 'run\\u202ehs.txt' contains ...``."""
    reason = confusable_reason(text)
    if reason is None:
        return None
    return f"{label} '{escape_confusables(text)}' contains {reason}; it is shown escaped"


def shown_with_warning(text: str) -> str:
    """``text`` for a one-line listing: as is, or escaped and followed by
    ``[WARNING: name contains ...]`` when it could deceive."""
    reason = confusable_reason(text)
    if reason is None:
        return text
    return f"{escape_confusables(text)} [WARNING: name contains {reason}]"
