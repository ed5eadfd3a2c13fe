"""Issue 13, item 8 in the TUI: the actions table and the export picker show signed names that
could deceive escaped, and the actions screen warns about them."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Label, SelectionList

from airseal.appliance import actions as action_service
from airseal.appliance.db import open_database
from airseal.appliance.home import open_home
from airseal.tui.screens.actions import ActionsScreen
from airseal.tui.screens.export import ExportScreen
from tests.tui.conftest import (
    COSIGN_KEY_PASSWORD,
    NOW,
    FixedPrompter,
    build_site,
    make_app,
    wait_for,
    wait_for_screen,
)

SPOOFED = "(Install)p\u0430ypal\u202etxt.sh"
SHOWN = "(Install)p\\u0430ypal\\u202etxt.sh"


async def test_deceptive_names_are_shown_escaped_with_a_warning(tmp_path: Path) -> None:
    root = tmp_path / "home"
    site = build_site(root, tmp_path / "usb")
    db = open_database(open_home(root))
    spoofed = action_service.create_action(
        open_home(root),
        db,
        action_service.ActionSpec(name=SPOOFED, os="linux", mode="download",
                                  file=site["file"].sha256, dest=str(tmp_path / "x.sh")),
        "site-ops",
        FixedPrompter(COSIGN_KEY_PASSWORD),
        now=NOW,
    )
    db.close()
    app = make_app(root)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("4")
        screen = await wait_for_screen(pilot, ActionsScreen)
        await wait_for(pilot, lambda: len(screen.shown) == 3)
        row = screen.query_one(DataTable).get_row(spoofed.id)
        assert SHOWN in row and SPOOFED not in row
        status = str(screen.query_one("#actions-status", Label).render())
        assert "WARNING: 1 action(s)" in status and "shown escaped" in status
        await pilot.press("5")
        export = await wait_for_screen(pilot, ExportScreen)
        picker = export.query_one("#export-actions", SelectionList)
        await wait_for(pilot, lambda: picker.option_count == 3)
        prompts = [str(picker.get_option_at_index(i).prompt) for i in range(3)]
        assert any(SHOWN in p for p in prompts) and not any("\u202e" in p for p in prompts)
