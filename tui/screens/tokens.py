"""PKCS#11 tokens: what a module sees, and keys generated on or registered from a token.

PINs are asked for in a masked dialog when the token needs one (``AIRSEAL_PIN`` answers first,
as on the command line); nothing here stores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Input, Label, Static

from airseal.appliance.errors import UsageError
from airseal.appliance.service import TOKEN_COLUMNS, Appliance, TokenTable
from airseal.appliance.service.records import KeyRecord
from airseal.tui.screens.base import AirsealScreen
from airseal.tui.widgets.dialogs import FormDialog, FormField
from airseal.tui.widgets.nav import NavBar


class TokensScreen(AirsealScreen):
    AUTO_FOCUS = "#tokens-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "list_tokens", "List tokens"),
        Binding("g", "generate_token_key", "Generate key on token"),
        Binding("k", "register_token_key", "Register token key"),
        Binding("escape", "back", "Back to keys"),
    ]

    @dataclass
    class Listed(Message):
        table: TokenTable

    @dataclass
    class KeyAdded(Message):
        record: KeyRecord
        verb: str

    def __init__(self) -> None:
        super().__init__(id="tokens")
        self.tokens: list[Any] = []
        self.module = ""

    def compose(self) -> ComposeResult:
        modules = self.context.open().known_pkcs11_modules()
        yield NavBar("keys")
        yield Static("PKCS#11 tokens", classes="section-title")
        with Horizontal(classes="toolbar"):
            yield Input(
                modules[0] if modules else "",
                placeholder="PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so",
                id="module",
                compact=True,
            )
            yield Button("List tokens", id="list", variant="primary", compact=True)
        yield Label(
            "Modules found here: " + (", ".join(modules) if modules else "none"),
            classes="hint",
            id="modules-found",
        )
        yield DataTable(id="tokens-table", cursor_type="row", zebra_stripes=True)
        yield Label("", id="tokens-status", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*TOKEN_COLUMNS)
        if self.query_one("#module", Input).value:
            self.action_list_tokens()

    def action_back(self) -> None:
        self.app.pop_screen()

    @on(Input.Submitted, "#module")
    @on(Button.Pressed, "#list")
    def action_list_tokens(self) -> None:
        module = self.query_one("#module", Input).value.strip()
        if not module:
            self.query_one("#tokens-status", Label).update("Type the path of a PKCS#11 module.")
            return
        self.list_tokens(module)

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def list_tokens(self, module: str) -> None:
        with self.context.open() as appliance:
            self.post_message(self.Listed(appliance.list_tokens(module)))

    @on(Listed)
    def _listed(self, message: Listed) -> None:
        tokens = message.table
        self.module, self.tokens = tokens.module, list(tokens.tokens)
        table = self.query_one(DataTable)
        table.clear()
        for info, row in zip(tokens.tokens, tokens.rows(), strict=True):
            table.add_row(*row, key=f"{info.slot_id}")
        count = len(tokens.tokens)
        self.query_one("#tokens-status", Label).update(
            f"{count} token(s) in {tokens.module}. g generates a key on the selected token, "
            "k registers a key it already holds."
            if count
            else tokens.empty_text
        )

    def _selected_token(self) -> Any | None:
        table = self.query_one(DataTable)
        if not self.tokens or table.row_count == 0:
            self.notify("List the tokens and select one first.", severity="warning")
            return None
        return self.tokens[table.cursor_row]

    @staticmethod
    def _selector(info: Any) -> str:
        return str(info.serial or info.label)

    @staticmethod
    def _check_name(values: dict[str, str]) -> str | None:
        try:
            Appliance.check_key_name(values.get("name", ""))
        except UsageError as error:
            return error.diagnostics()
        return None

    def action_generate_token_key(self) -> None:
        info = self._selected_token()
        if info is None:
            return
        module, token = self.module, self._selector(info)

        def answered(values: dict[str, str] | None) -> None:
            if values:
                self.generate(module, token, values["name"], values["label"] or None)

        self.app.push_screen(
            FormDialog(
                f"Generate a key on {info.describe()}",
                [
                    FormField("name", "Name", required=True),
                    FormField("label", "Key label", placeholder="default: the name"),
                ],
                submit_label="Generate",
                note="EC P-256, generated on the token and never extractable. The token's "
                "PIN is asked next.",
                validate=self._check_name,
            ),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="task")
    def generate(self, module: str, token: str, name: str, label: str | None) -> None:
        with self.context.open(self.prompter) as appliance:
            record = appliance.generate_pkcs11_key(name, module=module, token=token, label=label)
        self.post_message(self.KeyAdded(record, "Generated"))

    def action_register_token_key(self) -> None:
        info = self._selected_token()
        if info is None:
            return
        module, token = self.module, self._selector(info)

        def answered(values: dict[str, str] | None) -> None:
            if values:
                self.register(
                    module, token, values["name"], values["label"], values["key_id"] or None
                )

        self.app.push_screen(
            FormDialog(
                f"Register a key of {info.describe()}",
                [
                    FormField("name", "Name", required=True),
                    FormField("label", "Key label", required=True),
                    FormField("key_id", "Key id (hex)", placeholder="only if labels repeat"),
                ],
                submit_label="Register",
                validate=self._check_name,
            ),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="task")
    def register(self, module: str, token: str, name: str, label: str, key_id: str | None) -> None:
        with self.context.open(self.prompter) as appliance:
            record = appliance.import_pkcs11_key(
                name,
                module=module,
                token=token,
                label=label,
                key_id=key_id,
            )
        self.post_message(self.KeyAdded(record, "Registered"))

    @on(KeyAdded)
    def _added(self, message: KeyAdded) -> None:
        r = message.record
        self.notify(
            f"{message.verb} {r.algorithm} key {r.name} on the token\n"
            f"fingerprint {r.fingerprint[:32]}…",
            title="Key ready",
        )
        self.list_tokens(self.module)
