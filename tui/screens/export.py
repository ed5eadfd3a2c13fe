"""Export: choose the media and the actions, see whether they fit, write them with a progress
bar, then see the read-back result and the courier's check of what was written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.timer import Timer
from textual.widgets import (
    Button,
    Checkbox,
    Footer,
    Input,
    Label,
    ProgressBar,
    Select,
    SelectionList,
    Static,
)

from airseal.media.confusables import escape_confusables
from airseal.tui.errors import describe_error
from airseal.tui.formatting import size, when
from airseal.tui.screens.base import AirsealScreen
from airseal.tui.widgets.media_picker import MediaPicker
from airseal.tui.widgets.nav import NavBar


class ExportScreen(AirsealScreen):
    AUTO_FOCUS = "#export-actions"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "export", "Export"),
        Binding("p", "media_path", "Type the media path"),
        Binding("m", "rescan", "Rescan media"),
        Binding("a", "toggle_all", "All / none"),
        Binding("r", "refresh", "Refresh"),
    ]

    @dataclass
    class Loaded(Message):
        actions: list[Any]
        keys: list[Any]
        valid_days: int
        mounts: list[Any]

    @dataclass
    class Space(Message):
        text: str
        fits: bool | None

    @dataclass
    class Progress(Message):
        done: int
        total: int

    @dataclass
    class Exported(Message):
        summary: Any
        report: Any

    def __init__(self) -> None:
        super().__init__(id="export")
        self._space_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield NavBar("export")
        yield Static("Export signed actions to media", classes="section-title")
        yield MediaPicker(self.context.detect_media, id="export-media")
        yield Static("Choose the media.", id="capacity", classes="hint")
        yield Static("Actions to export (current, latest versions)", classes="section-title")
        yield SelectionList[str](id="export-actions")
        with Horizontal(classes="toolbar"):
            yield Label("Signing key", classes="picker-label")
            yield Select[str]([], prompt="key", id="export-key", compact=True)
            yield Label("Valid (days)", classes="picker-label")
            yield Input(id="valid-days", classes="short", compact=True)
        with Horizontal(classes="toolbar"):
            yield Button("Export", variant="primary", id="do-export", compact=True)
            yield Checkbox("Write when free space is unknown", id="allow-unknown")
            yield ProgressBar(id="export-progress", show_eta=False)
        yield Static("", id="export-result", classes="result", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#export-result").display = False
        self.query_one("#export-progress").display = False
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load(self) -> None:
        with self.context.open() as appliance:
            current = appliance.current_actions()
            keys = appliance.list_keys()
            days = appliance.setting_int("export.valid-days")
            media = appliance.detect_media()
        self.post_message(self.Loaded(current, keys, days, media))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        selection = self.query_one("#export-actions", SelectionList)
        before = set(selection.selected)
        had = {str(selection.get_option_at_index(i).value) for i in range(selection.option_count)}
        selection.clear_options()
        for record in message.actions:
            payload = record.predicate.payload
            chosen = record.id in before or record.id not in had
            selection.add_option(
                (
                    f"{escape_confusables(record.name)}  ({record.os}, {record.mode})  "
                    f"{record.id} v{record.version}  "
                    f"{escape_confusables(payload.name)} {size(payload.size)}",
                    record.id,
                    chosen,
                )
            )
        key_select = self.query_one("#export-key", Select)
        current_key = key_select.value
        key_select.set_options([(f"{k.name} ({k.backend})", k.name) for k in message.keys])
        names = [k.name for k in message.keys]
        if current_key in names:
            key_select.value = current_key
        elif names:
            key_select.value = names[0]
        days = self.query_one("#valid-days", Input)
        if not days.value:
            days.value = str(message.valid_days)
        self.query_one(MediaPicker).set_mounts(message.mounts)
        if not message.actions:
            self._capacity("No current action to export: create one on the Actions screen (4).")
        self._schedule_space()

    def action_media_path(self) -> None:
        self.query_one(MediaPicker).focus_path()

    def action_rescan(self) -> None:
        self.query_one(MediaPicker).rescan()

    @on(MediaPicker.Rescanned)
    def _rescanned(self, message: MediaPicker.Rescanned) -> None:
        self.notify(f"{len(message.mounts)} removable media mounted.")

    def action_toggle_all(self) -> None:
        selection = self.query_one("#export-actions", SelectionList)
        if selection.selected:
            selection.deselect_all()
        else:
            selection.select_all()

    # -- capacity ---------------------------------------------------------------------------

    @on(MediaPicker.Chosen)
    @on(SelectionList.SelectedChanged)
    def _schedule_space(self) -> None:
        if self._space_timer is not None:
            self._space_timer.stop()
        self._space_timer = self.set_timer(0.3, self._measure)

    def _measure(self) -> None:
        target = self.query_one(MediaPicker).path
        chosen = list(self.query_one("#export-actions", SelectionList).selected)
        if not target:
            self._capacity("Choose the media: a detected mount or a folder typed in.")
            return
        if not chosen:
            self._capacity("Select at least one action.")
            return
        self.measure(Path(target).expanduser(), chosen)

    @work(thread=True, exclusive=True, exit_on_error=False, group="space")
    def measure(self, target: Path, chosen: list[str]) -> None:
        from airseal.errors import AirsealError

        try:
            with self.context.open() as appliance:
                space = appliance.check_space(target, chosen)
        except AirsealError as error:
            self.post_message(self.Space(error.diagnostics(), False))
            return
        fs = f"{space.filesystem}, " if space.filesystem else ""
        if space.free_bytes is None:
            text = (
                f"Free space unknown on {space.target} ({fs}{space.method}); the export "
                f"needs about {size(space.needed_bytes)}."
            )
        else:
            verdict = "fits" if space.fits else "DOES NOT FIT"
            text = (
                f"{size(space.free_bytes)} free on {space.target} ({fs}{space.method}); "
                f"the export needs {size(space.needed_bytes)} "
                f"({size(space.payload_bytes)} of payloads): {verdict}."
            )
        self.post_message(self.Space(text, space.fits))

    @on(Space)
    def _space(self, message: Space) -> None:
        self._capacity(message.text, message.fits)

    def _capacity(self, text: str, fits: bool | None = None) -> None:
        box = self.query_one("#capacity", Static)
        box.update(text)
        box.set_classes("hint" if fits is not False else "inline-error")

    # -- export -----------------------------------------------------------------------------

    @on(Button.Pressed, "#do-export")
    @on(Input.Submitted, "#media-path")
    @on(Input.Submitted, "#valid-days")
    def action_export(self) -> None:
        target = self.query_one(MediaPicker).path
        chosen = list(self.query_one("#export-actions", SelectionList).selected)
        key = self.query_one("#export-key", Select).value
        days = self.query_one("#valid-days", Input).value.strip()
        problems = []
        if not target:
            problems.append("choose the media")
        elif not Path(target).expanduser().is_dir():
            problems.append(f"{target} is not a folder")
        if not chosen:
            problems.append("select at least one action")
        if not isinstance(key, str):
            problems.append("choose the signing key")
        if not days.isdigit() or not 1 <= int(days) <= 3650:
            problems.append("validity is a whole number of days from 1 to 3650")
        if problems:
            self._result("Not exported: " + "; ".join(problems) + ".", ok=False)
            return
        self.query_one("#do-export", Button).disabled = True
        bar = self.query_one("#export-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True
        self.query_one("#export-result").display = False
        self.export(
            Path(target).expanduser(),
            str(key),
            chosen,
            int(days),
            self.query_one("#allow-unknown", Checkbox).value,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="export")
    def export(
        self, target: Path, key: str, chosen: list[str], days: int, allow_unknown: bool
    ) -> None:
        last = [0.0]

        def advance(done: int, total: int) -> None:
            if done == total or total == 0 or done - last[0] >= total / 100:
                last[0] = done
                self.post_message(self.Progress(done, total))

        with self.context.open(self.prompter) as appliance:
            summary = appliance.export(
                target,
                key,
                action_ids=chosen,
                valid_days=days,
                allow_unknown_capacity=allow_unknown,
                on_progress=advance,
            )
            report = appliance.check_media(target)
        self.post_message(self.Exported(summary, report))

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        self.query_one("#export-progress", ProgressBar).update(
            total=message.total or None, progress=message.done
        )

    @on(Exported)
    def _exported(self, message: Exported) -> None:
        s, report = message.summary, message.report
        text = (
            f"Exported {len(s.actions)} action(s) to {s.target}/airseal "
            f"(export {s.export_id}, sequence {s.sequence})\n"
            f"  {s.files} listed files, {s.listed_bytes} bytes ({size(s.listed_bytes)}) + "
            f"the export statement, read back "
            f"{'OK' if s.read_back_ok else 'FAILED'}, "
            f"valid until {when(s.expires)} UTC, signed by {s.key_name} "
            f"({s.signatures} signature(s))\n\n" + "\n".join(report.describe())
        )
        self._result(text, ok=s.read_back_ok and report.ok)
        self.notify(f"Export {s.sequence} written and checked.", title="Export done")
        self._schedule_space()

    def worker_failed(self, name: str, error: BaseException) -> bool:
        if name != "export":
            return False
        text = describe_error(error)
        if text.internal:
            return False
        self._result(f"Export failed: {text.title}\n{text.body}", ok=False)
        return True

    def worker_done(self, name: str) -> None:
        if name == "export":
            self.query_one("#do-export", Button).disabled = False
            self.query_one("#export-progress").display = False

    def _result(self, text: str, *, ok: bool) -> None:
        box = self.query_one("#export-result", Static)
        box.set_classes("result -ok" if ok else "result -failed")
        box.border_title = "Result"
        box.update(text)
        box.display = True
