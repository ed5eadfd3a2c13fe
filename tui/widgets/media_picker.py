"""Choosing media: detected removable mounts, or any folder typed in.

The picker owns detection: give it the function that lists mounts (the screen's context), and
it rescans in a worker on demand, so every screen that takes media behaves the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, Input, Label, Select


class MediaPicker(Horizontal):
    """A select of detected mounts and an input for the path; the input is what counts."""

    @dataclass
    class Chosen(Message):
        path: str

    @dataclass
    class Rescanned(Message):
        """Detection finished (after :meth:`rescan`); the options are already updated."""

        mounts: list[Any]

    def __init__(self, detect: Callable[[], list[Any]], *, id: str) -> None:
        super().__init__(id=id, classes="toolbar media-picker")
        self._detect = detect

    def compose(self) -> ComposeResult:
        yield Label("Media", classes="picker-label")
        yield Select[str]([], prompt="detected media", id="mounts", compact=True)
        yield Input(placeholder="or type the mount point / folder", id="media-path", compact=True)
        yield Button("Rescan", id="rescan", compact=True)

    def focus_path(self) -> None:
        """Put the cursor in the path field (the operator types a folder)."""
        self.query_one("#media-path", Input).focus()

    @property
    def path(self) -> str:
        return self.query_one("#media-path", Input).value.strip()

    @path.setter
    def path(self, value: str) -> None:
        self.query_one("#media-path", Input).value = value

    def share(self, path: str) -> None:
        """Show the media path chosen on another screen (one path for the session)."""
        if path and path != self.path:
            self.path = path

    def folder(self) -> Path | None:
        """The chosen folder, or ``None`` when the field does not name an existing folder."""
        chosen = Path(self.path).expanduser() if self.path else None
        return chosen if chosen is not None and chosen.is_dir() else None

    @work(thread=True, exclusive=True, exit_on_error=False, group="mounts")
    def rescan(self) -> None:
        """Detect mounted media again (off the UI thread)."""
        self.post_message(self.Rescanned(self._detect()))

    @on(Rescanned)
    def _rescanned(self, message: Rescanned) -> None:
        self.set_mounts(message.mounts)

    @on(Button.Pressed, "#rescan")
    def _rescan_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.rescan()

    def set_mounts(self, mounts: list[Any]) -> None:
        select = self.query_one("#mounts", Select)
        select.set_options([(m.describe(), m.mount_point) for m in mounts])
        points = [m.mount_point for m in mounts]
        if self.path in points:
            select.value = self.path
        elif mounts and not self.path:
            select.value = points[0]

    @on(Select.Changed, "#mounts")
    def _mount_chosen(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, str):
            self.path = event.value

    @on(Input.Changed, "#media-path")
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Chosen(event.value.strip()))
