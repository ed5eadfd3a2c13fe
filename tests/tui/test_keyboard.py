"""The keyboard flows at 80x24 and 120x40: Enter in a path field acts, a screen's letter keys are
never typed into a field nor fire from one, every visit starts on the same widget, the media path
is one for the session, and keys typed faster than the screens open are not lost."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.keys import _character_to_key, _get_unicode_name_from_key
from textual.widgets import Input

from airseal.tui.navigation import PLACES
from airseal.tui.screens.action_form import ActionFormScreen
from airseal.tui.screens.actions import ActionsScreen
from airseal.tui.screens.export import ExportScreen
from airseal.tui.screens.files import FilesScreen
from airseal.tui.screens.media_check import MediaCheckScreen
from airseal.tui.screens.receipts import ReceiptsScreen
from airseal.tui.widgets.dialogs import SecretDialog
from airseal.tui.widgets.media_picker import MediaPicker
from tests.tui.conftest import (
    COSIGN_KEY_PASSWORD,
    answer_secret,
    enrol_agents,
    make_app,
    settle,
    wait_for,
    wait_for_screen,
)

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


def burst(app: Any, keys: list[str]) -> None:
    """Send ``keys`` the way a terminal delivers fast typing: all at once, without waiting for
    the app between them (Pilot's ``press`` waits for the app to go idle after every key)."""
    for key in keys:
        name = _character_to_key(key) if len(key) == 1 and not key.isalnum() else key
        try:
            char: str | None = unicodedata.lookup(_get_unicode_name_from_key(name))
        except KeyError:
            char = key if len(key) == 1 else None
        event = events.Key(name, char)
        event.set_sender(app)
        app._driver.send_message(event)


async def visit(pilot: Any, key: str, cls: type) -> Any:
    await pilot.press(key)
    screen = await wait_for_screen(pilot, cls)
    await settle(pilot)
    return screen


def field_value(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Input).value)


# --- Enter acts in a path field ------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_enter_in_the_media_path_exports_imports_and_checks(
    snapshot_site: dict, size: tuple[int, int]
) -> None:
    enrol_agents(snapshot_site["root"])
    app = make_app(snapshot_site["root"])
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        export = await visit(pilot, "5", ExportScreen)
        await pilot.press("p")  # the cursor into the path field (the detected stick is in it)
        assert app.focused is export.query_one("#media-path")
        await pilot.press("enter")
        await answer_secret(pilot, COSIGN_KEY_PASSWORD, confirm=False)
        result = export.query_one("#export-result")
        await wait_for(pilot, lambda: "Media COMPLETE" in str(result.render()))

        await pilot.press("escape")
        receipts = await visit(pilot, "7", ReceiptsScreen)
        await pilot.press("p", "enter")
        box = receipts.query_one("#import-result")
        await wait_for(pilot, lambda: box.display and "receipt(s)" in str(box.render()))

        await pilot.press("escape")
        check = await visit(pilot, "6", MediaCheckScreen)
        assert app.focused is check.query_one("#media-path")
        await pilot.press("enter")
        checked = check.query_one("#check-result")
        await wait_for(pilot, lambda: "Media COMPLETE" in str(checked.render()))
        assert not app.internal_errors


# --- letters in a field are text -----------------------------------------------------------

LETTER_KEYS = {  # screen key, screen, field, the screen's own letter keys (and app keys)
    "export": ("5", ExportScreen, "#media-path", "xpmar1q"),
    "receipts": ("7", ReceiptsScreen, "#media-path", "ipmr2q"),
    "files": ("3", FilesScreen, "#path", "r4q"),
    "actions": ("4", ActionsScreen, "#filter", "nedvr5q"),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("place", sorted(LETTER_KEYS))
async def test_letters_typed_in_a_field_stay_in_the_field(
    snapshot_site: dict, size: tuple[int, int], place: str
) -> None:
    key, cls, field, letters = LETTER_KEYS[place]
    app = make_app(snapshot_site["root"])
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        screen = await visit(pilot, key, cls)
        widget = screen.query_one(field, Input)
        widget.focus()
        await pilot.pause()
        widget.value = ""
        # the footer offers none of the screen's letter keys while the cursor is in the field
        offered = {b.binding.key for b in screen.active_bindings.values() if b.enabled}
        assert not offered & set(letters), offered & set(letters)
        await pilot.press(*letters)
        await settle(pilot)
        assert widget.value == letters  # every letter went into the field ...
        assert app.screen is screen and app.is_running  # ... and none acted
        assert not any(isinstance(s, SecretDialog) for s in app.screen_stack)
        # out of the field the keys work again
        await pilot.press("escape")
        offered = {b.binding.key for b in screen.active_bindings.values() if b.enabled}
        assert set(letters) - set("12345q") <= offered


# --- focus on every visit ------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_every_visit_starts_on_the_same_widget(
    snapshot_site: dict, size: tuple[int, int]
) -> None:
    app = make_app(snapshot_site["root"])
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        for round_ in range(2):
            for place in PLACES:
                await pilot.press("escape", place.key)
                await wait_for(pilot, lambda place=place: app.current_mode == place.mode)
                await settle(pilot)
                screen = app.screen
                home = screen.query(screen.AUTO_FOCUS).first()
                assert app.focused is home, (round_, place.mode, app.focused)
                # wander off: the next visit must not start where this one ended
                await pilot.press("tab", "tab")
                await settle(pilot)


