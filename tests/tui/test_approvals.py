"""The two-person rule on the Actions screen: a site policy asking two distributor signatures per
action, an action signed by Distributor A shown as "awaits 1 of 2", the approve dialog offering
only the keys whose signature would count, and Distributor B's approval (its password typed into
the masked dialog) completing it. Pictured at 80x24. The dashboard lists it, and a pending
site signing event, under Needs attention; the latter opens the Site trust screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from textual.widgets import OptionList, Select

from airseal.appliance.actions import ActionSpec
from airseal.appliance.intake import VendorSignature
from airseal.appliance.service import Appliance, ApplianceOptions
from airseal.errors import UsageError
from airseal.trustroot.bundle import parse_bundle
from airseal.tui.screens.actions import ActionsScreen
from airseal.tui.screens.site import SiteTrustScreen
from airseal.tui.widgets.dialogs import FormDialog
from tests.tui.conftest import (
    NOW,
    answer_secret,
    make_app,
    screen_text,
    settle,
    wait_for,
    wait_for_screen,
)
from tests.tui.test_snapshots import Tour

SMALL = (80, 24)
PASSWORDS = {"site": "site-pw", "dist-a": "a-pw", "dist-b": "b-pw"}


class Keys:
    """Answers each key's password (building the fixture through the services)."""

    def __init__(self) -> None:
        self.key = "site"

    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        return PASSWORDS[self.key]

    def notice(self, message: str) -> None:
        pass


def text(app: object) -> str:
    return " ".join(screen_text(app).split())  # type: ignore[arg-type]


@pytest.fixture
def tour(snapshot: SnapshotAssertion) -> Tour:
    return Tour(snapshot)


@pytest.fixture
def two_person_site(tmp_path: Path, stable: None) -> tuple[Path, str, str]:
    """Distributors A and B, action threshold 2; one action signed by A alone (awaiting) and one
    approved by both. Returns (home, awaiting id, approved id)."""
    home = tmp_path / "home"
    keys = Keys()
    with Appliance(home, keys, ApplianceOptions(clock=lambda: NOW)) as appliance:
        appliance.init()
        for name in PASSWORDS:
            keys.key = name
            appliance.generate_file_key(name)
        keys.key = "site"
        assert all(o.published for o in appliance.site_init(
            root_keys=["site"], root_threshold=1, targets_keys=["site"], targets_threshold=1,
            online_key="site"))
        assert appliance.distributor_add("dist-a", name="Distributor A",
                                         may_sign=["actions"]).published
        assert appliance.distributor_add("dist-b", name="Distributor B",
                                         may_sign=["actions"]).published
        assert appliance.distributor_set_threshold(2).published
        payload = tmp_path / "tool.conf"
        payload.write_bytes(b"setting = 1\n")
        appliance.add_file(payload, VendorSignature())
        ids = []
        for name in ("(Config)Tool", "(Config)Other"):
            keys.key = "dist-a"
            ids.append(appliance.create_action(ActionSpec(
                name=name, os="linux", mode="download", file=str(payload),
                dest="/etc/tool.conf", file_mode="0644"), "dist-a").id)
        keys.key = "dist-b"
        appliance.approve_action(ids[1], "dist-b")
        [awaiting] = appliance.actions_awaiting_approval()
        assert (awaiting.action_id, awaiting.count, awaiting.approved_by, awaiting.approvers) == (
            ids[0], "1 of 2", ("Distributor A",), ("dist-b",))
        with pytest.raises(UsageError, match="already signed"):  # the same key counts once
            appliance.approve_action(ids[0], "dist-a")
    return home, ids[0], ids[1]


async def test_actions_awaiting_approval_are_shown_and_approved(
    two_person_site: tuple[Path, str, str], tour: Tour
) -> None:
    home, waiting, done = two_person_site
    app = make_app(home)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("4")
        screen = await wait_for_screen(pilot, ActionsScreen)
        await wait_for(pilot, lambda: waiting in screen.awaiting)
        assert set(screen.awaiting) == {waiting} and done in [r.id for r in screen.shown]
        assert f"{waiting} awaits approval (1 of 2)" in text(app)
        assert "Approve" in text(app)  # the footer offers it while something awaits
        await tour.picture(pilot, "actions_awaiting")
        table = screen.query_one("#actions-table")
        row = [r.id for r in screen.shown].index(waiting)
        table.move_cursor(row=row)
        await pilot.press("a")
        dialog = await wait_for_screen(pilot, FormDialog)
        select = dialog.query_one("#field-key", Select)
        assert select.value == "dist-b"  # A signed already; the site key is no distributor
        assert "1 of 2 approvals (signed by Distributor A)" in text(app)
        await tour.picture(pilot, "approve_dialog")
        await pilot.press("ctrl+s")
        await answer_secret(pilot, PASSWORDS["dist-b"], confirm=False)
        await wait_for_screen(pilot, ActionsScreen)
        await wait_for(pilot, lambda: not screen.awaiting)
        await settle(pilot)
        assert "awaits" not in text(app) and "Approve" not in text(app)
    assert not app.internal_errors
    tour.check()
    with Appliance(home, Keys(), ApplianceOptions(clock=lambda: NOW)) as appliance:
        assert appliance.actions_awaiting_approval() == []
        bundle = parse_bundle(appliance.get_action(waiting).bundle.encode())
        assert bundle.dsse_envelope is not None and len(bundle.dsse_envelope.signatures) == 2
        audit = [(e.action, e.subject) for e in appliance.audit_entries(limit=50)]
        assert ("action.approve", waiting) in audit


async def test_dashboard_lists_approvals_and_opens_site_trust_for_a_pending_event(
    two_person_site: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, waiting, done = two_person_site
    keys = Keys()
    with Appliance(home, keys, ApplianceOptions(clock=lambda: NOW)) as appliance:
        monkeypatch.setattr(keys, "secret", _refuse)
        assert not appliance.distributor_retire("dist-a").published  # the holder is away
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        shown = text(app)
        assert f"action {waiting} (Config)Tool has 1 of 2 approvals" in shown
        assert done not in shown
        attention = app.screen.query_one("#attention", OptionList)
        index = next(i for i in range(attention.option_count)
                     if "targets signing event waits" in str(attention.get_option_at_index(i)
                                                              .prompt))
        attention.focus()
        attention.highlighted = index
        await pilot.press("enter")
        await wait_for_screen(pilot, SiteTrustScreen)
        await wait_for(pilot, lambda: "Pending: targets" in text(app))
    assert not app.internal_errors


def _refuse(prompt: str, *, confirm: bool = False) -> Any:
    raise UsageError(f"{prompt}: not here")
