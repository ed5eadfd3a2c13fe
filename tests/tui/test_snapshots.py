"""Every screen and dialog pinned at 120x40 with pytest-textual-snapshot.

The data is the same small appliance each time (see ``build_site`` in conftest: a fixed key, a
fixed payload, fixed clock, ids and mount table, at a fixed path), so the pictures change only
when the UI does. Update them with ``pytest tests/tui --snapshot-update`` after checking the
change (the SVGs open in a browser).

A screen with one picture uses ``snap_compare``. A screen with several dialogs is one *tour*:
the app is started once and each dialog pictured in turn (:class:`Tour`, the same SVG extension
and files as ``snap_compare``, one file per picture), because starting the app and reaching the
screen again for every dialog would double the time of this module.
"""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_textual_snapshot import SVGImageExtension
from syrupy.assertion import SnapshotAssertion
from textual.widgets import Input, Select

from airseal.appliance.piv_attestation import TrustAnchors
from airseal.appliance.signers.piv import YubiKeyDevice
from airseal.tui.commands import PALETTE
from airseal.tui.screens.action_form import ActionFormScreen
from airseal.tui.screens.actions import ActionsScreen
from airseal.tui.screens.files import FilesScreen
from airseal.tui.screens.keys import KeysScreen
from airseal.tui.screens.media_check import MediaCheckScreen
from airseal.tui.screens.piv import PivScreen
from airseal.tui.widgets.dialogs import (
    ConfirmDialog,
    ErrorDialog,
    FormDialog,
    SecretDialog,
    TextDialog,
)
from tests.realparts.soft_piv import SoftPivCard, SoftPivConnection, TestAttestationCA
from tests.tui.conftest import (
    COSIGN_KEY,
    COSIGN_KEY_PASSWORD,
    PAYLOAD,
    SNAPSHOT_ROOT,
    TERMINAL,
    answer_secret,
    enrol_agents,
    make_app,
    settle,
    type_text,
    wait_for,
    wait_for_screen,
)

Steps = Callable[[Any], Awaitable[None]]


def _steady_cursors(app: Any) -> None:
    """A blinking cursor is drawn or not depending on timing: stop it (hidden) for the picture."""
    for screen in app.screen_stack:
        for widget in screen.query("Input, TextArea"):
            widget.cursor_blink = False


def snap(
    snap_compare: Any, app: Any, steps: Steps | None = None, size: tuple[int, int] = TERMINAL
) -> bool:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        if steps is not None:
            await steps(pilot)
        await settle(pilot)
        _steady_cursors(pilot.app)
        await pilot.pause()

    return bool(snap_compare(app, terminal_size=size, run_before=run_before))


class Tour:
    """Several pictures from one run of the app, each compared with its own snapshot file.

    The app runs under ``run_test``, which shows no notifications: a toast's presence would
    depend on how long the steps took, so the pictures leave them out."""

    def __init__(self, snapshot: SnapshotAssertion) -> None:
        self.snapshot = snapshot.use_extension(SVGImageExtension)
        self.mismatched: list[str] = []

    async def picture(self, pilot: Any, name: str) -> None:
        """Compare what the terminal shows now with the snapshot ``name`` (as snap_compare
        takes it: settled, animations done, cursors steady)."""
        await settle(pilot)
        _steady_cursors(pilot.app)
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        svg = pilot.app.export_screenshot(title=pilot.app.title, simplify=True)
        if self.snapshot(name=name) != svg:
            self.mismatched.append(name)

    def check(self) -> None:
        assert not self.mismatched, f"pictures differ from their snapshots: {self.mismatched}"


@pytest.fixture
def tour(snapshot: SnapshotAssertion) -> Tour:
    return Tour(snapshot)


def go(key: str, *then: str) -> Steps:
    async def steps(pilot: Any) -> None:
        await pilot.press(key)
        await settle(pilot)
        if then:
            await pilot.press(*then)
            await settle(pilot)

    return steps


# --- dashboard, help, palette --------------------------------------------------------------


async def dashboard_shown(pilot: Any) -> None:
    """The dashboard reads the appliance after its first frame: wait for what it read."""
    await wait_for(
        pilot, lambda: "Appliance " in str(pilot.app.screen.query_one("#dashboard-status").render())
    )