@pytest.mark.parametrize("size", SIZES)
async def test_files_keeps_its_focus_after_adding_and_coming_back(
    snapshot_site: dict, size: tuple[int, int], tmp_path: Path
) -> None:
    """The case seen: Files lost the focus on return (after its button was pressed)."""
    new = tmp_path / "hello"
    new.write_bytes(b"hello\n")
    app = make_app(snapshot_site["root"])
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        files = await visit(pilot, "3", FilesScreen)
        assert app.focused is files.query_one("#path")
        files.query_one("#method").value = "none"
        files.query_one("#path", Input).value = str(new)
        files.query_one("#add").focus()  # the button pressed, as a mouse or Tab would do
        await pilot.press("enter")
        await wait_for(pilot, lambda: files.query_one("#add-result").display)
        await settle(pilot)
        await pilot.press("escape", "4")
        await wait_for_screen(pilot, ActionsScreen)
        await pilot.press("3")
        await wait_for_screen(pilot, FilesScreen)
        await settle(pilot)
        assert app.focused is files.query_one("#path")
        # the table shows whole cells, not cut to the header's width ("hell" for "hello")
        table = files.query_one("#files-table")
        widths = {str(c.label): c.get_render_width(table) for c in table.ordered_columns}
        assert widths["Name"] >= len("agent-installer.sh") + 2
        assert widths["SHA-256"] >= 17 + 2


# --- one media path ------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_one_media_path_for_export_check_and_receipts(
    snapshot_site: dict, size: tuple[int, int], tmp_path: Path
) -> None:
    app = make_app(snapshot_site["root"])
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        export = await visit(pilot, "5", ExportScreen)
        await pilot.press("p")
        export.query_one("#media-path", Input).value = str(tmp_path)
        await pilot.press("escape")
        for key, cls in (("6", MediaCheckScreen), ("7", ReceiptsScreen), ("5", ExportScreen)):
            screen = await visit(pilot, key, cls)
            assert screen.query_one(MediaPicker).path == str(tmp_path), cls.__name__
            await pilot.press("escape")


# --- fast typing in the action form --------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_a_tab_typed_while_the_form_opens_is_not_lost(
    snapshot_site: dict, size: tuple[int, int]
) -> None:
    """The case seen: "(Demo)Hello", Tab, "Says hi" typed as the form opened gave the name
    "(Demo)HelloSays hi" (the form's deferred focus call put the cursor back into the name)."""
    app = make_app(snapshot_site["root"])
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await visit(pilot, "4", ActionsScreen)
        burst(app, ["n", *"(Demo)Hello", "tab", *"Says hi"])
        form = await wait_for_screen(pilot, ActionFormScreen)
        await settle(pilot)
        await pilot.pause(0.2)
        assert field_value(form, "#f-name") == "(Demo)Hello"
        assert field_value(form, "#f-description") == "Says hi"
        # the footer (ctrl+s) and both buttons are on screen at this size
        assert form.query_one("Footer").region.height == 1
        assert form.query_one("#save").region.bottom <= size[1]


async def test_the_reused_new_action_form_opens_empty_every_time(snapshot_site: dict) -> None:
    """The new-action form is built once per session (it opens faster): whatever was typed,
    chosen or refused in one visit is gone in the next, and its choices are read again."""
    from textual.widgets import Label, Select

    app = make_app(snapshot_site["root"])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await visit(pilot, "4", ActionsScreen)
        form = await visit(pilot, "n", ActionFormScreen)
        keys = form.query_one("#f-key", Select).value
        assert keys != Select.NULL
        await pilot.press(*"half typed", "tab", *"desc")
        form.query_one("#f-mode", Select).value = "download"
        form.query_one("#f-key", Select).clear()
        await pilot.press("ctrl+s")  # refused: no key, no destination
        await settle(pilot)
        assert form.query_one("#err-key", Label).has_class("-shown")
        await pilot.press("escape")
        await wait_for_screen(pilot, ActionsScreen)
        again = await visit(pilot, "n", ActionFormScreen)
        assert again is form
        assert field_value(form, "#f-name") == "" and field_value(form, "#f-description") == ""
        assert form.query_one("#f-mode", Select).value == "execute"
        assert form.query_one("#download-options").display is False
        assert form.query_one("#f-key", Select).value == keys
        assert not form.query(".field-error.-shown")
        assert form.focused is form.query_one("#f-name", Input)


async def test_n_pressed_while_the_form_is_still_being_built_opens_it(snapshot_site: dict) -> None:
    """The form is built off screen after the Actions screen's first frame; an operator (or a
    loaded machine) can ask for it before that build is finished."""
    from airseal.tui.screens.action_form import new_action_form, prepare_new_action_form

    app = make_app(snapshot_site["root"])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        prepare_new_action_form(app)
        form = new_action_form(app)  # in the same tick: not composed yet
        assert not form.is_mounted
        await app.push_screen(form)
        await wait_for_screen(pilot, ActionFormScreen)
        await settle(pilot)
        assert app.screen is form and field_value(form, "#f-name") == ""
