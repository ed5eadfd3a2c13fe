"""Dashboard tiles: a figure and a few lines about one area, each a shortcut into its screen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from textual.binding import Binding, BindingType
from textual.markup import escape
from textual.message import Message
from textual.widgets import Static

TileState = Literal["ok", "warning", "error", "idle"]


class Tile(Static, can_focus=True):
    """A focusable summary box; Enter or a click opens its screen."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "open", "Open", show=False)]

    @dataclass
    class Opened(Message):
        mode: str

    def __init__(self, mode: str, title: str, key: str) -> None:
        super().__init__("…", id=f"tile-{mode}", classes="tile")
        self.mode = mode
        self.border_title = f"{key} {title}"

    def show(self, figure: str, lines: list[str], state: TileState = "ok") -> None:
        self.set_classes(f"tile -{state}")
        body = "\n".join(escape(line) for line in lines)
        self.update(f"[b]{figure}[/b]\n{body}")

    def on_click(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        self.post_message(self.Opened(self.mode))
