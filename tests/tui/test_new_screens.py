"""Sign a file and site configuration in the terminal UI, the palette finding them, the password
dialog asking again and the session's unlocked key, and what the action screens show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.command import CommandPalette
from textual.widgets import Input

from airseal.appliance.cli.actions import action_create
from airseal.appliance.service import Appliance
from airseal.tui.screens.action_form import ALL_FIELDS, LABELS
from airseal.tui.screens.actions import action_text
from airseal.tui.screens.files import FilesScreen
from airseal.tui.screens.settings import SettingsScreen, field_id
from airseal.tui.screens.sign_blob import SignBlobScreen
from airseal.tui.widgets.dialogs import SecretDialog
from airseal.tui.widgets.outcome_bar import LEGEND, outcome_bar
from tests.tui.conftest import (
    COSIGN_KEY_PASSWORD,
    NOW,
    answer_secret,
    make_app,
    settle,
    type_text,
    wait_for,
    wait_for_screen,
)


async def palette_titles(pilot: Any, query: str) -> list[str]:
    await pilot.press("ctrl+p")
    palette = await wait_for_screen(pilot, CommandPalette)
    await type_text(pilot, query)
    options = palette.query_one("CommandList")
    await wait_for(pilot, lambda: options.option_count > 0)
    await settle(pilot)
    titles = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
    await pilot.press("escape")
    return titles


async def test_the_palette_finds_sign_and_configuration(snapshot_site: dict) -> None:
    app = make_app(snapshot_site["root"])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert any("Sign a file" in t for t in await palette_titles(pilot, "sign"))
        assert any("Site configuration" in t for t in await palette_titles(pilot, "conf"))


async def test_sign_a_file_asks_again_then_keeps_the_key_unlocked(
    snapshot_site: dict, tmp_path: Path
) -> None:
    blob = tmp_path / "release.tar"
    blob.write_bytes(b"release contents\n" * 100)
    app = make_app(snapshot_site["root"])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await wait_for_screen(pilot, FilesScreen)
        await pilot.press("ctrl+g")
        screen = await wait_for_screen(pilot, SignBlobScreen)
        await settle(pilot)
        assert app.focused is screen.query_one("#blob-path")
        await type_text(pilot, str(blob))
        await pilot.press("enter")  # Enter in the path field signs
        await answer_secret(pilot, "not the password", confirm=False)
        dialog = await wait_for_screen(pilot, SecretDialog)  # asked again, not failed
        assert "did not unlock" in dialog.prompt and "COSIGN_PASSWORD" not in dialog.prompt
        await answer_secret(pilot, COSIGN_KEY_PASSWORD, confirm=False)
        result = screen.query_one("#sign-result")
        await wait_for(pilot, lambda: "Signed release.tar" in str(result.render()))
        signature = blob.with_name("release.tar.sig")
        bundle = blob.with_name("release.tar.sigstore.json")
        with Appliance(snapshot_site["root"]) as appliance:
            key, _ = appliance.verification_key("site-ops")
            appliance.verify_blob(blob, key, signature_path=signature)
            appliance.verify_blob(blob, key, bundle_path=bundle)
        assert app.context.unlocked_keys.names() == ["site-ops"]

        # the second signing of the session asks nothing
        signature.unlink()
        await pilot.press("enter")
        await wait_for(pilot, signature.exists)
        await settle(pilot)
        assert not isinstance(app.screen, SecretDialog)

        # locked: the next one asks again
        await pilot.press("ctrl+l")
        assert app.context.unlocked_keys.names() == []
        await pilot.press("enter")
        await wait_for_screen(pilot, SecretDialog)
        await pilot.press("escape")
        await settle(pilot)
        assert not app.internal_errors


async def test_site_configuration_saves_and_refuses_by_setting(snapshot_site: dict) -> None:
    root = snapshot_site["root"]
    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        screen = await wait_for_screen(pilot, SettingsScreen)
        await wait_for(pilot, lambda: bool(screen.settings))
        await settle(pilot)
        days = screen.query_one(f"#{field_id('export.valid-days')}", Input)
        days.focus()
        days.value = "30"
        await pilot.press("enter")  # Enter in a field saves
        await wait_for(
            pilot,
            lambda: "export.valid-days = 30" in str(screen.query_one("#settings-result").render()),
        )
        with Appliance(root) as appliance:
            assert appliance.settings()["export.valid-days"] == "30"

        action_days = screen.query_one(f"#{field_id('action.valid-days')}", Input)
        action_days.value = "0"
        await pilot.press("ctrl+s")
        error = screen.query_one(f"#err-{field_id('action.valid-days')}")
        await wait_for(pilot, lambda: "between 1 and 3650" in str(error.render()))
        assert app.focused is action_days
        with Appliance(root) as appliance:
            assert appliance.settings()["action.valid-days"] == "365"
            assert appliance.audit_entries(search="setting.set")[0].subject == "export.valid-days"


def test_the_form_labels_are_the_cli_flags() -> None:
    flags = {opt for p in action_create.params for opt in getattr(p, "opts", ())}
    for field in ALL_FIELDS:
        assert f"--{field}" in flags, field
    assert LABELS["mode"] == "Mode" and LABELS["file-mode"] == "File mode"
    assert LABELS["valid-days"] == "Valid days" and LABELS["os"] == "OS"


def test_the_action_details_read_as_labelled_sections(snapshot_site: dict) -> None:
    text = action_text(snapshot_site["download"], NOW)
    lines = text.splitlines()
    assert lines[0].startswith(f"Action {snapshot_site['download'].id}, version 1 (current)")
    assert (
        "  File mode    0755" in lines
        and "Download" in lines
        and "Conditions (all must hold)" in lines
    )
    assert "{" not in text and '"' not in text  # not JSON
    execute = action_text(snapshot_site["execute"], NOW)
    assert "  Args         --quiet" in execute.splitlines() and "  Host         ws-*" in execute


def test_the_receipts_legend_tells_outcomes_apart_without_colour() -> None:
    bar = outcome_bar(2, 1, 1, width=8).plain
    assert set(bar) == {"█", "✗", "░"}
    assert "✗ failed" in LEGEND and "█ succeeded" in LEGEND
