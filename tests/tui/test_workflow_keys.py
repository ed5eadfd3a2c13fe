"""Keys through the UI: generate and import file keys, export a public key, with the password
typed into the masked dialog and checked against the database and the key files."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Input, Select

from airseal.appliance.db import open_database
from airseal.appliance.home import open_home
from airseal.appliance.keystore import get_key, list_keys, open_signer
from airseal.tui.screens.keys import KeysScreen
from airseal.tui.widgets.dialogs import FormDialog, SecretDialog
from tests.tui.conftest import (
    COSIGN_KEY,
    COSIGN_KEY_PASSWORD,
    FixedPrompter,
    answer_secret,
    make_app,
    screen_text,
    settle,
    type_text,
    wait_for,
    wait_for_screen,
)

SECRET = "tui-Secret-9f3b"


async def test_generate_a_file_key(empty_home: Path) -> None:
    app = make_app(empty_home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        screen = await wait_for_screen(pilot, KeysScreen)
        await settle(pilot)
        await pilot.press("g")
        form = await wait_for_screen(pilot, FormDialog)
        await type_text(pilot, "release-2026")
        form.query_one("#field-algorithm", Select).value = "ecdsa-p384"
        await pilot.press("enter")
        dialog = await wait_for_screen(pilot, SecretDialog)
        assert dialog.confirm
        await type_text(pilot, SECRET)
        # the typed secret is on no screen, not even masked input renders it
        assert SECRET not in screen_text(app)
        await pilot.press("enter")
        await type_text(pilot, SECRET)
        assert SECRET not in screen_text(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.records.get("release-2026") is not None)
        table = screen.query_one(DataTable)
        assert table.get_row("release-2026")[:3] == ["release-2026", "file", "ecdsa-p384"]
        assert SECRET not in screen_text(app)
    home = open_home(empty_home)
    db = open_database(home)
    record = get_key(db, "release-2026")
    assert record.backend == "file" and record.algorithm == "ecdsa-p384"
    key_file = home.keys_dir / "release-2026.key"
    assert b"ENCRYPTED SIGSTORE PRIVATE KEY" in key_file.read_bytes()
    assert SECRET.encode() not in key_file.read_bytes()
    with open_signer(home, record, FixedPrompter(SECRET)) as signer:  # the typed password opens it
        assert signer.sign_digest(b"\0" * 32)


async def test_bad_name_and_mismatched_confirmation_are_refused_inline(empty_home: Path) -> None:
    app = make_app(empty_home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await wait_for_screen(pilot, KeysScreen)
        await pilot.press("g")
        form = await wait_for_screen(pilot, FormDialog)
        await type_text(pilot, "bad name!")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is form  # the service's name rule, shown in the form
        assert "is not allowed" in str(form.query_one("#form-error").render())
        form.query_one("#field-name", Input).value = "k1"
        await pilot.press("enter")
        dialog = await wait_for_screen(pilot, SecretDialog)
        await type_text(pilot, "first-Secret")
        await pilot.press("enter")
        await type_text(pilot, "other-Secret")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog
        assert "differ" in str(dialog.query_one("#secret-error").render())
        assert dialog.query_one("#secret", Input).value == ""
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, SecretDialog)
    db = open_database(open_home(empty_home))
    assert list_keys(db) == []


async def test_import_a_key_file_and_export_its_public_key(empty_home: Path, tmp_path: Path
                                                           ) -> None:
    app = make_app(empty_home)
    out = tmp_path / "out"
    out.mkdir()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        screen = await wait_for_screen(pilot, KeysScreen)
        await pilot.press("i")
        await wait_for_screen(pilot, FormDialog)
        await type_text(pilot, "vendor")
        await pilot.press("tab")
        await type_text(pilot, str(COSIGN_KEY))
        await pilot.press("enter")
        await answer_secret(pilot, COSIGN_KEY_PASSWORD, confirm=False)
        await wait_for(pilot, lambda: "vendor" in screen.records)
        await pilot.press("x")
        form = await wait_for_screen(pilot, FormDialog)
        form.query_one("#field-path", Input).value = str(out)
        await pilot.press("enter")
        await wait_for(pilot, lambda: (out / "vendor.pub").exists())
        await settle(pilot)
    expected = (COSIGN_KEY.parent / "cosign_pemsigstorekey.pub").read_text()
    assert (out / "vendor.pub").read_text().strip() == expected.strip()
