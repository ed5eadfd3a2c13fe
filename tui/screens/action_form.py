"""The action form: every field of a node action, checked by the action service itself.

The service (:meth:`airseal.appliance.service.Appliance.create_action` / ``edit_action``) is the
only judge of what is valid; when it refuses, its message appears next to the field it names.
Editing signs a new version: fields left as they were keep the signed values.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Footer, Input, Label, Select, Static

from airseal.appliance.errors import KeyNotFound, UsageError
from airseal.appliance.service.records import ActionRecord, ActionSpec, FileNotInStore
from airseal.tui.errors import describe_error
from airseal.tui.formatting import size
from airseal.tui.screens.base import AirsealScreen
from airseal.tui.widgets.nav import NavBar

OS_CHOICES = (("linux", "linux"), ("macos", "macos"), ("windows", "windows"))
MODE_CHOICES = (("execute: run a file", "execute"), ("download: place a file", "download"))
REBOOT_CHOICES = (("never", "never"), ("if requested", "if-requested"), ("always", "always"))

TEXT_FIELDS = (
    "name",
    "description",
    "label",
    "if-missing",
    "if-exists",
    "host",
    "group",
    "run",
    "args",
    "run-as",
    "timeout",
    "dest",
    "file-mode",
    "owner",
    "valid-days",
)
SELECT_FIELDS = ("os", "file", "mode", "reboot", "key")
ALL_FIELDS = TEXT_FIELDS + SELECT_FIELDS

# The service names fields by their model names or CLI options; the form names them by id.
_SERVICE_FIELD = {
    "name": "name",
    "description": "description",
    "label": "label",
    "os": "os",
    "mode": "mode",
    "if_missing": "if-missing",
    "ifMissing": "if-missing",
    "if_exists": "if-exists",
    "ifExists": "if-exists",
    "host": "host",
    "group": "group",
    "run": "run",
    "args": "args",
    "run_as": "run-as",
    "runAs": "run-as",
    "timeout_seconds": "timeout",
    "timeout": "timeout",
    "reboot": "reboot",
    "dest": "dest",
    "file_mode": "file-mode",
    "fileMode": "file-mode",
    "mode-bits": "file-mode",
    "owner": "owner",
    "file": "file",
    "payload": "file",
    "key": "key",
    "valid-days": "valid-days",
    "valid_days": "valid-days",
}


def _paths(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(";") if p.strip())


def field_for_error(error: BaseException, values: dict[str, str]) -> str | None:
    """Which form field an error from the action service is about, if it names one."""
    if isinstance(error, FileNotInStore):
        return "file"
    if isinstance(error, KeyNotFound):
        return "key"
    detail = getattr(error, "detail", str(error))
    option = re.search(r"--([a-z][a-z-]*)", detail)
    if option and option.group(1) in _SERVICE_FIELD:
        return _SERVICE_FIELD[option.group(1)]
    head = detail.split(":", 1)[0].strip().split(".")[-1]
    if head in _SERVICE_FIELD:
        return _SERVICE_FIELD[head]
    if "download dest" in detail:
        return "dest"
    quoted = re.search(r"condition path '([^']*)'", detail)
    if quoted:
        for field in ("if-missing", "if-exists"):
            if quoted.group(1) in _paths(values.get(field, "")):
                return field
    return None


class ActionFormScreen(AirsealScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Sign and save"),
        Binding("escape", "cancel", "Cancel"),
    ]

    @dataclass
    class Choices(Message):
        files: list[Any]
        keys: list[Any]

    @dataclass
    class Saved(Message):
        record: ActionRecord
        created: bool

    def __init__(self, record: ActionRecord | None = None) -> None:
        super().__init__(id="action-form")
        self.record = record
        self.last_values: dict[str, str] = {}

    # -- layout -----------------------------------------------------------------------------

    def _row(self, field: str, label: str, widget: Input | Select[Any]) -> ComposeResult:
        with Vertical(classes="field", id=f"box-{field}"):
            with Horizontal(classes="form-row compact"):
                yield Label(label, classes="form-label")
                yield widget
            yield Label("", id=f"err-{field}", classes="inline-error field-error")

    def _input(self, field: str, placeholder: str = "") -> Input:
        return Input(self._initial(field), placeholder=placeholder, id=f"f-{field}", compact=True)

    def compose(self) -> ComposeResult:
        p = self.record.predicate if self.record else None
        title = (
            f"Edit action {self.record.id} (signs version {self.record.version + 1})"
            if self.record
            else "New action"
        )
        yield NavBar("actions")
        yield Static(title, classes="section-title", id="form-title")
        yield Static("", id="form-error", classes="inline-error", markup=False)
        with VerticalScroll(id="form-scroll"), Horizontal(id="form-columns"):
            with Vertical(classes="form-column"):
                yield Static("Action", classes="column-title")
                yield from self._row("name", "Name", self._input("name", "(Purpose)Name"))
                yield from self._row(
                    "description",
                    "Description",
                    self._input("description", "shown to endpoint users"),
                )
                yield from self._row("label", "Label", self._input("label", "to group actions"))
                yield from self._row(
                    "os",
                    "Target OS",
                    Select(
                        list(OS_CHOICES),
                        value=p.os if p else "linux",
                        allow_blank=False,
                        id="f-os",
                        compact=True,
                    ),
                )
                yield from self._row(
                    "file", "File", Select([], prompt="stored file", id="f-file", compact=True)
                )
                yield from self._row(
                    "mode",
                    "Distribution",
                    Select(
                        list(MODE_CHOICES),
                        value=p.mode if p else "execute",
                        allow_blank=False,
                        id="f-mode",
                        compact=True,
                    ),
                )
                yield from self._row(
                    "valid-days",
                    "Valid (days)",
                    self._input("valid-days", "default: setting action.valid-days"),
                )
                yield from self._row(
                    "key", "Signing key", Select([], prompt="key", id="f-key", compact=True)
                )
            with Vertical(classes="form-column"):
                yield Static("Conditions", classes="column-title")
                yield from self._row(
                    "if-missing",
                    "If missing",
                    self._input("if-missing", "/path; /other (all must hold)"),
                )
                yield from self._row(
                    "if-exists", "If exists", self._input("if-exists", "/path; /other")
                )
                yield from self._row("host", "Host glob", self._input("host", "e.g. ws-*"))
                yield from self._row("group", "Group", self._input("group", "endpoint group"))
                with Vertical(id="execute-options"):
                    yield Static("Execute", classes="column-title")
                    yield from self._row(
                        "run",
                        "Run",
                        self._input("run", "file in the archive"),
                    )
                    yield from self._row("args", "Arguments", self._input("args", '-q --x "a b"'))
                    yield from self._row("run-as", "Run as", self._input("run-as", "account"))
                    yield from self._row("timeout", "Timeout (s)", self._input("timeout", "3600"))
                    yield from self._row(
                        "reboot",
                        "Reboot",
                        Select(
                            list(REBOOT_CHOICES),
                            value=p.execute.reboot if p and p.execute else "never",
                            allow_blank=False,
                            id="f-reboot",
                            compact=True,
                        ),
                    )
                with Vertical(id="download-options"):
                    yield Static("Download", classes="column-title")
                    yield from self._row(
                        "dest", "Destination", self._input("dest", "absolute path on the endpoint")
                    )
                    yield from self._row("file-mode", "Mode bits", self._input("file-mode", "0644"))
                    yield from self._row("owner", "Owner", self._input("owner", "account"))
        with Horizontal(classes="toolbar", id="form-buttons"):
            yield Button("Sign and save", variant="primary", id="save", compact=True)
            yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    def _initial(self, field: str) -> str:
        if self.record is None:
            return ""
        p = self.record.predicate
        cond, execute, download = p.conditions, p.execute, p.download
        value: Any = {
            "name": p.name,
            "description": p.description,
            "label": p.label,
            "if-missing": "; ".join(cond.if_missing),
            "if-exists": "; ".join(cond.if_exists),
            "host": cond.host,
            "group": cond.group,
            "run": execute.run if execute else None,
            "args": shlex.join(execute.args) if execute and execute.args else "",
            "run-as": execute.run_as if execute else None,
            "timeout": str(execute.timeout_seconds) if execute else "",
            "dest": download.dest if download else None,
            "file-mode": download.file_mode if download else None,
            "owner": download.owner if download else None,
        }.get(field)
        return "" if value is None else str(value)

    def on_mount(self) -> None:
        for error in self.query(".field-error"):
            error.display = False
        self._mode_changed()
        self.load_choices()
        self.query_one("#f-name", Input).focus()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load_choices(self) -> None:
        with self.context.open() as appliance:
            files = appliance.list_files()
            keys = appliance.list_keys()
        self.post_message(self.Choices(files, keys))

    @on(Choices)
    def _choices(self, message: Choices) -> None:
        file_select = self.query_one("#f-file", Select)
        file_select.set_options(
            [
                (
                    f"{f.name} ({f.sha256[:12]}, {size(f.size)}, "
                    f"{f.method if f.verified else 'unverified'})",
                    f.sha256,
                )
                for f in message.files
            ]
        )
        key_select = self.query_one("#f-key", Select)
        key_select.set_options(
            [(f"{k.name} ({k.backend}, {k.algorithm})", k.name) for k in message.keys]
        )
        if self.record is not None:
            if any(f.sha256 == self.record.payload_sha256 for f in message.files):
                file_select.value = self.record.payload_sha256
            if any(k.name == self.record.key_name for k in message.keys):
                key_select.value = self.record.key_name
        else:
            if len(message.files) == 1:
                file_select.value = message.files[0].sha256
            if message.keys:
                key_select.value = message.keys[0].name
        if not message.files:
            self._show_error("file", "No stored file: add one on the Files screen (3) first.")
        if not message.keys:
            self._show_error("key", "No signing key: generate one on the Keys screen (2).")

    @on(Select.Changed, "#f-mode")
    def _mode_changed(self) -> None:
        mode = self.query_one("#f-mode", Select).value
        self.query_one("#execute-options").display = mode == "execute"
        self.query_one("#download-options").display = mode == "download"

    # -- values and errors ------------------------------------------------------------------

    def values(self) -> dict[str, str]:
        result: dict[str, str] = {}
        for field in TEXT_FIELDS:
            result[field] = self.query_one(f"#f-{field}", Input).value.strip()
        for field in SELECT_FIELDS:
            value = self.query_one(f"#f-{field}", Select).value
            result[field] = "" if value is Select.NULL else str(value)
        return result

    def _clear_errors(self) -> None:
        self.query_one("#form-error", Static).update("")
        for field in ALL_FIELDS:
            label = self.query_one(f"#err-{field}", Label)
            label.update("")
            label.display = False
            self.query_one(f"#f-{field}").remove_class("-invalid")

    def _show_error(self, field: str | None, text: str) -> None:
        if field is None or field not in ALL_FIELDS:
            self.query_one("#form-error", Static).update(text)
            return
        label = self.query_one(f"#err-{field}", Label)
        label.update(text)
        label.display = True
        widget = self.query_one(f"#f-{field}")
        widget.add_class("-invalid")
        self.query_one("#form-error", Static).update("The action was not signed: see below.")
        widget.focus()

    def spec(self, v: dict[str, str]) -> tuple[ActionSpec, list[tuple[str, str]]]:
        """The service's input from the form, and problems found before asking it."""
        problems: list[tuple[str, str]] = []

        def number(field: str, low: int, high: int) -> int | None:
            if not v[field]:
                return None
            if not v[field].isdigit() or not low <= int(v[field]) <= high:
                problems.append((field, f"a whole number from {low} to {high}"))
                return None
            return int(v[field])

        args: tuple[str, ...] | None = None
        if v["args"]:
            try:
                args = tuple(shlex.split(v["args"]))
            except ValueError as exc:
                problems.append(("args", f"arguments are shell-quoted: {exc}"))
        elif self.record is not None:
            args = ()
        for field, what in (
            ("name", "a name"),
            ("file", "a stored file"),
            ("key", "a signing key"),
        ):
            if not v[field]:
                problems.append((field, f"choose {what}"))
        execute = v["mode"] == "execute"
        download = v["mode"] == "download"
        if download and not v["dest"]:
            problems.append(("dest", "download actions need a destination (absolute path)"))
        unchanged_file = self.record is not None and v["file"] == self.record.payload_sha256
        spec = ActionSpec(
            name=v["name"] or None,
            description=v["description"] if v["description"] or self.record else None,
            label=v["label"] if v["label"] or self.record else None,
            os=v["os"] or None,
            mode=v["mode"] or None,
            file=None if unchanged_file else (v["file"] or None),
            if_missing=_paths(v["if-missing"]),
            if_exists=_paths(v["if-exists"]),
            host=v["host"] or None,
            group=v["group"] or None,
            run=(v["run"] or None) if execute else None,
            args=args if execute else None,
            run_as=(v["run-as"] or None) if execute else None,
            timeout=number("timeout", 1, 7 * 24 * 3600) if execute else None,
            reboot=(v["reboot"] or None) if execute else None,
            dest=(v["dest"] or None) if download else None,
            file_mode=(v["file-mode"] or None) if download else None,
            owner=(v["owner"] or None) if download else None,
            valid_days=number("valid-days", 1, 3650),
        )
        return spec, problems

    # -- saving -----------------------------------------------------------------------------

    @on(Input.Submitted)
    def _next_field(self) -> None:
        self.focus_next()

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        self._clear_errors()
        values = self.values()
        spec, problems = self.spec(values)
        if problems:
            for field, text in reversed(problems):
                self._show_error(field, text)
            return
        self.last_values = values
        self.query_one("#save", Button).disabled = True
        self.save(spec, values["key"])

    @work(thread=True, exclusive=True, exit_on_error=False, group="save")
    def save(self, spec: ActionSpec, key_name: str) -> None:
        with self.context.open(self.prompter) as appliance:
            if self.record is None:
                record = appliance.create_action(spec, key_name)
            else:
                record = appliance.edit_action(self.record.id, spec, key_name)
        self.post_message(self.Saved(record, self.record is None))

    def worker_failed(self, name: str, error: BaseException) -> bool:
        if name != "save" or not isinstance(error, UsageError | FileNotInStore | KeyNotFound):
            return False
        self._show_error(field_for_error(error, self.last_values), describe_error(error).body)
        return True

    def worker_done(self, name: str) -> None:
        if name == "save":
            self.query_one("#save", Button).disabled = False

    @on(Saved)
    def _saved(self, message: Saved) -> None:
        r = message.record
        verb = "Created" if message.created else "Signed"
        self.app.notify(
            f"{verb} action {r.id} v{r.version}: {r.name} ({r.os}, {r.mode}), "
            f"valid until {r.valid_until[:10]}",
            title="Action signed",
        )
        self.dismiss(r)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
