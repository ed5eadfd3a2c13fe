"""Receipts: import what agents wrote back onto the media (verified: signed by the key the agent
is enrolled with, export known), then per action how many agents succeeded, failed or skipped it,
and per agent when it was last heard from. Receipts of agents not enrolled are shown apart and
never counted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Input, ProgressBar, Static

from airseal.tui.formatting import when
from airseal.tui.screens.base import AirsealScreen
from airseal.tui.widgets.media_picker import MediaPicker
from airseal.tui.widgets.nav import NavBar
from airseal.tui.widgets.outcome_bar import LEGEND, outcome_bar, tally
from airseal.tui.widgets.tables import fill_table


def import_text(report: Any) -> str:
    """The import report, worded as the CLI words it."""
    return "\n".join(report.lines())


def _short(export_id: str | None) -> str:
    """Export ids are 32 hex digits; the first 12 tell them apart on one appliance."""
    if not export_id:
        return "-"
    return export_id if len(export_id) <= 13 else export_id[:12] + "…"


class ReceiptsScreen(AirsealScreen):
    AUTO_FOCUS = "#receipt-actions"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("i", "import_receipts", "Import from media"),
        Binding("p", "media_path", "Type the media path"),
        Binding("m", "rescan", "Rescan media"),
        Binding("r", "refresh", "Refresh"),
    ]

    @dataclass
    class Loaded(Message):
        listing: Any

    @dataclass
    class Imported(Message):
        report: Any

    def __init__(self) -> None:
        super().__init__(id="receipts")

    def compose(self) -> ComposeResult:
        yield NavBar("receipts")
        yield Static("Import receipts from media", classes="section-title")
        yield MediaPicker(self.context.detect_media, id="receipts-media")
        with Horizontal(classes="toolbar"):
            yield Button("Import receipts", variant="primary", id="do-import", compact=True)
            yield ProgressBar(id="import-progress", show_eta=False)
        yield Static("", id="import-result", classes="result", markup=False)
        yield Static(
            f"Per action (latest receipt of every agent): {LEGEND}",
            classes="section-title",
            markup=False,
        )
        yield DataTable(id="receipt-actions", cursor_type="row", zebra_stripes=True)
        yield Static("Per agent", classes="section-title")
        yield DataTable(id="receipt-agents", cursor_type="row", zebra_stripes=True)
        yield Static(
            "Unenrolled agents: receipts kept aside, not counted "
            "(enrol with `airseal agents enroll`)",
            classes="section-title",
            id="unenrolled-title",
        )
        yield DataTable(id="receipt-unenrolled", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#receipt-actions", DataTable).add_columns(
            "Action",
            "Ver",
            "Name",
            "Agents",
            "Succeeded",
            "Failed",
            "Skipped",
            "Outcomes",
        )
        self.query_one("#receipt-agents", DataTable).add_columns(
            "Agent",
            "Host",
            "OS",
            "Last ran (UTC)",
            "Heard from (UTC)",
            "Last export",
            "Status",
            "Receipts",
            "Failed actions",
        )
        self.query_one("#receipt-unenrolled", DataTable).add_columns(
            "Agent", "Host", "OS", "Key fingerprint", "Receipts", "Received (UTC)", "Warning"
        )
        self._show_unenrolled(False)
        self.query_one("#import-result").display = False
        self.query_one("#import-progress").display = False
        self.load()
        self.action_rescan()

    def on_screen_resume(self) -> None:
        self.load()

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load(self) -> None:
        with self.context.open() as appliance:
            listing = appliance.list_receipts()
        self.post_message(self.Loaded(listing))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        listing = message.listing
        table = self.query_one("#receipt-actions", DataTable)
        rows = []
        for action in listing.actions:
            ok, failed, skipped = tally(action["outcomes"])
            cells = (
                action["id"],
                str(action["version"]),
                action["name"] or "?",
                str(action["agents"]),
                str(ok),
                str(failed),
                str(skipped),
                outcome_bar(ok, failed, skipped),
            )
            rows.append((cells, f"{action['id']}:{action['version']}"))
        fill_table(table, rows)
        agents = self.query_one("#receipt-agents", DataTable)
        fill_table(
            agents,
            (
                (
                    (
                        agent["id"],
                        agent["hostname"],
                        agent["os"],
                        when(agent["last_finished"]),
                        when(agent["last_seen"]),
                        _short(agent["last_export"]),
                        agent["last_status"] or "-",
                        str(agent["receipts"]),
                        str(agent["failed_actions"]),
                    ),
                    agent["id"],
                )
                for agent in listing.agents
            ),
        )

        pending = self.query_one("#receipt-unenrolled", DataTable)
        fill_table(
            pending,
            (
                (
                    (
                        row["agent_id"],
                        row["hostname"],
                        row["os"],
                        row["key_fingerprint"][:16] + "…",
                        str(row["receipts"]),
                        when(row["last_received"]),
                        f"{row['keys_for_id']} keys claim this id"
                        if row["keys_for_id"] > 1
                        else "",
                    ),
                    f"{row['agent_id']}:{row['key_fingerprint']}",
                )
                for row in listing.unenrolled
            ),
        )
        self._show_unenrolled(bool(listing.unenrolled))

    def _show_unenrolled(self, shown: bool) -> None:
        self.query_one("#unenrolled-title").display = shown
        self.query_one("#receipt-unenrolled").display = shown

    def action_media_path(self) -> None:
        self.query_one(MediaPicker).focus_path()

    def action_rescan(self) -> None:
        self.query_one(MediaPicker).rescan()

    @on(Button.Pressed, "#do-import")
    @on(Input.Submitted, "#media-path")
    def action_import_receipts(self) -> None:
        picker = self.query_one(MediaPicker)
        target = picker.folder()
        if target is None:
            self._result(f"{picker.path or 'Nothing'} is not a folder: choose the media.", ok=False)
            return
        self.query_one("#do-import", Button).disabled = True
        bar = self.query_one("#import-progress", ProgressBar)
        bar.update(total=None, progress=0)  # each receipt is verified in turn: no total known
        bar.display = True
        self.import_from(target)

    @work(thread=True, exclusive=True, exit_on_error=False, group="import")
    def import_from(self, mount: Path) -> None:
        with self.context.open() as appliance:
            report = appliance.import_receipts(mount)
        self.post_message(self.Imported(report))

    @on(Imported)
    def _imported(self, message: Imported) -> None:
        report = message.report
        self._result(import_text(report), ok=report.ok)
        self.load()

    def worker_done(self, name: str) -> None:
        if name == "import_from":
            self.query_one("#do-import", Button).disabled = False
            self.query_one("#import-progress").display = False

    def _result(self, text: str, *, ok: bool) -> None:
        box = self.query_one("#import-result", Static)
        box.border_title = "Imported" if ok else "Some receipts were refused"
        box.set_classes("result -ok" if ok else "result -failed")
        box.update(text)
        box.display = True
