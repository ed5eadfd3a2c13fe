"""Audit: the hash-chained log of every operator action, verified end to end on every visit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Static

from airseal.tui.formatting import when
from airseal.tui.screens.base import AirsealScreen
from airseal.tui.widgets.nav import NavBar
from airseal.tui.widgets.tables import fill_table

LIMIT = 1000


def chain_text(report: Any) -> str:
    if report.ok:
        return f"Audit chain OK: {report.entries} entries, head {report.head[:16]}"
    lines = [f"audit: {p.problem}" for p in report.problems]
    lines.append(f"Audit chain BROKEN: {len(report.problems)} problem(s)")
    return "\n".join(lines)


class AuditScreen(AirsealScreen):
    AUTO_FOCUS = "#audit-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("v", "verify", "Verify chain"),
        Binding("slash", "filter", "Filter"),
        Binding("r", "refresh", "Refresh"),
    ]

    @dataclass
    class Loaded(Message):
        entries: list[Any]
        report: Any

    def __init__(self) -> None:
        super().__init__(id="audit")
        self._filter_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield NavBar("audit")
        yield Static("Verifying the audit chain…", id="chain", classes="result", markup=False)
        with Horizontal(classes="toolbar"):
            yield Input(
                placeholder="/ filter by action, subject, actor or details",
                id="audit-filter",
                compact=True,
            )
        yield DataTable(id="audit-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(
            "Seq", "Time (UTC)", "Actor", "Action", "Subject", "Details"
        )
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    def action_refresh(self) -> None:
        self.load()

    def action_verify(self) -> None:
        self.load()

    def action_filter(self) -> None:
        self.query_one("#audit-filter", Input).focus()

    @on(Input.Changed, "#audit-filter")
    def _filter_changed(self) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(0.25, self.load)

    @on(Input.Submitted, "#audit-filter")
    def _filter_done(self) -> None:
        self.query_one(DataTable).focus()

    def load(self) -> None:
        self.read_log(self.query_one("#audit-filter", Input).value.strip())

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def read_log(self, search: str) -> None:
        with self.context.open() as appliance:
            report = appliance.verify_audit()
            entries = appliance.audit_entries(limit=LIMIT, search=search or None)
        self.post_message(self.Loaded(entries, report))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        report = message.report
        chain = self.query_one("#chain", Static)
        chain.update(chain_text(report))
        chain.border_title = "Chain intact" if report.ok else "Chain BROKEN"
        chain.set_classes("result -ok" if report.ok else "result -failed")
        table = self.query_one(DataTable)
        fill_table(
            table,
            (
                (
                    (
                        str(e.seq),
                        when(e.ts),
                        e.actor,
                        e.action,
                        e.subject[:40],
                        e.details_text()[:80],
                    ),
                    str(e.seq),
                )
                for e in message.entries
            ),
        )
