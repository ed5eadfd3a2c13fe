"""Modal dialogs: secrets (masked), confirmations, errors, text, and small forms.

Secrets are typed into ``Input(password=True)`` fields, handed to the caller once through the
dismiss callback, and cleared from the widgets; they are never rendered, logged or put in a
message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static


class SecretDialog(ModalScreen[str | None]):
    """Ask for a password, PIN or PUK, masked; with ``confirm`` ask twice and insist they match."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, prompt: str, *, confirm: bool = False) -> None:
        super().__init__(classes="dialog")
        self.prompt = prompt
        self.confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box", classes="secret-box"):
            yield Label(self.prompt, id="secret-prompt", classes="dialog-title")
            yield Input(
                password=True, id="secret", placeholder="typed characters are hidden", compact=True
            )
            if self.confirm:
                yield Input(
                    password=True, id="secret-again", placeholder="type it again", compact=True
                )
            yield Label("", id="secret-error", classes="inline-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", variant="primary", id="ok", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def _inputs(self) -> list[Input]:
        return list(self.query(Input))

    def _clear(self) -> None:
        for field_ in self._inputs():
            field_.value = ""

    @on(Input.Submitted, "#secret")
    def _first_entered(self) -> None:
        if self.confirm:
            self.query_one("#secret-again", Input).focus()
        else:
            self._submit()

    @on(Input.Submitted, "#secret-again")
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        first = self.query_one("#secret", Input)
        error = self.query_one("#secret-error", Label)
        if not first.value:
            error.update("Type a value, or press Esc to cancel.")
            first.focus()
            return
        if self.confirm:
            again = self.query_one("#secret-again", Input)
            if again.value != first.value:
                error.update("The two entries differ: type them again.")
                self._clear()
                first.focus()
                return
        value = first.value
        self._clear()
        self.dismiss(value)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self._clear()
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question; with ``typed_word`` the operator must type that word to confirm."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        text: str,
        *,
        confirm_label: str = "Confirm",
        typed_word: str | None = None,
        danger: bool = False,
    ) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.text = text
        self.confirm_label = confirm_label
        self.typed_word = typed_word
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box", classes="confirm-box"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.text, id="confirm-text")
            if self.typed_word:
                yield Input(id="confirm-word", placeholder=f"type {self.typed_word}", compact=True)
            yield Label("", id="confirm-error", classes="inline-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    self.confirm_label,
                    variant="error" if self.danger else "primary",
                    id="yes",
                    compact=True,
                )
                yield Button("Cancel", id="no", compact=True)

    def on_mount(self) -> None:
        if self.typed_word:
            self.query_one("#confirm-word", Input).focus()
        else:
            self.query_one("#no" if self.danger else "#yes", Button).focus()

    @on(Input.Submitted, "#confirm-word")
    @on(Button.Pressed, "#yes")
    def _yes(self) -> None:
        if self.typed_word:
            typed = self.query_one("#confirm-word", Input).value
            if typed != self.typed_word:
                self.query_one("#confirm-error", Label).update(
                    f"Type {self.typed_word} exactly to confirm, or press Esc."
                )
                return
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_cancel(self) -> None:
        self.dismiss(False)


class ErrorDialog(ModalScreen[None]):
    """An error, with the same title and text the CLI prints for it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("enter", "close", "Close", show=False),
    ]

    def __init__(self, title: str, body: str) -> None:
        super().__init__(classes="dialog")
        self.error_title = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box", classes="error-box"):
            yield Label(self.error_title, id="error-title", classes="dialog-title")
            yield Static(self.body, id="error-body", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", variant="error", id="close", compact=True)

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)


class TextDialog(ModalScreen[None]):
    """Read-only text: a public key, an action's signed fields, an attestation chain."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, title: str, body: str, *, wide: bool = False) -> None:
        super().__init__(classes="dialog")
        self.text_title = title
        self.body = body
        self.wide = wide

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box", classes="text-box wide" if self.wide else "text-box"):
            yield Label(self.text_title, classes="dialog-title")
            with VerticalScroll(id="text-scroll"):
                yield Static(self.body, id="text-body", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", variant="primary", id="close", compact=True)

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class FormField:
    """One field of a :class:`FormDialog`: free text, or a choice among ``options``."""

    id: str
    label: str
    default: str = ""
    placeholder: str = ""
    options: Sequence[tuple[str, str]] = field(default_factory=tuple)
    """(label, value) pairs: the field is a select."""
    required: bool = False


Validator = Callable[[dict[str, str]], str | None]


class FormDialog(ModalScreen[dict[str, str] | None]):
    """A few labelled fields; returns their values, or None when cancelled.

    ``validate`` sees the values and returns a message to show inline, or None to accept."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "OK"),
    ]

    def __init__(
        self,
        title: str,
        fields: Sequence[FormField],
        *,
        submit_label: str = "OK",
        note: str = "",
        validate: Validator | None = None,
    ) -> None:
        super().__init__(classes="dialog")
        self.form_title = title
        self.fields = list(fields)
        self.submit_label = submit_label
        self.note = note
        self.validate = validate

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box", classes="form-box"):
            yield Label(self.form_title, classes="dialog-title")
            if self.note:
                yield Static(self.note, classes="dialog-note")
            for spec in self.fields:
                with Horizontal(classes="form-row"):
                    yield Label(spec.label, classes="form-label")
                    if spec.options:
                        yield Select(
                            list(spec.options),
                            value=spec.default or spec.options[0][1],
                            allow_blank=False,
                            id=f"field-{spec.id}",
                            compact=True,
                        )
                    else:
                        yield Input(
                            spec.default,
                            placeholder=spec.placeholder,
                            id=f"field-{spec.id}",
                            compact=True,
                        )
            yield Label("", id="form-error", classes="inline-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.submit_label, variant="primary", id="submit", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def values(self) -> dict[str, str]:
        result: dict[str, str] = {}
        for spec in self.fields:
            widget = self.query_one(f"#field-{spec.id}")
            if isinstance(widget, Select):
                result[spec.id] = "" if widget.value is Select.NULL else str(widget.value)
            elif isinstance(widget, Input):
                result[spec.id] = widget.value.strip()
        return result

    @on(Input.Submitted)
    @on(Button.Pressed, "#submit")
    def action_submit(self) -> None:
        values = self.values()
        error = self.query_one("#form-error", Label)
        for spec in self.fields:
            if spec.required and not values[spec.id]:
                error.update(f"{spec.label.rstrip(':')} is required.")
                self.query_one(f"#field-{spec.id}").focus()
                return
        if self.validate is not None:
            problem = self.validate(values)
            if problem:
                error.update(problem)
                return
        self.dismiss(values)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
