"""Hardware keys through the UI: a software YubiKey (the tests' PIV card, answering yubikit's
APDUs) and a real SoftHSM2 token; PINs typed into masked dialogs, results checked on the card,
the token and in the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Select, Static

from airseal.appliance.db import open_database
from airseal.appliance.home import open_home
from airseal.appliance.keystore import get_key
from airseal.appliance.piv_attestation import TrustAnchors
from airseal.appliance.signers.piv import YubiKeyDevice
from airseal.tui.screens.keys import KeysScreen
from airseal.tui.screens.piv import PivScreen
from airseal.tui.screens.tokens import TokensScreen
from airseal.tui.widgets.dialogs import ConfirmDialog, ErrorDialog, FormDialog, TextDialog
from tests.realparts.soft_piv import SoftPivCard, SoftPivConnection, TestAttestationCA
from tests.realparts.softhsm import USER_PIN, SoftHsm
from tests.tui.conftest import (
    answer_secret,
    make_app,
    screen_text,
    settle,
    type_text,
    wait_for,
    wait_for_screen,
)

DEFAULT_PIN = "123456"


@pytest.fixture(scope="module")
def attestation_ca() -> TestAttestationCA:
    return TestAttestationCA.generate()


@pytest.fixture
def card(attestation_ca: TestAttestationCA) -> SoftPivCard:
    return SoftPivCard(attestation_ca)


def piv_app(root: Path, card: SoftPivCard, ca: TestAttestationCA):
    device = YubiKeyDevice("Yubico YubiKey OTP+FIDO+CCID (software card)", card.serial,
                           "5.7.4", "Keychain (USB-A)")
    return make_app(
        root,
        yubikey_factory=lambda serial: (lambda: SoftPivConnection(card)),
        yubikey_lister=lambda: [device],
        attestation_anchors=TrustAnchors((ca.root_cert,), name="the test attestation CA"),
    )


async def open_piv(pilot) -> PivScreen:
    await pilot.press("2")
    await wait_for_screen(pilot, KeysScreen)
    await pilot.press("y")
    screen = await wait_for_screen(pilot, PivScreen)
    info = screen.query_one("#piv-info", Static)
    await wait_for(pilot, lambda: "firmware" in str(info.render()))
    return screen


async def test_yubikey_generate_register_attest_change_pin_reset(
    empty_home: Path, card: SoftPivCard, attestation_ca: TestAttestationCA
) -> None:
    app = piv_app(empty_home, card, attestation_ca)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_piv(pilot)
        assert f"YubiKey serial  {card.serial}" in str(screen.query_one("#piv-info").render())
        assert "PIN is the factory default" in str(screen.query_one("#piv-info").render())

        # generate in 9c with policies, registered under a name; the PIN goes to the card
        await pilot.press("g")
        form = await wait_for_screen(pilot, FormDialog)
        form.query_one("#field-pin_policy", Select).value = "always"
        form.query_one("#field-touch_policy", Select).value = "cached"
        form.query_one("#field-name", Input).value = "yk-release"
        await pilot.press("ctrl+s")
        await answer_secret(pilot, DEFAULT_PIN, confirm=False)
        slots = screen.query_one(DataTable)
        await wait_for(pilot, lambda: slots.row_count == 1)
        assert slots.get_row("9c")[:5] == ["9c", "ecdsa-p256", "always", "cached", "generated"]
        assert card.touches_requested >= 1  # the cached touch policy asked for a touch

        # the same slot registered again under a second name, through the register dialog
        await pilot.press("k")
        form = await wait_for_screen(pilot, FormDialog)
        form.query_one("#field-name", Input).value = "yk-second"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: _has_key(empty_home, "yk-second"))
        await settle(pilot)

        # attestation, verified to the (test) root, with the chain shown
        await pilot.press("a")
        shown = await wait_for_screen(pilot, TextDialog)
        assert "Attestation verified to" in shown.body
        assert f"YubiKey serial:  {card.serial}" in shown.body
        assert "Touch policy:    cached" in shown.body
        assert "Airseal TEST PIV Root CA" in shown.body
        await pilot.press("escape")

        # a wrong PIN: the error dialog says what the CLI says, tries left included
        await pilot.press("p")
        await answer_secret(pilot, "999999", confirm=False)
        await answer_secret(pilot, "24681357", confirm=True)
        error = await wait_for_screen(pilot, ErrorDialog)
        assert error.error_title == "Wrong PIN"
        assert error.body.startswith("wrong pin: wrong PIN: 2 tries left")
        assert "hint: retype the YubiKey's PIV PIN" in error.body
        await pilot.press("escape")

        await pilot.press("p")
        await answer_secret(pilot, DEFAULT_PIN, confirm=False)
        await answer_secret(pilot, "24681357", confirm=True)
        await wait_for(pilot, lambda: card.pin.value == "24681357")
        shown_text = screen_text(app)
        assert "24681357" not in shown_text and "999999" not in shown_text
        assert "PIN is the factory default" not in shown_text  # the info was read again
        await settle(pilot)

        # reset needs the typed confirmation
        await pilot.press("R")
        confirm = await wait_for_screen(pilot, ConfirmDialog)
        await type_text(pilot, "reset")
        await pilot.press("enter")
        assert app.screen is confirm  # not the word: refused
        confirm.query_one("#confirm-word", Input).value = "RESET"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not card.slots.get(0x9C) and card.pin.value == DEFAULT_PIN)
        await settle(pilot)
    db = open_database(open_home(empty_home))
    record = get_key(db, "yk-release")
    assert record.backend == "piv"
    assert record.reference == {"serial": card.serial, "slot": "9c"}
    second = get_key(db, "yk-second")
    assert second.reference == record.reference and second.fingerprint == record.fingerprint


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SoftHsm:
    hsm = SoftHsm(tmp_path / "softhsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(hsm.conf))
    monkeypatch.setenv("AIRSEAL_PKCS11_MODULE", hsm.module_path)
    hsm.init_token("airseal-tui")
    hsm.activate()
    return hsm


async def test_pkcs11_token_listed_and_key_generated(empty_home: Path, softhsm: SoftHsm) -> None:
    token = softhsm.tokens[0]
    app = make_app(empty_home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await wait_for_screen(pilot, KeysScreen)
        await pilot.press("t")
        screen = await wait_for_screen(pilot, TokensScreen)
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: any(r[1] == "airseal-tui" for r in _rows(table)))
        table.move_cursor(row=[r[1] for r in _rows(table)].index("airseal-tui"))
        await pilot.press("g")
        form = await wait_for_screen(pilot, FormDialog)
        form.query_one("#field-name", Input).value = "hsm-release"
        await pilot.press("ctrl+s")
        await answer_secret(pilot, USER_PIN, confirm=False)
        await wait_for(pilot, lambda: _has_key(empty_home, "hsm-release"))
        assert USER_PIN not in screen_text(app)
        await settle(pilot)

        # a key the token already holds, registered by its label
        table.move_cursor(row=[r[1] for r in _rows(table)].index("airseal-tui"))
        await pilot.press("k")
        form = await wait_for_screen(pilot, FormDialog)
        form.query_one("#field-name", Input).value = "hsm-registered"
        form.query_one("#field-label", Input).value = "hsm-release"
        await pilot.press("ctrl+s")
        await answer_secret(pilot, USER_PIN, confirm=False)
        await wait_for(pilot, lambda: _has_key(empty_home, "hsm-registered"))
        await settle(pilot)
    db = open_database(open_home(empty_home))
    record = get_key(db, "hsm-release")
    assert record.backend == "pkcs11" and record.algorithm == "ecdsa-p256"
    assert record.reference["token_serial"] == token.serial
    assert record.reference["key_label"] == "hsm-release"
    registered = get_key(db, "hsm-registered")
    assert registered.fingerprint == record.fingerprint
    assert registered.reference["key_label"] == "hsm-release"


def _rows(table: DataTable) -> list[list[object]]:
    return [table.get_row_at(i) for i in range(table.row_count)]


def _has_key(root: Path, name: str) -> bool:
    db = open_database(open_home(root))
    try:
        return db.execute("SELECT 1 FROM keys WHERE name = ?", [name]).fetchone() is not None
    finally:
        db.close()
