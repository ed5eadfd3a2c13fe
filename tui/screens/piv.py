"""YubiKey PIV: the equivalent of ``cosign piv-tool`` behind keys.

Information, PIN/PUK changes, a random PIN-protected management key, key generation with PIN
and touch policies, attestation verified to Yubico's roots (the chain is shown), registering a
slot as a signing key, and reset behind a typed confirmation. PINs, PUKs and management keys are
typed into masked dialogs; ``notice`` messages (touch the key now) appear as notifications.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Label, Select, Static

from airseal.appliance.errors import UsageError
from airseal.appliance.service import Appliance
from airseal.appliance.service.records import common_name, token_pin
from airseal.appliance.service.yubikey import ALGORITHMS, YubiKeyPiv, key_fingerprint
from airseal.tui.screens.base import AirsealScreen
from airseal.tui.widgets.dialogs import ConfirmDialog, FormDialog, FormField, TextDialog
from airseal.tui.widgets.nav import NavBar

SLOTS = (
    ("9a authentication", "9a"),
    ("9c signature", "9c"),
    ("9d key management", "9d"),
    ("9e card authentication", "9e"),
)
PIN_POLICY = (
    ("slot default", "default"),
    ("once", "once"),
    ("always", "always"),
    ("never", "never"),
)
TOUCH_POLICY = (
    ("slot default (never)", "default"),
    ("never", "never"),
    ("always", "always"),
    ("cached (15 s)", "cached"),
)
RESET_WORD = "RESET"


def _tries(left: int | None, total: int | None) -> str:
    if left is None:
        return "unknown"
    return f"{left} of {total}" if total is not None else str(left)


def info_text(info: Any) -> str:
    protected = ", stored on the YubiKey under the PIN" if info.management_key_protected else ""
    lines = [
        f"YubiKey serial  {info.serial if info.serial is not None else 'unknown'}    "
        f"firmware {info.firmware}",
        f"PIN tries left  {_tries(info.pin_tries_left, info.pin_tries_total)}    "
        f"PUK tries left {_tries(info.puk_tries_left, info.puk_tries_total)}",
        f"Management key  {info.management_key_algorithm}{protected}",
    ]
    lines += [f"▲ {warning}" for warning in info.warnings]
    return "\n".join(lines)


def attestation_text(verified: Any, chain_names: list[str]) -> str:
    key = verified.key
    lines = [
        f"Attestation verified to {verified.root}.",
        "",
        f"YubiKey serial:  {key.serial}",
        f"Firmware:        {key.firmware}",
        f"Slot:            {key.slot}",
        f"PIN policy:      {key.pin_policy}",
        f"Touch policy:    {key.touch_policy}",
        f"Form factor:     {key.form_factor}",
        "",
        "Chain (attested key first):",
        *(f"  {'  ' * i}└ {name}" for i, name in enumerate(chain_names)),
        "",
        verified.chain_pem(),
    ]
    return "\n".join(lines)


class PivScreen(AirsealScreen):
    AUTO_FOCUS = "#slots"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("i", "info", "Info"),
        Binding("g", "generate", "Generate key"),
        Binding("a", "attest", "Attestation"),
        Binding("k", "register", "Register slot"),
        Binding("p", "change_pin", "Change PIN"),
        Binding("u", "change_puk", "Change PUK"),
        Binding("b", "unblock_pin", "Unblock PIN"),
        Binding("m", "management_key", "Random mgmt key"),
        Binding("R", "reset", "Reset PIV"),
        Binding("s", "scan", "Rescan", show=False),
        Binding("escape", "back", "Back to keys"),
    ]

    @dataclass
    class Devices(Message):
        devices: list[Any]

    @dataclass
    class Info(Message):
        info: Any

    @dataclass
    class Failed(Message):
        text: str

    @dataclass
    class Done(Message):
        text: str

    @dataclass
    class Attested(Message):
        text: str

    def __init__(self) -> None:
        super().__init__(id="piv")
        self.serial: int | None = None
        self.slot_rows: list[str] = []

    def compose(self) -> ComposeResult:
        yield NavBar("keys")
        yield Static("YubiKey PIV", classes="section-title")
        with Horizontal(classes="toolbar"):
            yield Select[int]([], prompt="YubiKey", id="device", allow_blank=True, compact=True)
            yield Button("Rescan", id="scan", compact=True)
        yield Static("Looking for YubiKeys…", id="piv-info", classes="result")
        yield DataTable(id="slots", cursor_type="row", zebra_stripes=True)
        yield Label("", id="piv-status", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(
            "Slot",
            "Algorithm",
            "PIN policy",
            "Touch policy",
            "Origin",
            "Key SHA-256",
            "Certificate",
        )
        self.action_scan()

    def action_back(self) -> None:
        self.app.pop_screen()

    # -- devices and info -------------------------------------------------------------------

    @on(Button.Pressed, "#scan")
    def action_scan(self) -> None:
        self.scan()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def scan(self) -> None:
        from airseal.appliance.errors import YubiKeyError

        try:
            devices = self.context.open().yubikeys()
        except YubiKeyError as error:
            self.post_message(self.Failed(error.diagnostics()))
            return
        self.post_message(self.Devices(devices))

    @on(Devices)
    def _devices(self, message: Devices) -> None:
        select = self.query_one("#device", Select)
        options = [
            (d.describe() + ("" if d.available else " (in use)"), d.serial)
            for d in message.devices
            if d.serial is not None
        ]
        select.set_options(options)
        if not message.devices:
            self._status_box("No YubiKey is attached. Plug one in, then press s to rescan.")
            return
        self.serial = options[0][1] if options else None
        if options:
            select.value = options[0][1]
        self.action_info()

    @on(Select.Changed, "#device")
    def _device_chosen(self, event: Select.Changed) -> None:
        value = event.value
        if isinstance(value, int) and value != self.serial:
            self.serial = value
            self.action_info()

    def _status_box(self, text: str) -> None:
        self.query_one("#piv-info", Static).update(text)

    def yubikey(self) -> YubiKeyPiv:
        """The chosen YubiKey (the only one attached when none is chosen)."""
        return self.context.open().yubikey(self.serial)

    def action_info(self) -> None:
        self.load_info()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load_info(self) -> None:
        from airseal.appliance.errors import YubiKeyError

        try:
            info = self.yubikey().info()
        except YubiKeyError as error:
            self.post_message(self.Failed(error.diagnostics()))
            return
        self.post_message(self.Info(info))

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self._status_box(message.text)

    @on(Info)
    def _info(self, message: Info) -> None:
        info = message.info
        self._status_box(info_text(info))
        table = self.query_one(DataTable)
        table.clear()
        self.slot_rows = []
        for slot in info.slots:
            self.slot_rows.append(slot.slot)
            table.add_row(
                slot.slot,
                slot.algorithm or "certificate only",
                slot.pin_policy or "?",
                slot.touch_policy or "?",
                slot.origin or "?",
                (slot.public_key_fingerprint or "")[:16],
                slot.certificate_subject or "-",
                key=slot.slot,
            )
        self.query_one("#piv-status", Label).update(
            "No keys in any slot: press g to generate one."
            if not info.slots
            else "a attests the selected slot, k registers it as a signing key."
        )

    def selected_slot(self) -> str:
        table = self.query_one(DataTable)
        if self.slot_rows and table.row_count:
            return self.slot_rows[table.cursor_row]
        return "9c"

    # -- secrets ----------------------------------------------------------------------------

    def _pin(self) -> str:
        return token_pin(self.prompter, "YubiKey PIV PIN")

    def _management_key(self) -> str:
        return self.prompter.secret("YubiKey PIV management key (hex)")

    @on(Done)
    def _done(self, message: Done) -> None:
        self.notify(message.text, title="YubiKey")
        self.action_info()

    # -- generate / register / attest -------------------------------------------------------

    def action_generate(self) -> None:
        def check(values: dict[str, str]) -> str | None:
            if values["name"]:
                try:
                    Appliance.check_key_name(values["name"])
                except UsageError as error:
                    return error.diagnostics()
            return None

        def answered(values: dict[str, str] | None) -> None:
            if values:
                self.generate(values)

        self.app.push_screen(
            FormDialog(
                "Generate a key on the YubiKey",
                [
                    FormField("slot", "Slot", "9c", options=SLOTS),
                    FormField(
                        "algorithm",
                        "Algorithm",
                        "ecdsa-p256",
                        options=tuple((a, a) for a in ALGORITHMS),
                    ),
                    FormField("pin_policy", "PIN policy", "default", options=PIN_POLICY),
                    FormField("touch_policy", "Touch policy", "default", options=TOUCH_POLICY),
                    FormField("name", "Register as", placeholder="key name (optional)"),
                ],
                submit_label="Generate",
                note="Replaces any key in the slot. A self-signed certificate is written to the "
                "slot. The PIN (and the management key, unless default or PIN-protected) are "
                "asked next.",
                validate=check,
            ),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="task")
    def generate(self, values: dict[str, str]) -> None:
        generated = self.yubikey().generate_key(
            pin=self._pin,
            slot=values["slot"],
            algorithm=values["algorithm"],
            pin_policy=values["pin_policy"],
            touch_policy=values["touch_policy"],
            management_key=self._management_key,
            notice=self.prompter.notice,
        )
        ref = generated.ref
        text = (
            f"Generated {generated.algorithm} key in slot {ref.slot} of {ref.describe()}; "
            f"PIN policy {generated.pin_policy}, touch policy {generated.touch_policy}; "
            f"key SHA-256 {key_fingerprint(ref.public_key)[:16]}…"
        )
        if values["name"]:
            with self.context.open() as appliance:
                appliance.register_piv_key(values["name"], ref)
            text += f"; registered as {values['name']}"
        self.post_message(self.Done(text))

    def action_register(self) -> None:
        slot = self.selected_slot()

        def check(values: dict[str, str]) -> str | None:
            try:
                Appliance.check_key_name(values["name"])
            except UsageError as error:
                return error.diagnostics()
            return None

        def answered(values: dict[str, str] | None) -> None:
            if values:
                self.register(values["name"], values["slot"])

        self.app.push_screen(
            FormDialog(
                "Register a slot as a signing key",
                [
                    FormField("name", "Name", required=True),
                    FormField(
                        "slot",
                        "Slot",
                        slot if slot in dict(SLOTS).values() else "9c",
                        options=SLOTS,
                    ),
                ],
                submit_label="Register",
                note="Signing with it asks for the PIN (and a touch) as the slot's policy says.",
                validate=check,
            ),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="task")
    def register(self, name: str, slot: str) -> None:
        with self.context.open() as appliance:
            record = appliance.register_piv_slot(name, serial=self.serial, slot=slot)
        self.post_message(
            self.Done(f"Registered slot {slot} as key {record.name} ({record.fingerprint[:16]}…)")
        )

    def action_attest(self) -> None:
        self.attest(self.selected_slot())

    @work(thread=True, exclusive=True, exit_on_error=False, group="task")
    def attest(self, slot: str) -> None:
        yubikey = self.yubikey()
        verified = yubikey.verify_attested(yubikey.attestation(slot))
        names = [common_name(c.subject) for c in verified.chain]
        self.post_message(self.Attested(attestation_text(verified, names)))

    @on(Attested)
    def _attested(self, message: Attested) -> None:
        self.app.push_screen(TextDialog("Attestation verified", message.text, wide=True))

    # -- PIN, PUK, management key, reset ----------------------------------------------------

    def action_change_pin(self) -> None:
        self.change_secret("pin")

    def action_change_puk(self) -> None:
        self.change_secret("puk")

    def action_unblock_pin(self) -> None:
        self.change_secret("unblock")

    @work(thread=True, exclusive=True, exit_on_error=False, group="task")
    def change_secret(self, which: str) -> None:
        ask = self.prompter.secret
        if which == "pin":
            old = ask("Current PIN")
            new = ask("New PIN (6-8 characters)", confirm=True)
            self.yubikey().set_pin(old, new)
            self.post_message(self.Done("PIN changed."))
        elif which == "puk":
            old = ask("Current PUK")
            new = ask("New PUK (6-8 characters)", confirm=True)
            self.yubikey().set_puk(old, new)
            self.post_message(self.Done("PUK changed."))
        else:
            puk = ask("PUK")
            new = ask("New PIN (6-8 characters)", confirm=True)
            self.yubikey().unblock_pin(puk, new)
            self.post_message(self.Done("PIN set; its tries are reset."))

    def action_management_key(self) -> None:
        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.random_management_key()

        self.app.push_screen(
            ConfirmDialog(
                "Random management key",
                "Replace the management key with a random one, stored on the YubiKey and "
                "protected by the PIN (as ykman --generate --protect). It is never shown.",
                confirm_label="Replace",
            ),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="task")
    def random_management_key(self) -> None:
        change = self.yubikey().set_management_key(
            pin=self._pin,
            random=True,
            management_key=self._management_key,
            notice=self.prompter.notice,
        )
        self.post_message(
            self.Done(
                f"Management key set ({change.algorithm}), stored on the "
                "YubiKey, protected by the PIN."
            )
        )

    def action_reset(self) -> None:
        which = f"YubiKey {self.serial}" if self.serial is not None else "the YubiKey"

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.reset()

        self.app.push_screen(
            ConfirmDialog(
                "Reset the PIV application",
                f"This erases every PIV key and certificate on {which} and sets the PIN, PUK "
                "and management key to their defaults. Keys registered from it stop working. "
                "It cannot be undone.",
                confirm_label="Erase",
                typed_word=RESET_WORD,
                danger=True,
            ),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="task")
    def reset(self) -> None:
        self.yubikey().reset(confirm=True)
        self.post_message(
            self.Done(
                "PIV application reset: PIN 123456, PUK 12345678, default "
                "management key. Change them now (p, u, m)."
            )
        )
