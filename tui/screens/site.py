"""Site trust: the site TUF repository's roles, keys, thresholds and expiries, the distributors
of its policy, and the pending signing events with the ceremony's steps.

Everything comes from :class:`~airseal.appliance.service.Appliance` (``site_status``,
``site_sign``) in workers; key passwords and PINs are asked in the app's masked dialogs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Footer, Label, Static

from airseal.tui.screens.base import AirsealScreen
from airseal.tui.widgets.nav import NavBar

CEREMONY = (
    "Ceremony: plug in the next key holder's token or YubiKey (or have the key's password "
    "ready), press s to add its signature, repeat until the threshold is met. Key holders "
    "elsewhere: airseal site sign --media DIR, then airseal site import-signatures DIR."
)


def roles_text(status: Any) -> str:
    if not status.roles:
        return "The first root still waits for its signatures."
    lines = []
    for r in status.roles:
        days = r["expiresInDays"]
        left = f"expired {-days} day(s) ago" if days < 0 else f"{days} day(s) left"
        lines.append(f"{r['role']:<9} v{r['version']:<3} {r['threshold']} of {len(r['keys'])} "
                     f"({', '.join(r['keys'])})  expires {r['expires'][:10]}, {left}")
    return "\n".join(lines)


def pending_text(status: Any) -> str:
    if not status.pending:
        return "No signing event is pending."
    events = "; ".join(f"{p['role']} v{p['version']}: {p['signatures']} signature(s), needs "
                       f"{p['threshold']}" for p in status.pending)
    return f"Pending: {events}\n{CEREMONY}"


class SiteTrustScreen(AirsealScreen):
    AUTO_FOCUS = "#distributors"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sign_pending", "Sign pending events"),
        Binding("r", "refresh", "Refresh"),
        Binding("escape", "back", "Back to keys"),
    ]

    @dataclass
    class Loaded(Message):
        status: Any

    @dataclass
    class Signed(Message):
        outcomes: list[Any]

    def __init__(self) -> None:
        super().__init__(id="site-trust")

    def compose(self) -> ComposeResult:
        yield NavBar("keys")
        yield Static("Site trust", classes="section-title")
        yield Static("Reading the site repository…", id="site-roles", markup=False)
        yield Static("", id="site-pending", classes="hint", markup=False)
        yield DataTable(id="distributors", cursor_type="row", zebra_stripes=True)
        yield Label("", id="site-note", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("Distributor", "State", "May sign", "Fingerprint")
        self.load()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self.load()

    def action_sign_pending(self) -> None:
        self.query_one("#site-note", Label).update("Signing with the keys on hand…")
        self.sign()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load(self) -> None:
        with self.context.open() as appliance:
            status = appliance.site_status()
        self.post_message(self.Loaded(status))

    @work(thread=True, exclusive=True, exit_on_error=False, group="sign")
    def sign(self) -> None:
        with self.context.open(self.prompter) as appliance:
            outcomes = appliance.site_sign()
        self.post_message(self.Signed(outcomes))

    def worker_failed(self, name: str, error: BaseException) -> bool:
        from airseal.errors import AirsealError

        if isinstance(error, AirsealError):
            self.query_one("#site-roles", Static).update(error.diagnostics())
            self.query_one("#site-note", Label).update("")
            return True
        return False

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        status = message.status
        self.query_one("#site-roles", Static).update(roles_text(status))
        self.query_one("#site-pending", Static).update(pending_text(status))
        table = self.query_one(DataTable)
        table.clear()
        for d in status.distributors:
            state = "revoked" if d["revoked"] else d["status"]
            table.add_row(d["name"], state, ", ".join(d["maySign"]), d["fingerprint"][:32],
                          key=d["fingerprint"])
        self.query_one("#site-note", Label).update(
            f"Actions need {status.action_threshold} distinct distributor signature(s).")

    @on(Signed)
    def _signed(self, message: Signed) -> None:
        done = [o for o in message.outcomes if o.published]
        self.query_one("#site-note", Label).update(
            "\n".join(o.describe() for o in message.outcomes))
        if done:
            self.notify(f"{len(done)} change(s) took effect.")
        self.load()
