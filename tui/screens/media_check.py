"""The courier's check: is this media complete and undamaged? It needs no keys and decides
completeness, not authenticity (the agent verifies signatures before anything is used)."""

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

from airseal.tui.screens.base import AirsealScreen
from airseal.tui.widgets.media_picker import MediaPicker
from airseal.tui.widgets.nav import NavBar
from airseal.tui.widgets.tables import fill_table


class MediaCheckScreen(AirsealScreen):
    AUTO_FOCUS = "#media-path"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "check", "Check media"),
        Binding("m", "rescan", "Rescan media"),
    ]

    @dataclass
    class Progress(Message):
        done: int
        total: int

    @dataclass
    class Checked(Message):
        report: Any

    def __init__(self) -> None:
        super().__init__(id="media-check")

    def compose(self) -> ComposeResult:
        yield NavBar("check")
        yield Static(
            "Courier's check: is this media complete and undamaged? (no keys needed)",
            classes="section-title",
        )
        yield MediaPicker(self.context.detect_media, id="check-media")
        with Horizontal(classes="toolbar"):
            yield Button("Check", variant="primary", id="do-check", compact=True)
            yield ProgressBar(id="check-progress", show_eta=False)
        yield Static(
            "Choose the media and press Enter.", id="check-result", classes="result", markup=False
        )
        yield DataTable(id="findings", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("Finding", "Check", "Path", "Reason")
        self.query_one("#check-progress").display = False
        self.query_one(DataTable).display = False
        self.action_rescan()

    def action_rescan(self) -> None:
        self.query_one(MediaPicker).rescan()

    @on(Button.Pressed, "#do-check")
    @on(Input.Submitted, "#media-path")
    def action_check(self) -> None:
        picker = self.query_one(MediaPicker)
        target = picker.folder()
        if target is None:
            self._show(f"{picker.path or 'Nothing'} is not a folder: choose the media.", ok=False)
            return
        self.query_one("#do-check", Button).disabled = True
        bar = self.query_one("#check-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True
        self.check(target)

    @work(thread=True, exclusive=True, exit_on_error=False, group="check")
    def check(self, target: Path) -> None:
        last = [0]

        def advance(done: int, total: int) -> None:
            if done == total or done - last[0] >= max(total // 100, 1):
                last[0] = done
                self.post_message(self.Progress(done, total))

        with self.context.open() as appliance:
            self.post_message(self.Checked(appliance.check_media(target, on_progress=advance)))

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        self.query_one("#check-progress", ProgressBar).update(
            total=message.total or None, progress=message.done
        )

    @on(Checked)
    def _checked(self, message: Checked) -> None:
        report = message.report.report
        self._show("\n".join(message.report.describe()), ok=report.ok)
        table = self.query_one(DataTable)
        groups = (
            ("unsafe", report.unsafe),
            ("damaged", report.damaged),
            ("extra", report.extra),
            ("missing", report.missing),
            ("leftover", report.leftovers),
        )
        fill_table(
            table,
            (
                ((kind, finding.check, finding.path, finding.reason), None)
                for kind, findings in groups
                for finding in findings
            ),
        )
        table.display = bool(report.findings)

    def worker_done(self, name: str) -> None:
        if name == "check":
            self.query_one("#do-check", Button).disabled = False
            self.query_one("#check-progress").display = False

    def _show(self, text: str, *, ok: bool) -> None:
        box = self.query_one("#check-result", Static)
        box.border_title = "Complete" if ok else "Not fit to carry"
        box.set_classes("result -ok" if ok else "result -failed")
        box.update(text)
