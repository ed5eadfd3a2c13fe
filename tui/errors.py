"""The text an error shows in the error dialog: the same the CLI prints for it, except hints
that tell a CLI user to set an environment variable (:data:`TUI_HINTS`).

Airseal errors carry a title, a message naming the subject and the check, and a hint
(``diagnostics()``), exactly what ``airseal``'s ``main`` prints on stderr; I/O errors show the
file and the reason; anything else is a bug and says so (the traceback goes to the log only).
"""

from __future__ import annotations

from dataclasses import dataclass

from airseal.errors import AirsealError
from airseal.trustroot.errors import WrongPassword

INTERNAL_ERROR_TEXT = "airseal: internal error (a bug): please report the traceback above"


@dataclass(frozen=True)
class ErrorText:
    title: str
    body: str
    """What the CLI prints for this error (message, then ``  hint: ...``)."""
    internal: bool = False


TUI_HINTS: dict[type[AirsealError], str] = {
    WrongPassword: "check the password (is Caps Lock on?) and try again; nothing was signed "
    "or changed, and the key stays locked",
}
"""Hints worded for the terminal UI where the CLI's would not fit (environment variables)."""


def describe_error(error: BaseException) -> ErrorText:
    hint = next((h for cls, h in TUI_HINTS.items() if isinstance(error, cls)), None)
    if isinstance(error, AirsealError) and hint is not None:
        return ErrorText(error.title, f"{error.message()}\n  hint: {hint}")
    if isinstance(error, AirsealError):
        return ErrorText(error.title, error.diagnostics())
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        return ErrorText("Input/output", f"{where}{error.strerror or error}")
    return ErrorText("Internal error", INTERNAL_ERROR_TEXT, internal=True)
