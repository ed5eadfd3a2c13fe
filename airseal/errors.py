"""The root of every error Airseal raises on purpose, and the few every front end shares.

Each package keeps its own ``errors.py`` with a small hierarchy under :class:`AirsealError`
(``airseal.trustroot.errors.TrustrootError``, ``ApplianceError``, ``AgentError``,
``MediaIOError``), so a front end catches ``AirsealError`` once, prints :meth:`diagnostics`
without a traceback, and picks the exit code from the class
(:func:`airseal._internal.cli.run_main`). Anything else that escapes is a bug.

Every error names the *subject* (usually a file) and the *check* that failed, and carries a hint
saying what the user can do. Messages never contain secrets: callers must not put passwords or
PINs into the subject or the detail. This module imports nothing of ours, so every package may
import it.
"""

from __future__ import annotations


class AirsealError(Exception):
    """Base of every error raised by Airseal: a title, a detail, the subject, the check, a hint."""

    title = "Error"
    hint = ""
    check: str | None = None
    """Which check failed, shown as ``[check]``; subclasses set a default, callers may refine it."""

    def __init__(
        self,
        detail: str,
        *,
        subject: str | None = None,
        check: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.detail = detail
        self.subject = subject
        if check is not None:
            self.check = check
        if hint is not None:
            self.hint = hint
        super().__init__(self.message())

    def message(self) -> str:
        where = f"{self.subject}: " if self.subject else ""
        tag = f" [{self.check}]" if self.check else ""
        return f"{where}{self.title.lower()}{tag}: {self.detail}"

    def diagnostics(self) -> str:
        """The message plus what the user can do about it."""
        text = self.message()
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UsageError(AirsealError):
    """The command was asked for something it cannot do as given: every CLI exits 2 for it."""

    title = "Usage"


class FileTooLarge(UsageError):
    """A file given to us is larger than the cap for what it claims to be (nothing was read)."""
