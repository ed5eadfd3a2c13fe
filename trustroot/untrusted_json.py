"""Reading JSON from hostile bytes without letting its nesting crash the reader.

Python's ``json`` module recurses once per nested array or object, so 2,000 bytes of ``[[[[...``
end in :class:`RecursionError`, which no parser catches (and should not: it is not a verdict on
the data). Every parser of media or bundle JSON therefore checks nesting first, here, with a cheap
scan of the brackets outside strings, and refuses anything deeper than :data:`MAX_JSON_DEPTH`
with the caller's own typed error (``check`` ``json-depth``) before any recursive decoder runs.

Our formats nest well under the bound: a Sigstore bundle with a DSSE envelope reaches 5 levels,
the statement inside it 6, a receipt 5.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from airseal.errors import AirsealError

MAX_JSON_DEPTH: Final = 64
"""The deepest nesting of arrays and objects any Airseal parser accepts."""

DEPTH_CHECK: Final = "json-depth"
SYNTAX_CHECK: Final = "json"

# A JSON string (the unrolled form, linear on long strings), and a run of anything but brackets.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_OPENERS = frozenset("[{")


def json_text(data: bytes | str) -> str:
    """``data`` as text: JSON between systems is UTF-8 (RFC 8259, section 8.1).

    Not the UTF-16 and UTF-32 that :func:`json.loads` also guesses from the first bytes: a
    bundle re-encoded that way keeps its signature but breaks every consumer that stores or
    prints it as UTF-8. Raises :class:`UnicodeDecodeError` (a :class:`ValueError`).
    """
    if isinstance(data, str):
        return data
    return data.decode("utf-8")


def nesting_depth(text: str, *, stop_above: int = MAX_JSON_DEPTH) -> int:
    """How deep arrays and objects nest in ``text``, counting no further than ``stop_above + 1``.

    Brackets inside strings do not count. For text that is not valid JSON the answer is an upper
    bound of what a decoder would reach before failing (an unterminated string is read as
    structure), so the check errs on the side of refusing.
    """
    # Strings out, then everything but brackets (both at C speed): the loop sees brackets only.
    # Removing the strings in one left-to-right pass finds the same strings a token scan would.
    brackets = _NOT_BRACKETS.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for token in brackets:
        if token in _OPENERS:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_above:
                    break
        elif depth:
            depth -= 1
    return deepest


def check_json_depth(
    data: bytes | str,
    *,
    subject: str | None,
    error: type[AirsealError],
    max_depth: int = MAX_JSON_DEPTH,
) -> str:
    """Refuse ``data`` nested deeper than ``max_depth`` with ``error``; return it as text.

    ``error`` is the caller's typed error (``MalformedBundle``, ``InvalidExportStatement``...), so
    the refusal reads like the parser's other refusals; its check is ``json-depth``. Bytes that
    are not UTF-8 are refused the same way, with check ``json``.
    """
    try:
        text = json_text(data)
    except UnicodeDecodeError as exc:
        raise error(
            f"is not valid JSON: not UTF-8 ({exc.reason} at byte {exc.start})",
            subject=subject,
            check=SYNTAX_CHECK,
        ) from None
    # Nesting cannot exceed the number of opening brackets (in strings or not): two C-speed
    # counts clear a typical bundle without the token scan.
    if text.count("[") + text.count("{") <= max_depth:
        return text
    if nesting_depth(text, stop_above=max_depth) > max_depth:
        raise error(
            f"arrays and objects nest deeper than {max_depth} levels",
            subject=subject,
            check=DEPTH_CHECK,
        )
    return text


def load_json(
    data: bytes | str,
    *,
    subject: str | None,
    error: type[AirsealError],
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse untrusted JSON: nesting checked first, every failure a typed ``error``."""
    text = check_json_depth(data, subject=subject, error=error, max_depth=max_depth)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise error(f"is not valid JSON ({exc})", subject=subject, check=SYNTAX_CHECK) from None


__all__ = [
    "DEPTH_CHECK",
    "MAX_JSON_DEPTH",
    "SYNTAX_CHECK",
    "check_json_depth",
    "json_text",
    "load_json",
    "nesting_depth",
]
