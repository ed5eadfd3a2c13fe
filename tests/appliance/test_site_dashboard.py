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


def test_actions_awaiting_approval_count_trusted_distributors_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Awaiting approval: fewer distinct distributor keys trusted for actions than the policy's
    action threshold. A retired distributor's signature no longer counts; nor does a key that is
    no distributor; the dashboard names each such action."""
    from airseal.appliance.actions import ActionSpec
    from airseal.appliance.dashboard import summarize
    from airseal.appliance.intake import VendorSignature

    monkeypatch.setenv("COSIGN_PASSWORD", "pw")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    clock = [now]
    with Appliance(tmp_path / "a", Prompter(), ApplianceOptions(clock=lambda: clock[0])) as app:
        app.init()
        for name in ("R", "A", "B", "C", "outsider"):
            app.generate_file_key(name)
        payload = tmp_path / "tool.conf"
        payload.write_bytes(b"x = 1\n")
        app.add_file(payload, VendorSignature())

        def action(key: str) -> str:
            return app.create_action(ActionSpec(
                name="(Config)Tool", os="linux", mode="download", file=str(payload),
                dest="/etc/tool.conf"), key).id

        first = action("A")
        assert app.actions_awaiting_approval() == []  # no site repository: no policy
        app.site_init(root_keys=["R"], root_threshold=1, targets_keys=["R"],
                      targets_threshold=1, online_key="R")
        for key in ("A", "B", "C"):
            assert app.distributor_add(key, name=f"Dist {key}", may_sign=["actions"]).published
        assert app.actions_awaiting_approval() == []  # threshold 1, signed by A
        assert app.distributor_set_threshold(2).published
        [waiting] = app.actions_awaiting_approval()
        assert (waiting.action_id, waiting.count, waiting.approved_by, waiting.approvers) == (
            first, "1 of 2", ("Dist A",), ("B", "C"))
        assert waiting.to_json()["approvedBy"] == ["Dist A"]
        app.approve_action(first, "outsider")  # a signature, but from no distributor
        assert app.actions_awaiting_approval()[0].count == "1 of 2"
        app.approve_action(first, "B")
        assert app.actions_awaiting_approval() == []
        notes = [a.text for a in summarize(app.home, app.db, now=clock[0]).attention
                 if a.topic == "actions"]
        assert notes == []

        clock[0] = now + timedelta(minutes=1)
        assert app.distributor_retire("B").published  # B's approval stops counting
        [again] = app.actions_awaiting_approval()
        assert (again.count, again.approvers) == ("1 of 2", ("C",))
        notes = [a.text for a in summarize(app.home, app.db, now=clock[0]).attention
                 if a.topic == "actions"]
        assert notes == [f"action {first} (Config)Tool has 1 of 2 approvals: endpoints refuse "
                         "it until another distributor approves"]
