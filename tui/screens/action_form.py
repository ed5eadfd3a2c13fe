"""The action form: every field of a node action, checked by the action service itself.

The service (:meth:`airseal.appliance.service.Appliance.create_action` / ``edit_action``) is the
only judge of what is valid; when it refuses, its message appears next to the field it names.
Editing signs a new version: fields left as they were keep the signed values.

The new-action form is built once per session and reused (:func:`new_action_form`): composing
its hundred-odd widgets and styling them took most of the 0.7 s (CPU) an open cost; a reused form
is only reset and laid out again. The Actions screen builds it after its own first frame
(:func:`prepare_new_action_form`), so the first ``n`` finds it ready too.
"""

from __future__ import annotations

import gc
import re
import shlex
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Footer, Input, Label, Select, Static

from airseal.appliance.errors import KeyNotFound, UsageError
from airseal.appliance.service.records import ActionRecord, ActionSpec, FileNotInStore
from airseal.tui.errors import describe_error
from airseal.tui.formatting import short, size
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


def flag_label(flag: str) -> str:
    """The label of the field for CLI option ``--flag``: the same words ("--file-mode" is
    "File mode"), so that the form and `airseal action create --help` read alike."""
    return "OS" if flag == "os" else flag.replace("-", " ").capitalize()


LABELS = {field: flag_label(field) for field in ALL_FIELDS}

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
    # Focus by AUTO_FOCUS (set as the screen activates), not by focus() in on_mount: that call
    # is deferred, and keys typed ahead of it (a Tab after the name) were undone by it.
    AUTO_FOCUS = "#f-name"
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
        # the new-action form stays mounted for the session (installed): an edit form beside it
        # needs an id of its own
        super().__init__(id="action-form" if record is None else "edit-action-form")
        self.record = record
        self.last_values: dict[str, str] = {}
        self._files: dict[str, Any] = {}
        self._key_names: list[str] = []
        self._options: dict[str, list[tuple[str, str]]] = {}

    # -- layout -----------------------------------------------------------------------------

    def _row(self, field: str, widget: Input | Select[Any]) -> ComposeResult:
        # the field's error line (``#err-<field>``) is mounted below its row on the first
        # error: nineteen hidden labels (and the boxes that would hold them) fewer to style
        # and lay out each time the form opens
        with Horizontal(classes="form-row field-row compact", id=f"box-{field}"):
            yield Label(LABELS[field], classes="form-label")
            yield widget

    def _input(self, field: str, placeholder: str = "") -> Input:
        return Input(self._initial(field), placeholder=placeholder, id=f"f-{field}", compact=True)

    def compose(self) -> ComposeResult:
        p = self.record.predicate if self.record else None
        title = (
            f"Edit action {self.record.id} (signs version {self.record.version + 1})"
            if self.record
            else "New action"
        )
        row, text = self._row, self._input
        yield NavBar("actions")
        yield Static(title, classes="section-title", id="form-title")
        yield Static("", id="form-error", classes="inline-error", markup=False)
        with VerticalScroll(id="form-scroll"):
            with Vertical(classes="form-column", id="file-column"):
                yield from row("file", Select([], prompt="stored file", id="f-file", compact=True))
                yield Static("", id="file-detail", classes="hint", markup=False)
            with Horizontal(id="form-columns"):
                with Vertical(classes="form-column"):
                    yield Static("Action", classes="column-title")
                    yield from row("name", text("name", "(Purpose)Name"))
                    yield from row("description", text("description", "shown to endpoint users"))
                    yield from row("label", text("label", "to group actions"))
                    yield from row("os", self._select("os", OS_CHOICES, p.os if p else "linux"))
                    yield from row(
                        "mode", self._select("mode", MODE_CHOICES, p.mode if p else "execute")
                    )
                    yield from row(
                        "valid-days", text("valid-days", "default: setting action.valid-days")
                    )
                    yield from row("key", Select([], prompt="key", id="f-key", compact=True))
                with Vertical(classes="form-column"):
                    yield Static("Conditions", classes="column-title")
                    yield from row("if-missing", text("if-missing", "/path; /other (all hold)"))
                    yield from row("if-exists", text("if-exists", "/path; /other"))
                    yield from row("host", text("host", "glob, e.g. ws-*"))
                    yield from row("group", text("group", "endpoint group"))
                    with Vertical(id="execute-options"):
                        yield Static("Execute", classes="column-title")
                        yield from row("run", text("run", "file in the archive"))
                        yield from row("args", text("args", '-q --x "a b"'))
                        yield from row("run-as", text("run-as", "account"))
                        yield from row("timeout", text("timeout", "seconds, default 3600"))
                        reboot = p.execute.reboot if p and p.execute else "never"
                        yield from row("reboot", self._select("reboot", REBOOT_CHOICES, reboot))
                    with Vertical(id="download-options"):
                        yield Static("Download", classes="column-title")
                        yield from row("dest", text("dest", "absolute path on the endpoint"))
                        yield from row("file-mode", text("file-mode", "0644"))
                        yield from row("owner", text("owner", "account"))
        with Horizontal(classes="toolbar", id="form-buttons"):
            yield Button("Sign and save", variant="primary", id="save", compact=True)
            yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    def _select(self, field: str, choices: tuple[tuple[str, str], ...], value: str) -> Select[str]:
        return Select(list(choices), value=value, allow_blank=False, id=f"f-{field}", compact=True)

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
        if not self.query("#f-mode"):
            return  # built ahead of time as the app closed: its fields were never mounted
        if self.record is None:
            # built ahead and kept for the session: out of the collector's walks (as the
            # screens imported, AirsealApp._settle_memory), which its opening would pay for
            gc.freeze()
        self._mode_changed()
        self.load_choices()
        if self.record is None and not self.is_current:
            self.call_later(self._lay_out_ahead)

    def _lay_out_ahead(self, rounds: int = 6, *, first: bool = True) -> None:
        """Lay the form built ahead out at the app's size while it is hidden, so that its
        opening (same size) only paints it: laid out as it opened, it was arranged twice (once
        more as its scrollbar appeared), two thirds of the opening's CPU time. The widgets
        resized report it back (layout requests, which a hidden screen keeps for when it is
        shown): they are answered here, until the layout stands still."""
        if self.is_current or not self.is_attached or not hasattr(self, "_layout_required"):
            return
        if first or self._layout_required:
            self._layout_required = False
            self._refresh_layout(self.app.size)
        if rounds > 1:
            self.set_timer(0.03, lambda: self._lay_out_ahead(rounds - 1, first=False))

    def reset(self) -> None:
        """Back to an empty new-action form (a reused form opens as a fresh one would). The
        file and key lists of the last visit stay, with the default choice made again, while
        they are read again (the new lists replace them as they arrive)."""
        assert self.record is None, "only the new-action form is reused"
        self.last_values = {}
        self._clear_errors()
        for field in TEXT_FIELDS:
            self.query_one(f"#f-{field}", Input).value = ""
        for field, value in (("os", "linux"), ("mode", "execute"), ("reboot", "never")):
            self.query_one(f"#f-{field}", Select).value = value
        self._choose_defaults(list(self._files.values()), self._key_names)
        self.query_one("#save", Button).disabled = False
        self.query_one("#form-scroll", VerticalScroll).scroll_home(animate=False)
        self._mode_changed()
        self.load_choices()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load_choices(self) -> None:
        with self.context.open() as appliance:
            files = appliance.list_files()
            keys = appliance.list_keys()
        self.post_message(self.Choices(files, keys))

    @on(Choices)
    def _choices(self, message: Choices) -> None:
        file_select = self.query_one("#f-file", Select)
        file_options = [
            (
                f"{f.name}  {size(f.size)}  {f.sha256[:12]}"
                + ("" if f.verified else "  unverified"),
                f.sha256,
            )
            for f in message.files
        ]
        key_select = self.query_one("#f-key", Select)
        key_options = [(f"{k.name} ({k.backend}, {k.algorithm})", k.name) for k in message.keys]
        # a reused form reads the lists again on every open: the same lists leave the selects
        # (and the choices made from them) as they are, with no overlay rebuilt
        if file_options != self._options.get("file"):
            file_select.set_options(file_options)
        if key_options != self._options.get("key"):
            key_select.set_options(key_options)
        self._options = {"file": file_options, "key": key_options}
        if self.record is not None:
            if any(f.sha256 == self.record.payload_sha256 for f in message.files):
                file_select.value = self.record.payload_sha256
            if any(k.name == self.record.key_name for k in message.keys):
                key_select.value = self.record.key_name
        self._files = {f.sha256: f for f in message.files}
        self._key_names = [k.name for k in message.keys]
        if self.record is None:
            self._choose_defaults(message.files, self._key_names)
        self._file_chosen()
        if not message.files:
            self._show_error(
                "file", "No stored file: add one on the Files screen (3) first.", focus=False
            )
        if not message.keys:
            self._show_error(
                "key", "No signing key: generate one on the Keys screen (2).", focus=False
            )

    def _choose_defaults(self, files: list[Any], key_names: list[str]) -> None:
        """A new action's choices: the only stored file, and the first key."""
        file_select = self.query_one("#f-file", Select)
        key_select = self.query_one("#f-key", Select)
        if len(files) == 1:
            file_select.value = files[0].sha256
        else:
            file_select.clear()
        if key_names:
            key_select.value = key_names[0]
        else:
            key_select.clear()
        self._file_chosen()

    @on(Select.Changed, "#f-file")
    def _file_chosen(self) -> None:
        value = self.query_one("#f-file", Select).value
        f = self._files.get(value) if isinstance(value, str) else None
        detail = self.query_one("#file-detail", Static)
        if f is None:
            _show_text(detail, "")
            return
        signer = f" by {short(f.signer, 16)}" if f.signer else ""
        check = f"verified: {f.method}{signer}" if f.verified else "NOT verified at intake"
        _show_text(detail, f"sha256 {short(f.sha256, 16)}  {size(f.size)}  {check}")

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
        _show_text(self.query_one("#form-error", Static), "")
        for label in self.query(".field-error").results(Label):
            _show_text(label, "")
            label.remove_class("-shown")
        for widget in self.query(".-invalid"):
            widget.remove_class("-invalid")

    def _show_error(self, field: str | None, text: str, *, focus: bool = True) -> None:
        if field is None or field not in ALL_FIELDS:
            self.query_one("#form-error", Static).update(text)
            return
        found = self.query(f"#err-{field}").results(Label)
        label = next(iter(found), None)
        if label is None:
            label = Label(text, id=f"err-{field}", classes="inline-error field-error -shown")
            row = self.query_one(f"#box-{field}", Horizontal)
            column = row.parent
            assert isinstance(column, Widget)
            column.mount(label, after=row)
        else:
            label.update(text)
            label.add_class("-shown")
        widget = self.query_one(f"#f-{field}")
        widget.add_class("-invalid")
        self.query_one("#form-error", Static).update("The action was not signed: see below.")
        if focus:
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


