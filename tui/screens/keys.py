"""Keys & tokens: the signing keys the appliance holds, whatever holds them; file keys are
generated and imported here, PKCS#11 tokens and YubiKeys have their own screens (t, y)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Footer, Label, Static

from airseal.appliance.errors import UsageError
from airseal.appliance.service import Appliance
from airseal.appliance.service.records import GENERATORS, KeyRecord
from airseal.tui.formatting import day
from airseal.tui.screens.base import AirsealScreen
from airseal.tui.widgets.dialogs import FormDialog, FormField, TextDialog
from airseal.tui.widgets.nav import NavBar
from airseal.tui.widgets.tables import fill_table

ALGORITHMS = tuple((name, name) for name in GENERATORS)


def _name_problem(values: dict[str, str]) -> str | None:
    try:
        Appliance.check_key_name(values.get("name", ""))
    except UsageError as error:
        return error.diagnostics()
    return None


def reference_text(record: KeyRecord) -> str:
    ref = record.reference
    if record.backend == "file":
        return f"keys/{ref.get('path', '?')}"
    if record.backend == "pkcs11":
        token = ref.get("token_label") or ref.get("token_serial") or "?"
        return f"token {token}, key {ref.get('key_label') or ref.get('key_id')}"
    if record.backend == "piv":
        serial = ref.get("serial")
        return f"YubiKey {serial if serial is not None else '?'} slot {ref.get('slot')}"
    return str(ref)


class KeysScreen(AirsealScreen):
    AUTO_FOCUS = "#keys-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("g", "generate_key", "Generate key"),
        Binding("i", "import_key", "Import key file"),
        Binding("x", "export_public_key", "Export public key"),
        Binding("enter", "show_key", "Show key", show=False),
        Binding("t", "tokens", "PKCS#11 tokens"),
        Binding("y", "piv", "YubiKey PIV"),
        Binding("s", "site_trust", "Site trust", show=False),
        Binding("r", "refresh", "Refresh"),
    ]

    @dataclass
    class Loaded(Message):
        keys: list[KeyRecord]

    @dataclass
    class KeyAdded(Message):
        record: KeyRecord
        verb: str

    @dataclass
    class PublicKeyWritten(Message):
        name: str
        path: str

    @dataclass
    class PublicKeyShown(Message):
        record: KeyRecord
        pem: str

    def __init__(self) -> None:
        super().__init__(id="keys")
        self.records: dict[str, KeyRecord] = {}

    def compose(self) -> ComposeResult:
        yield NavBar("keys")
        yield Static("Signing keys", classes="section-title")
        yield DataTable(id="keys-table", cursor_type="row", zebra_stripes=True)
        yield Label("", id="key-detail", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Name", "Backend", "Algorithm", "Fingerprint", "Held in", "Created")
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load(self) -> None:
        with self.context.open() as appliance:
            records = appliance.list_keys()
        self.post_message(self.Loaded(records))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        table = self.query_one(DataTable)
        selected = self.selected_name()
        self.records = {r.name: r for r in message.keys}
        fill_table(
            table,
            (
                (
                    (
                        record.name,
                        record.backend,
                        record.algorithm,
                        record.fingerprint[:24] + "…",
                        reference_text(record),
                        day(record.created),
                    ),
                    record.name,
                )
                for record in message.keys
            ),
        )
        if not message.keys:
            self.query_one("#key-detail", Label).update(
                "No keys yet: press g to generate one, i to import a key file, t or y for "
                "hardware keys."
            )
        elif selected in self.records:
            table.move_cursor(row=table.get_row_index(selected))
        self._describe()

    def selected_name(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return str(row_key.value) if row_key.value is not None else None

    @on(DataTable.RowHighlighted)
    def _describe(self) -> None:
        name = self.selected_name()
        record = self.records.get(name or "")
        if record is not None:
            self.query_one("#key-detail", Label).update(
                f"{record.name}: SHA-256 {record.fingerprint}  hint {record.hint}"
            )

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_show_key()

    def _require_selection(self) -> str | None:
        name = self.selected_name()
        if name is None:
            self.notify("Select a key first.", severity="warning")
        return name

    # -- generate / import ------------------------------------------------------------------

    def action_generate_key(self) -> None:
        def answered(values: dict[str, str] | None) -> None:
            if values:
                self.generate(values["name"], values["algorithm"])

        self.app.push_screen(
            FormDialog(
                "Generate a file key",
                [
                    FormField("name", "Name", placeholder="e.g. site-distributor", required=True),
                    FormField("algorithm", "Algorithm", "ecdsa-p256", options=ALGORITHMS),
                ],
                submit_label="Generate",
                note="Stored encrypted in cosign's format; you choose its password next.",
                validate=_name_problem,
            ),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="task")
    def generate(self, name: str, algorithm: str) -> None:
        with self.context.open(self.prompter) as appliance:
            record = appliance.generate_file_key(name, algorithm=algorithm)
        self.post_message(self.KeyAdded(record, "Generated"))

    def action_import_key(self) -> None:
        def check(values: dict[str, str]) -> str | None:
            problem = _name_problem(values)
            if problem:
                return problem
            if not Path(values["path"]).expanduser().is_file():
                return f"{values['path']} is not a file"
            return None

        def answered(values: dict[str, str] | None) -> None:
            if values:
                self.import_file(values["name"], Path(values["path"]).expanduser())

        self.app.push_screen(
            FormDialog(
                "Import a key file",
                [
                    FormField("name", "Name", required=True),
                    FormField(
                        "path",
                        "Private key file",
                        placeholder="/media/usb/cosign.key",
                        required=True,
                    ),
                ],
                submit_label="Import",
                note="cosign encrypted keys, or PEM RSA/ECDSA/Ed25519 (PKCS#1, PKCS#8, SEC1); "
                "re-encrypted in cosign's format.",
                validate=check,
            ),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="task")
    def import_file(self, name: str, path: Path) -> None:
        with self.context.open(self.prompter) as appliance:
            record = appliance.import_file_key(name, path)
        self.post_message(self.KeyAdded(record, "Imported"))

    @on(KeyAdded)
    def _key_added(self, message: KeyAdded) -> None:
        record = message.record
        self.notify(
            f"{message.verb} {record.algorithm} key {record.name} ({record.backend})\n"
            f"fingerprint {record.fingerprint[:32]}…",
            title="Key ready",
        )
        self.load()

    # -- public key -------------------------------------------------------------------------

    def action_export_public_key(self) -> None:
        name = self._require_selection()
        if name is None:
            return

        def answered(values: dict[str, str] | None) -> None:
            if values:
                self.export_public(name, Path(values["path"]))

        self.app.push_screen(
            FormDialog(
                f"Export the public key of {name}",
                [FormField("path", "Write to", f"{Path.cwd() / name}.pub", required=True)],
                submit_label="Write",
                note="PEM SPKI, the shape of cosign.pub; a folder gets NAME.pub.",
            ),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="task")
    def export_public(self, name: str, path: Path) -> None:
        with self.context.open() as appliance:
            written = appliance.export_public_key(name, path)
        self.post_message(self.PublicKeyWritten(name, str(written)))

    @on(PublicKeyWritten)
    def _written(self, message: PublicKeyWritten) -> None:
        self.notify(f"Wrote {message.path}", title=f"Public key of {message.name}")

    def action_show_key(self) -> None:
        name = self._require_selection()
        if name is not None:
            self.show(name)

    @work(thread=True, exclusive=True, exit_on_error=False, group="task")
    def show(self, name: str) -> None:
        with self.context.open() as appliance:
            record = appliance.get_key(name)
            pem = appliance.public_key_pem(name)
        self.post_message(self.PublicKeyShown(record, pem))

    @on(PublicKeyShown)
    def _shown(self, message: PublicKeyShown) -> None:
        r = message.record
        body = (
            f"Name:         {r.name}\n"
            f"Backend:      {r.backend}\n"
            f"Algorithm:    {r.algorithm}\n"
            f"Fingerprint:  {r.fingerprint}\n"
            f"Hint:         {r.hint}\n"
            f"Held in:      {reference_text(r)}\n"
            f"Created:      {r.created}\n\n{message.pem}"
        )
        self.app.push_screen(TextDialog(f"Key {r.name}", body))

    # -- hardware ---------------------------------------------------------------------------

    async def action_tokens(self) -> None:
        from airseal.tui.screens.tokens import TokensScreen

        await self.app.push_screen(TokensScreen())

    async def action_site_trust(self) -> None:
        from airseal.tui.screens.site import SiteTrustScreen

        await self.app.push_screen(SiteTrustScreen())

    async def action_piv(self) -> None:
        from airseal.tui.screens.piv import PivScreen

        await self.app.push_screen(PivScreen())