def test_dashboard(snap_compare: Any, snapshot_site: dict) -> None:
    assert snap(snap_compare, make_app(snapshot_site["root"]), dashboard_shown)


async def test_dashboard_without_a_home(tour: Tour, stable: None) -> None:
    app = make_app(SNAPSHOT_ROOT / "not-initialised")
    async with app.run_test(size=TERMINAL) as pilot:
        await wait_for(pilot, lambda: app.screen.home_missing)
        await tour.picture(pilot, "dashboard_without_a_home")
        await pilot.press("i")
        await wait_for_screen(pilot, ConfirmDialog)
        await tour.picture(pilot, "initialise_confirmation")
    tour.check()


def test_help(snap_compare: Any, snapshot_site: dict) -> None:
    assert snap(snap_compare, make_app(snapshot_site["root"]), go("question_mark"))


def test_command_palette(snap_compare: Any, snapshot_site: dict) -> None:
    async def steps(pilot: Any) -> None:
        from textual.command import CommandPalette
        from textual.widgets import OptionList

        await pilot.press("ctrl+p")
        palette = await wait_for_screen(pilot, CommandPalette)
        await type_text(pilot, "yubikey")
        options = palette.query_one(OptionList)
        expected = sum("yubikey" in command.title.lower() for command in PALETTE)
        await wait_for(pilot, lambda: options.option_count == expected)

    assert snap(snap_compare, make_app(snapshot_site["root"]), steps)


# --- keys ----------------------------------------------------------------------------------


async def test_keys_screen_and_dialogs(
    tour: Tour, snapshot_site: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(SNAPSHOT_ROOT)  # the public key's default destination is the working folder
    key_copy = SNAPSHOT_ROOT / "incoming" / COSIGN_KEY.name  # its path shows in a message
    shutil.copyfile(COSIGN_KEY, key_copy)
    app = make_app(snapshot_site["root"])
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot)
        await pilot.press("2")
        screen = await wait_for_screen(pilot, KeysScreen)
        await wait_for(pilot, lambda: "site-ops" in screen.records)
        await tour.picture(pilot, "keys")

        await pilot.press("enter")
        await wait_for_screen(pilot, TextDialog)
        await tour.picture(pilot, "key_details")
        await pilot.press("escape")

        await pilot.press("x")
        await wait_for_screen(pilot, FormDialog)
        await tour.picture(pilot, "export_public_key_form")
        await pilot.press("escape")

        await pilot.press("g")
        await wait_for_screen(pilot, FormDialog)
        await type_text(pilot, "release-2026")
        await tour.picture(pilot, "generate_key_form")
        await pilot.press("enter")
        await wait_for_screen(pilot, SecretDialog)
        await type_text(pilot, "not-shown-anywhere")
        await tour.picture(pilot, "secret_dialog_is_masked")
        await pilot.press("escape")
        await wait_for_screen(pilot, KeysScreen)
        await settle(pilot)

        await pilot.press("i")
        form = await wait_for_screen(pilot, FormDialog)
        form.query_one("#field-name", Input).value = "second"
        form.query_one("#field-path", Input).value = str(key_copy)
        await tour.picture(pilot, "import_key_form")
        await pilot.press("ctrl+s")
        await answer_secret(pilot, "wrong-password", confirm=False)
        await wait_for_screen(pilot, ErrorDialog)
        await tour.picture(pilot, "wrong_password_error")
    tour.check()


