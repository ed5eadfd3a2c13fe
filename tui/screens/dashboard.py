"""The dashboard: keys, files, actions, exports, receipts and the audit chain at a glance, and
what needs attention. Every tile and every warning opens the screen that deals with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.widgets import Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from airseal.tui.formatting import day, until, when
from airseal.tui.screens.base import AirsealScreen
from airseal.tui.widgets.nav import NavBar
from airseal.tui.widgets.tiles import Tile

if TYPE_CHECKING:
    from airseal.appliance.service.records import DashboardSummary

TOPIC_SCREENS: dict[str, str] = {}
SEVERITY_MARK = {"error": "✖", "warning": "▲", "info": "•"}


class DashboardScreen(AirsealScreen):
    AUTO_FOCUS = "#tile-keys"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh", tooltip="Read the appliance again"),
        Binding("i", "init_home", "Initialise home", tooltip="Create the appliance home"),
        Binding("c", "settings", "Site configuration", tooltip="intake, export, action settings"),
    ]

    @dataclass
    class Loaded(Message):
        summary: DashboardSummary

    @dataclass
    class HomeMissing(Message):
        root: str
        text: str

    def __init__(self) -> None:
        super().__init__(id="dashboard")
        self.home_missing = False
        self._load_queued = False

    def compose(self) -> ComposeResult:
        yield NavBar("dashboard")
        with Vertical(id="dashboard-body"):
            yield Label("Reading the appliance…", id="dashboard-status")
            with Grid(id="tiles"):
                yield Tile("keys", "Keys & tokens", "2")
                yield Tile("files", "Files", "3")
                yield Tile("actions", "Actions", "4")
                yield Tile("export", "Last export", "5")
                yield Tile("receipts", "Receipts", "7")
                yield Tile("audit", "Audit chain", "8")
            yield Static("Needs attention", classes="section-title")
            yield OptionList(id="attention")
        yield Footer()


    def on_screen_resume(self) -> None:
        # after the frame: the reading thread (which imports the database layer on the first
        # visit) would otherwise share the interpreter with the first paint and delay it.
        # Once: Textual resumes a screen twice on the first visit of its mode; the second read
        # superseded the first (cancelled, yet run to the end all the same: a thread), so the
        # database was read twice while the dashboard was first drawn.
        if not self._load_queued:
            self._load_queued = True
            self.call_after_refresh(self._load_after_frame)

    def _load_after_frame(self) -> None:
        self._load_queued = False
        self.load()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "init_home":
            return self.home_missing
        return super().check_action(action, parameters)

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load(self) -> None:
        from airseal.appliance.errors import HomeError

        try:
            with self.context.open() as appliance:
                summary = appliance.dashboard()
        except HomeError as error:
            self.post_message(self.HomeMissing(str(self.context.root), error.diagnostics()))
            return
        self.post_message(self.Loaded(summary))

    @on(HomeMissing)
    def _home_missing(self, message: HomeMissing) -> None:
        self.airseal.warm_up()
        self.home_missing = True
        self.refresh_bindings()
        self.query_one("#dashboard-status", Label).update(
            f"No appliance home at {message.root}. Press i to initialise one here "
            "(or set AIRSEAL_HOME)."
        )

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.airseal.warm_up()
        self.home_missing = False
        self.refresh_bindings()
        s = message.summary
        self.query_one("#dashboard-status", Label).update(
            f"Appliance {s.appliance_id[:12]} · {when(s.now)} UTC"
        )
        self._tiles(s)
        attention = self.query_one("#attention", OptionList)
        attention.clear_options()
        if not s.attention:
            attention.add_option(Option("Nothing needs attention.", id="none", disabled=True))
        for index, note in enumerate(s.attention):
            attention.add_option(
                Option(f"{SEVERITY_MARK[note.severity]} {note.text}", id=f"{index}:{note.topic}")
            )

    def _tiles(self, s: DashboardSummary) -> None:
        tile = {t.mode: t for t in self.query(Tile)}
        backends = ", ".join(f"{n} {b}" for b, n in sorted(s.keys.by_backend.items())) or "none"
        names = ", ".join(s.keys.names[:4]) + ("…" if len(s.keys.names) > 4 else "")
        tile["keys"].show(
            f"{s.keys.total} key{'s' if s.keys.total != 1 else ''}",
            [backends, f"{s.keys.tokens} hardware token(s)", names or "generate or import one"],
            "ok" if s.keys.total else "warning",
        )
        tile["files"].show(
            f"{s.files_total} stored",
            [f"{s.files_unverified} without a vendor signature"],
            "warning" if s.files_unverified else "ok",
        )
        a = s.actions
        expiry = f"next expiry {day(a.next_expiry)}" if a.next_expiry else "no current action"
        tile["actions"].show(
            f"{a.current} current",
            [
                f"{a.expiring_soon} expiring soon, {a.expired} expired",
                f"{a.revoked} revoked",
                expiry,
            ],
            "warning" if a.expired or a.expiring_soon else "ok",
        )
        last = s.last_export
        if last is None:
            tile["export"].show("none yet", [f"{s.exports_total} exports"], "idle")
        else:
            expired = last.expires <= s.now
            tile["export"].show(
                f"#{last.sequence} {day(last.created)}",
                [
                    f"{last.actions} action(s) to {last.target}",
                    f"{'expired' if expired else 'expires'} {until(last.expires, s.now)}",
                    f"signed by {last.key_name}",
                ],
                "warning" if expired else "ok",
            )
        if s.receipts_waiting is None:
            tile["receipts"].show("-", ["receipts are not tracked yet"], "idle")
        else:
            tile["receipts"].show(
                f"{s.receipts_waiting} waiting",
                ["export(s) with no receipt back yet"],
                "warning" if s.receipts_waiting else "ok",
            )
        tile["audit"].show(
            "intact" if s.audit.ok else "BROKEN",
            [f"{s.audit.entries} entries", f"head {s.audit.head[:16]}"]
            + ([] if s.audit.ok else [f"{s.audit.problems} problem(s)"]),
            "ok" if s.audit.ok else "error",
        )

    @on(Tile.Opened)
    async def _open_tile(self, message: Tile.Opened) -> None:
        await self.airseal.action_goto(message.mode)

    @on(OptionList.OptionSelected, "#attention")
    async def _open_topic(self, event: OptionList.OptionSelected) -> None:
        topic = (event.option.id or "").partition(":")[2]
        if topic == "settings":
            self.action_settings()
        elif topic == "site":  # a screen under Keys, opened as the palette opens it
            from airseal.tui.commands import PaletteCommand

            await self.airseal.run_palette_command(
                PaletteCommand("Site trust", "", "keys", ("site_trust",))
            )
        elif topic:
            await self.airseal.action_goto(TOPIC_SCREENS.get(topic, topic))

    def action_settings(self) -> None:
        from airseal.tui.screens.settings import SettingsScreen

        self.app.push_screen(SettingsScreen())

    def action_init_home(self) -> None:
        from airseal.tui.widgets.dialogs import ConfirmDialog

        root = self.context.root
        if not self.home_missing:
            self.notify(f"The appliance home in {root} exists already.", title="Nothing to do")
            return

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.initialise()

        self.app.push_screen(
            ConfirmDialog(
                "Initialise the appliance home",
                f"Create a new appliance home in {root}?\n"
                "It holds the database, the encrypted keys and the file store (mode 0700).",
                confirm_label="Initialise",
            ),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="task")
    def initialise(self) -> None:
        with self.context.open() as appliance:
            appliance.init()
        self.app.call_from_thread(self.load)
