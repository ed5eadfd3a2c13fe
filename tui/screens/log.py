"""Log: the appliance's transparency log at a glance: its size and latest signed checkpoint, the
witnesses and their last cosignature, and its entries, searchable by digest, action or index.

The numbers come from :meth:`Appliance.log_overview` (one read of the database, no proofs), so
the screen opens at once on a log of 10^6 entries; `v` runs the full check (`log verify`)."""

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

LIMIT = 500


def overview_text(overview: Any) -> str:
    return "\n".join([*overview.summary(), *overview.witness_lines()])


def _short(digest: str) -> str:
    return digest[:16] + "…" if len(digest) > 16 else digest or "-"


def _cut(subject: str, width: int = 30) -> str:
    return subject if len(subject) <= width else subject[: width - 1] + "…"


class LogScreen(AirsealScreen):
    AUTO_FOCUS = "#log-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search"),
        Binding("v", "verify", "Verify log"),
        Binding("r", "refresh", "Refresh"),
    ]

    @dataclass
    class Loaded(Message):
        overview: Any

    @dataclass
    class Verified(Message):
        lines: list[str]

    def __init__(self) -> None:
        super().__init__(id="log")
        self._search_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield NavBar("log")
        yield Static("Reading the log…", id="log-summary", classes="result", markup=False)
        with Horizontal(classes="toolbar"):
            yield Input(
                placeholder="/ search: digest (8+ hex digits), action id, subject or index",
                id="log-search",
                compact=True,
            )
        yield DataTable(id="log-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        # what a search is about first: at 80 columns the time scrolls off to the right
        self.query_one(DataTable).add_columns(
            "Index", "Digest", "Subject", "Kind", "Logged (UTC)"
        )

    def on_screen_resume(self) -> None:
        """Every visit reads the log afresh (the first one too: a mode is resumed as it opens;
        loading on mount as well would start a second read that cancels the first)."""
        self.load()

    def action_refresh(self) -> None:
        self.load()

    def action_search(self) -> None:
        self.query_one("#log-search", Input).focus()

    @on(Input.Changed, "#log-search")
    def _search_changed(self) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(0.25, self.load)

    @on(Input.Submitted, "#log-search")
    def _search_now(self) -> None:
        """Enter searches at once (no wait for the typing pause) and goes to the results."""
        if self._search_timer is not None:
            self._search_timer.stop()
        self.load()
        self.query_one(DataTable).focus()

    def load(self) -> None:
        self.read_log(self.query_one("#log-search", Input).value.strip())

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def read_log(self, search: str) -> None:
        with self.context.open() as appliance:
            overview = appliance.log_overview(search=search, limit=LIMIT)
        self.post_message(self.Loaded(overview))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        overview = message.overview
        box = self.query_one("#log-summary", Static)
        box.update(overview_text(overview))
        box.border_title = "Transparency log" if overview.exists else "No log"
        box.set_classes("result" if overview.exists else "result -failed")
        fill_table(
            self.query_one(DataTable),
            (
                (
                    (str(e.index), _short(e.digest), _cut(e.subject), e.kind, when(e.integrated)),
                    str(e.index),
                )
                for e in overview.entries
            ),
        )

    def action_verify(self) -> None:
        box = self.query_one("#log-summary", Static)
        box.border_title = "Verifying every entry, tile and the latest checkpoint…"
        self.verify_log()

    @work(thread=True, exclusive=True, exit_on_error=False, group="verify")
    def verify_log(self) -> None:
        with self.context.open() as appliance:
            status = appliance.log_verify()
        self.post_message(self.Verified(status.describe()))

    @on(Verified)
    def _verified(self, message: Verified) -> None:
        box = self.query_one("#log-summary", Static)
        box.update("\n".join(message.lines))
        box.border_title = "Log verified"
        box.set_classes("result -ok")

    def worker_failed(self, name: str, error: BaseException) -> bool:
        """A failed verification is the answer, shown in place (as the audit chain's is)."""
        from airseal.tui.errors import describe_error

        text = describe_error(error)
        if name != "verify_log" or text.internal:
            return False
        box = self.query_one("#log-summary", Static)
        box.update(text.body)
        box.border_title = f"Log verification FAILED: {text.title}"
        box.set_classes("result -failed")
        return True