def test_tokens_without_a_module(
    snap_compare: Any, snapshot_site: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("airseal.appliance.hardware_keys.COMMON_MODULES", ())
    monkeypatch.delenv("AIRSEAL_PKCS11_MODULE", raising=False)
    assert snap(snap_compare, make_app(snapshot_site["root"]), go("2", "t"))


@pytest.fixture
def soft_yubikey() -> dict[str, Any]:
    ca = TestAttestationCA.generate()
    card = SoftPivCard(ca)
    device = YubiKeyDevice("Yubico YubiKey OTP+FIDO+CCID (software card)", card.serial,
                           "5.7.4", "Keychain (USB-A)")
    return {
        "yubikey_factory": lambda serial: (lambda: SoftPivConnection(card)),
        "yubikey_lister": lambda: [device],
        "attestation_anchors": TrustAnchors((ca.root_cert,), name="test CA"),
    }


async def test_yubikey_screen_and_dialogs(
    tour: Tour, snapshot_site: dict, soft_yubikey: dict
) -> None:
    app = make_app(snapshot_site["root"], **soft_yubikey)
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot)
        await go("2", "y")(pilot)
        screen = await wait_for_screen(pilot, PivScreen)
        await wait_for(pilot, lambda: "firmware" in str(screen.query_one("#piv-info").render()))
        await tour.picture(pilot, "yubikey_piv")

        await pilot.press("g")
        form = await wait_for_screen(pilot, FormDialog)
        form.query_one("#field-touch_policy", Select).value = "always"
        await tour.picture(pilot, "generate_form")
        await pilot.press("escape")

        await pilot.press("k")
        await wait_for_screen(pilot, FormDialog)
        await type_text(pilot, "yk-release")
        await tour.picture(pilot, "register_form")
        await pilot.press("escape")

        await pilot.press("m")
        await wait_for_screen(pilot, ConfirmDialog)
        await tour.picture(pilot, "management_key_confirmation")
        await pilot.press("escape")

        await pilot.press("R")
        await wait_for_screen(pilot, ConfirmDialog)
        await type_text(pilot, "RES")
        await tour.picture(pilot, "reset_confirmation")
    tour.check()


# --- files ---------------------------------------------------------------------------------


async def test_files_screen(tour: Tour, snapshot_site: dict) -> None:
    tampered = SNAPSHOT_ROOT / "incoming" / "tampered.sh"
    tampered.write_bytes(PAYLOAD + b"echo evil\n")
    app = make_app(snapshot_site["root"])
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot)
        await pilot.press("3")
        screen = await wait_for_screen(pilot, FilesScreen)
        await tour.picture(pilot, "files")

        screen.query_one("#method", Select).value = "keyless"
        await tour.picture(pilot, "keyless_form")

        screen.query_one("#method", Select).value = "signature"
        await settle(pilot)
        screen.query_one("#path", Input).value = str(tampered)
        screen.query_one("#signature", Input).value = str(snapshot_site["signature"])
        screen.query_one("#key", Input).value = "site-ops"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: screen.query_one("#add-result").display)
        await tour.picture(pilot, "refused")
    tour.check()


# --- actions -------------------------------------------------------------------------------


async def test_actions_screen_and_form(tour: Tour, snapshot_site: dict) -> None:
    app = make_app(snapshot_site["root"])
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot)
        await pilot.press("4")
        screen = await wait_for_screen(pilot, ActionsScreen)
        await wait_for(pilot, lambda: len(screen.shown) == 2)
        await tour.picture(pilot, "actions")

        await pilot.press("enter")
        await wait_for_screen(pilot, TextDialog)
        await tour.picture(pilot, "action_details")
        await pilot.press("escape")

        await pilot.press("d")
        await wait_for_screen(pilot, FormDialog)
        await tour.picture(pilot, "revoke_dialog")
        await pilot.press("escape")

        await pilot.press("down", "e")
        await wait_for_screen(pilot, ActionFormScreen)
        await tour.picture(pilot, "edit_form")
        await pilot.press("escape")

        await wait_for_screen(pilot, ActionsScreen)
        await pilot.press("n")
        form = await wait_for_screen(pilot, ActionFormScreen)
        await tour.picture(pilot, "new_form")
        await type_text(pilot, "Install agent")
        form.query_one("#f-mode", Select).value = "download"
        form.query_one("#f-dest", Input).value = "/opt/agent.sh"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: form.query_one("#err-name").display)
        await tour.picture(pilot, "form_inline_error")
    tour.check()


# --- export, media check, receipts, audit --------------------------------------------------


async def test_export_screen(tour: Tour, snapshot_site: dict) -> None:
    app = make_app(snapshot_site["root"])
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        screen = pilot.app.screen
        capacity = screen.query_one("#capacity")
        # the detected USB stick is chosen for the operator
        await wait_for(pilot, lambda: "fits" in str(capacity.render()))
        await tour.picture(pilot, "export")

        await pilot.press("x")
        await answer_secret(pilot, COSIGN_KEY_PASSWORD, confirm=False)
        result = screen.query_one("#export-result")
        await wait_for(pilot, lambda: "Media COMPLETE" in str(result.render()))
        await tour.picture(pilot, "exported")
    tour.check()