def _show_text(static: Static, text: str) -> None:
    """``static.update(text)`` unless it shows ``text`` already: an update lays out the whole
    form again (a text can change a widget's height), which a reused form's opening paid for
    twice with texts unchanged."""
    if static.content != text:
        static.update(text)


NEW_ACTION_FORM = "new-action-form"
"""The name the reused new-action form is installed under."""


def new_action_form(app: App[Any]) -> ActionFormScreen:
    """The session's new-action form, reset; built (and installed, so that closing it keeps
    it) on the first call unless :func:`prepare_new_action_form` did it already."""
    if app.is_screen_installed(NEW_ACTION_FORM):
        form = app.get_screen(NEW_ACTION_FORM)
        assert isinstance(form, ActionFormScreen)
        if form.is_mounted:  # still being composed: never shown, nothing to reset
            form.reset()
        return form
    form = ActionFormScreen()
    app.install_screen(form, NEW_ACTION_FORM)
    return form


def prepare_new_action_form(app: App[Any]) -> None:
    """Build the new-action form now, off screen, so that opening it only lays it out.

    Textual composes a screen when it is first pushed; ``App._register`` is what that push
    calls to compose and mount it, called here ahead of time (a pushed screen that is already
    running is not composed again). Without that method (another Textual) the form is built
    on the first open, as before."""
    if app.is_screen_installed(NEW_ACTION_FORM) or not app.is_running:
        return
    form = new_action_form(app)
    register = getattr(app, "_register", None)
    if register is not None and not form.is_running:
        register(app, form)
