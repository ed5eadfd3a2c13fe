"""The command palette reaches every screen and every operator action; the help lists every
key; and a palette command really runs its action on its screen."""

from __future__ import annotations

import importlib
from pathlib import Path

from textual.binding import Binding
from textual.command import CommandPalette

from airseal.tui.commands import PALETTE
from airseal.tui.navigation import PLACES
from airseal.tui.screens.help import key_table
from airseal.tui.screens.keys import KeysScreen
from airseal.tui.widgets.dialogs import FormDialog
from tests.tui.conftest import make_app, settle, type_text, wait_for, wait_for_screen

# (mode, actions that lead there from the main screen, screen module and class)
SUB_SCREENS = (
    ("keys", ("tokens",), "airseal.tui.screens.tokens", "TokensScreen"),
    ("keys", ("piv",), "airseal.tui.screens.piv", "PivScreen"),
    ("keys", ("site_trust",), "airseal.tui.screens.site", "SiteTrustScreen"),
    ("files", ("sign_blob",), "airseal.tui.screens.sign_blob", "SignBlobScreen"),
    ("dashboard", ("settings",), "airseal.tui.screens.settings", "SettingsScreen"),
)
NOT_IN_PALETTE = {"refresh", "back", "cancel", "save", "sign"}
"""Keys that only make sense on the screen itself (reload, leave, the form's own buttons)."""


def _actions(module: str, name: str) -> list[str]:
    cls = getattr(importlib.import_module(module), name)
    return [
        b.action for b in cls.BINDINGS
        if isinstance(b, Binding) and b.action not in NOT_IN_PALETTE
    ]


def test_every_screen_and_action_is_in_the_palette() -> None:
    reachable = {(c.mode, c.actions) for c in PALETTE}
    missing = []
    for place in PLACES:
        if (place.mode, ()) not in reachable:
            missing.append(f"go to {place.mode}")
        for action in _actions(place.module, place.screen):
            if (place.mode, (action,)) not in reachable:
                missing.append(f"{place.mode}: {action}")
    for mode, path, module, name in SUB_SCREENS:
        if (mode, path) not in reachable:
            missing.append(f"{mode}: {'/'.join(path)}")
        for action in _actions(module, name):
            if (mode, (*path, action)) not in reachable:
                missing.append(f"{mode}: {'/'.join((*path, action))}")
    assert not missing
    assert len({c.title for c in PALETTE}) == len(PALETTE)  # titles tell commands apart


def test_help_lists_every_key() -> None:
    rows = key_table()
    described = {(screen, keys) for screen, keys, _does in rows}
    assert ("Everywhere", "ctrl+p") in described
    for place in PLACES:
        assert ("Everywhere", place.key) in described
    assert ("Export", "x") in described and ("YubiKey PIV", "R") in described
    assert all(does for _screen, _keys, does in rows)


async def test_a_palette_command_opens_its_screen_and_runs_its_action(empty_home: Path) -> None:
    app = make_app(empty_home)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await wait_for_screen(pilot, CommandPalette)
        await type_text(pilot, "Generate a file key")
        await wait_for(pilot, lambda: "Generate a file key" in str(
            app.screen.query_one("CommandList").get_option_at_index(0).prompt
        ))
        await pilot.press("enter")
        form = await wait_for_screen(pilot, FormDialog)
        assert form.form_title == "Generate a file key"
        assert isinstance(app.screen_stack[-2], KeysScreen)