async def test_media_check_screen(tour: Tour, snapshot_site: dict) -> None:
    media = Path(snapshot_site["media"]) / "airseal"
    app = make_app(snapshot_site["root"])
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot)
        await pilot.press("6")
        screen = await wait_for_screen(pilot, MediaCheckScreen)
        await settle(pilot)
        result = screen.query_one("#check-result")
        await pilot.press("enter")  # in the path field, filled with the detected USB stick
        await wait_for(pilot, lambda: "Media COMPLETE" in str(result.render()))
        await tour.picture(pilot, "complete")

        bundle = next(media.glob("actions/*/action.sigstore.json"))
        bundle.write_bytes(bundle.read_bytes()[:-40])
        (media / "unlisted.txt").write_text("not in the statement\n")
        await pilot.press("escape", "c")  # out of the field, c checks
        await wait_for(pilot, lambda: "Media DAMAGED" in str(result.render()))
        await tour.picture(pilot, "damaged")
    tour.check()


def test_receipts(snap_compare: Any, snapshot_site: dict) -> None:
    enrol_agents(snapshot_site["root"])

    async def steps(pilot: Any) -> None:
        await go("7")(pilot)
        await pilot.press("i")
        screen = pilot.app.screen
        await wait_for(pilot, lambda: screen.query_one("#import-result").display)

    assert snap(snap_compare, make_app(snapshot_site["root"]), steps)


def test_audit(snap_compare: Any, snapshot_site: dict) -> None:
    assert snap(snap_compare, make_app(snapshot_site["root"]), go("8"))


async def test_keys_screen_is_reachable_from_the_dashboard_tile(snapshot_site: dict) -> None:
    """Not a picture: the tile shortcut (Enter on the focused tile) opens its screen."""
    app = make_app(snapshot_site["root"])
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await wait_for_screen(pilot, KeysScreen)


# --- 80x24: everything usable in the smallest terminal --------------------------------------

SMALL = (80, 24)


async def test_small_terminal(tour: Tour, snapshot_site: dict) -> None:
    """Every tab and "Needs attention" on the dashboard, the action form with its footer and
    buttons, the action details with their Close button, the new screens, at 80x24."""
    from airseal.tui.screens.settings import SettingsScreen
    from airseal.tui.screens.sign_blob import SignBlobScreen

    app = make_app(snapshot_site["root"])
    async with app.run_test(size=SMALL) as pilot:
        await dashboard_shown(pilot)
        await tour.picture(pilot, "dashboard_80x24")

        await pilot.press("c")
        await wait_for(pilot, lambda: bool(pilot.app.screen.query("#settings-rows Select")))
        assert isinstance(pilot.app.screen, SettingsScreen)
        await tour.picture(pilot, "settings_80x24")
        await pilot.press("escape")

        await pilot.press("4")
        screen = await wait_for_screen(pilot, ActionsScreen)
        await wait_for(pilot, lambda: len(screen.shown) == 2)
        await pilot.press("enter")
        await wait_for_screen(pilot, TextDialog)
        await tour.picture(pilot, "action_details_80x24")
        await pilot.press("escape")
        await wait_for_screen(pilot, ActionsScreen)
        await pilot.press("n")
        await wait_for_screen(pilot, ActionFormScreen)
        await tour.picture(pilot, "new_form_80x24")
        await pilot.press("escape")

        await wait_for_screen(pilot, ActionsScreen)
        await pilot.press("5")
        await settle(pilot)
        capacity = pilot.app.screen.query_one("#capacity")
        await wait_for(pilot, lambda: "fits" in str(capacity.render()))
        await tour.picture(pilot, "export_80x24")

        enrol_agents(snapshot_site["root"])  # here: it is audited at the real time of day
        await pilot.press("7", "i")
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#import-result").display)
        await tour.picture(pilot, "receipts_80x24")

        await pilot.press("3")
        await wait_for_screen(pilot, FilesScreen)
        await pilot.press("ctrl+g")
        await wait_for_screen(pilot, SignBlobScreen)
        await tour.picture(pilot, "sign_blob_80x24")
    tour.check()
