"""The dashboard warns before site TUF roles expire (a pure function of the data and the clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airseal.appliance.service import Appliance, ApplianceOptions


class Prompter:
    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        return "pw"

    def notice(self, message: str) -> None:
        pass


def test_site_expiry_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", "pw")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    clock = [now]
    with Appliance(tmp_path / "a", Prompter(), ApplianceOptions(clock=lambda: clock[0])) as app:
        app.init()
        for name in ("R", "O"):
            app.generate_file_key(name)
        app.site_init(root_keys=["R"], root_threshold=1, targets_keys=["R"],
                      targets_threshold=1, online_key="O")
        from airseal.appliance.dashboard import summarize

        def site_notes(at: datetime) -> list[str]:
            return [a.text for a in summarize(app.home, app.db, now=at).attention
                    if a.topic == "site"]

        assert site_notes(now) == []
        soon = site_notes(now + timedelta(days=28))
        assert any("site timestamp expires in 2 day(s)" in n for n in soon), soon
        late = site_notes(now + timedelta(days=160))
        assert any("site targets expires in" in n and "key holders" in n for n in late), late
        assert any("site timestamp expired" in n for n in late), late
