"""Site configuration: the appliance's policy settings (``airseal config get|set``), each with
its meaning, default and allowed values. The service checks and audits every change; a refused
value is shown next to its setting and nothing else is changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Footer, Input, Label, Select, Static

from airseal.appliance.service import SettingView
from airseal.errors import UsageError
from airseal.tui.screens.base import AirsealScreen
from airseal.tui.widgets.nav import NavBar


def field_id(name: str) -> str:
    """The widget id of a setting's field (``export.valid-days`` -> ``set-export-valid-days``)."""
    return "set-" + name.replace(".", "-")


class SettingsScreen(AirsealScreen):
    AUTO_FOCUS = "#settings-rows Input, #settings-rows Select"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save changes"),
        Binding("escape", "back", "Back"),
    ]

    @dataclass
    class Loaded(Message):
        settings: list[SettingView]

    @dataclass
    class Saved(Message):
        changed: list[tuple[str, str]]
        refused: list[tuple[str, str]]
        settings: list[SettingView]

    def __init__(self) -> None:
        super().__init__(id="settings")
        self.settings: list[SettingView] = []

    def compose(self) -> ComposeResult:
        yield NavBar("dashboard")
        yield Static("Site configuration", classes="section-title")
        yield Static(
            "Policy for this appliance; every change is recorded in the audit log. "
            "Enter or ctrl+s saves, Esc goes back.",
            classes="hint",
        )
        yield VerticalScroll(id="settings-rows")
        with Horizontal(classes="toolbar"):
            yield Button("Save changes", variant="primary", id="save", compact=True)
            yield Button("Back", id="back", compact=True)
        yield Static("", id="settings-result", classes="result", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#settings-result").display = False
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load(self) -> None:
        with self.context.open() as appliance:
            settings = appliance.setting_views()
        self.post_message(self.Loaded(settings))

    @on(Loaded)
    async def _loaded(self, message: Loaded) -> None:
        self.settings = message.settings
        rows = self.query_one("#settings-rows", VerticalScroll)
        await rows.remove_children()
        for s in message.settings:
            field: Input | Select[str]
            if s.choices:
                choices = [(c, c) for c in s.choices]
                field = Select(choices, value=s.value, allow_blank=False, compact=True)
            else:
                field = Input(s.value, placeholder=f"days (default {s.default})", compact=True)
            field.id = field_id(s.name)
            allowed = ", ".join(s.choices) if s.choices else "1 to 3650 days"
            await rows.mount(
                Vertical(
                    Horizontal(
                        Label(s.name, classes="setting-label"), field, classes="form-row setting"
                    ),
                    Static(
                        f"{s.description} (default {s.default}; {allowed})",
                        classes="hint setting-hint",
                        markup=False,
                    ),
                    Label("", id=f"err-{field.id}", classes="inline-error setting-hint"),
                    classes="setting-box",
                )
            )
        self.focus_home()

    def values(self) -> dict[str, str]:
        result = {}
        for s in self.settings:
            widget = self.query_one(f"#{field_id(s.name)}")
            value = widget.value if isinstance(widget, Input | Select) else None
            result[s.name] = value.strip() if isinstance(value, str) else s.value
        return result

    @on(Input.Submitted, "#settings-rows Input")
    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        changed = [(s.name, v) for s in self.settings if (v := self.values()[s.name]) != s.value]
        for label in self.query(".inline-error"):
            if isinstance(label, Label):
                label.update("")
        if not changed:
            self._result("Nothing changed.", ok=True)
            return
        self.query_one("#save", Button).disabled = True
        self.save(changed)

    @work(thread=True, exclusive=True, exit_on_error=False, group="save")
    def save(self, changed: list[tuple[str, str]]) -> None:
        done, refused = [], []
        with self.context.open() as appliance:
            for name, value in changed:
                try:
                    appliance.set_setting(name, value)
                except UsageError as error:
                    refused.append((name, error.detail))
                else:
                    done.append((name, value))
            settings = appliance.setting_views()
        self.post_message(self.Saved(done, refused, settings))

    @on(Saved)
    def _saved(self, message: Saved) -> None:
        current = {s.name: s for s in message.settings}
        self.settings = [
            current[s.name] if (s.name, current[s.name].value) in message.changed else s
            for s in self.settings
        ]
        for name, problem in message.refused:
            error = self.query_one(f"#err-{field_id(name)}", Label)
            error.update(problem)
            self.query_one(f"#{field_id(name)}").focus()
        lines = [f"{name} = {value}" for name, value in message.changed]
        lines += [f"{name}: NOT changed: {problem}" for name, problem in message.refused]
        self._result("\n".join(lines), ok=not message.refused)
        if message.changed:
            self.notify(f"Saved {len(message.changed)} setting(s).", title="Site configuration")

    def worker_done(self, name: str) -> None:
        if name == "save":
            self.query_one("#save", Button).disabled = False

    def _result(self, text: str, *, ok: bool) -> None:
        box = self.query_one("#settings-result", Static)
        box.border_title = "Saved" if ok else "Some settings were refused"
        box.set_classes("result -ok" if ok else "result -failed")
        box.update(text)
        box.display = True

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.dismiss(None)
