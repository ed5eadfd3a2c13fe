"""The Site trust screen: roles, expiries, distributors and a pending root signing event, which
the ceremony completes with the second key holder's password typed into the masked dialog."""

from __future__ import annotations

from pathlib import Path

import pytest

from airseal.appliance.service import Appliance
from airseal.tui.screens.site import SiteTrustScreen
from tests.tui.conftest import (
    answer_secret,
    make_app,
    screen_text,
    settle,
    wait_for,
    wait_for_screen,
)


def text(app: object) -> str:
    """The screen's words with runs of (non-breaking) spaces as one space."""
    return " ".join(screen_text(app).split())  # type: ignore[arg-type]


class Fixed:
    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        raise AssertionError(f"unexpected question: {prompt}")

    def notice(self, message: str) -> None:
        pass


async def test_site_trust_screen_runs_the_ceremony(
    empty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Appliance(empty_home, Fixed()) as appliance:
        for name, password in (("K1", "one-pw"), ("K2", "two-pw"), ("K3", "two-pw")):
            monkeypatch.setenv("COSIGN_PASSWORD", password)
            appliance.generate_file_key(name)
        monkeypatch.setenv("COSIGN_PASSWORD", "one-pw")
        outcomes = appliance.site_init(root_keys=["K1", "K2", "K3"], root_threshold=2,
                                       targets_keys=["K1"], targets_threshold=1,
                                       online_key="K1")
        assert [o.published for o in outcomes] == [False, True]
    monkeypatch.delenv("COSIGN_PASSWORD")
    app = make_app(empty_home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("s")
        await wait_for_screen(pilot, SiteTrustScreen)
        await wait_for(pilot, lambda: "Pending: root v1" in text(app))
        assert "Ceremony" in text(app)
        await pilot.press("s")
        await answer_secret(pilot, "two-pw", confirm=False)  # the second root key holder
        await answer_secret(pilot, "one-pw", confirm=False)  # the online key: new timestamp
        await wait_for(pilot, lambda: "No signing event is pending" in text(app))
        shown = text(app)
        assert "root v1 2 of 3 (K1, K2, K3)" in shown
        assert "timestamp v1" in shown and "day(s) left" in shown
    assert not app.internal_errors
    with Appliance(empty_home, Fixed()) as appliance:
        assert appliance.site_status().pending == []
