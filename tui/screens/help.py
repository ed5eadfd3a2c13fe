"""The help screen: every key of every screen, read from the screens' own bindings."""

from __future__ import annotations

import importlib
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Label

from airseal.tui.navigation import PLACES

SUB_SCREENS = (
    ("PKCS#11 tokens", "airseal.tui.screens.tokens", "TokensScreen"),
    ("YubiKey PIV", "airseal.tui.screens.piv", "PivScreen"),
    ("Action form", "airseal.tui.screens.action_form", "ActionFormScreen"),
    ("Sign a file", "airseal.tui.screens.sign_blob", "SignBlobScreen"),
    ("Site configuration", "airseal.tui.screens.settings", "SettingsScreen"),
)


def _keys(binding: BindingType) -> tuple[str, str]:
    if isinstance(binding, Binding):
        return binding.key, binding.description
    key, _action, *rest = binding
    return key, rest[0] if rest else ""


def _display(key: str) -> str:
    names = {
        "question_mark": "?",
        "escape": "Esc",
        "enter": "Enter",
        "slash": "/",
        "delete": "Del",
        "space": "Space",
    }
    return ", ".join(names.get(k.strip(), k.strip()) for k in key.split(","))


def key_table() -> list[tuple[str, str, str]]:
    """(screen, keys, what they do) for the app and every screen."""
    from airseal.tui.app import AirsealApp

    rows: list[tuple[str, str, str]] = []
    for binding in AirsealApp.BINDINGS:
        key, description = _keys(binding)
        rows.append(("Everywhere", _display(key), description))
    rows.append(("Everywhere", "ctrl+p", "Command palette: every screen and action"))
    screens = [(p.title, p.module, p.screen) for p in PLACES] + list(SUB_SCREENS)
    for title, module, name in screens:
        cls = getattr(importlib.import_module(module), name)
        for binding in cls.BINDINGS:
            key, description = _keys(binding)
            if description:
                rows.append((title, _display(key), description))
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self) -> None:
        super().__init__(classes="dialog")

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box", classes="text-box wide"):
            yield Label("Keys", classes="dialog-title")
            yield DataTable(id="help-keys", cursor_type="row", zebra_stripes=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", variant="primary", id="close", compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Screen", "Key", "Does")
        for row in key_table():
            table.add_row(*row)
        table.focus()

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)
