"""The Airseal terminal UI: one mode per main screen, reached by number keys or the palette."""

from __future__ import annotations

import gc
import importlib
from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from airseal.tui.commands import AirsealCommands, PaletteCommand
from airseal.tui.context import ApplianceContext, default_context
from airseal.tui.fields import is_text_field
from airseal.tui.navigation import PLACE_BY_MODE, PLACES
from airseal.tui.prompter import ModalPrompter, PromptCancelled
from airseal.tui.styles import ThemeCachedStylesheet


def _lazy_screen(module: str, name: str) -> Callable[[], Screen[Any]]:
    """Screens are imported when first shown, so the dashboard paints without the rest."""

    def make() -> Screen[Any]:
        screen: Screen[Any] = getattr(importlib.import_module(module), name)()
        return screen

    return make


class AirsealApp(App[int]):
    """The operator's app on one appliance home."""

    TITLE = "Airseal"
    CSS_PATH = "app.tcss"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        p.mode: _lazy_screen(p.module, p.screen) for p in PLACES
    }
    COMMANDS = App.COMMANDS | {AirsealCommands}
    # screens lay out tighter below 100 columns and 32 rows (80x24 must show everything)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]  # noqa: RUF012
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]  # noqa: RUF012
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(p.key, f"goto('{p.mode}')", p.title, show=False, tooltip=f"Open {p.title}")
            for p in PLACES
        ),
        Binding("escape", "leave_field", "Leave the field (then number keys work)", show=False),
        # The app moves the focus itself, as the Tab arrives, so keys typed after it go to the
        # next field. Left to the field, the Tab is handled only when the field gets to it, and
        # the keys typed after it were already routed to that same field ("(Demo)HelloSays hi").
        Binding("tab", "focus_next", "Next field", show=False, priority=True),
        Binding("shift+tab", "focus_previous", "Previous field", show=False, priority=True),
        Binding("question_mark,f1", "help", "Help"),
        Binding("ctrl+l", "lock_keys", "Lock keys", tooltip="Forget the keys unlocked so far"),
        Binding("q", "quit", "Quit"),
    ]
    IDLE_CHECK_SECONDS = 5.0
    """How often keys idle too long are locked (their timeout is the session's)."""

    def __init__(self, context: ApplianceContext | None = None) -> None:
        super().__init__()
        self.stylesheet = ThemeCachedStylesheet(variables=self.get_css_variables())
        self.context = context or default_context()
        self.prompter = ModalPrompter(self)
        self.media_path = ""
        """The media chosen last on any screen: Export, Media check and Receipts share it."""
        self.internal_errors: list[BaseException] = []
        """Bugs caught at the worker edge (tests assert there are none)."""
        self._warmed_up = False
        self._unlocked: list[str] = []

    def on_mount(self) -> None:
        self.switch_mode("dashboard")
        self.set_interval(self.IDLE_CHECK_SECONDS, self._lock_idle_keys)

    # -- keys unlocked for the session ------------------------------------------------------

    def keys_changed(self) -> None:
        """Tell the operator when a key was unlocked (after work that signed) or locked."""
        now = self.context.unlocked_keys.names()
        if now == self._unlocked:
            return
        for name in sorted(set(now) - set(self._unlocked)):
            minutes = round(self.context.unlocked_keys.idle_seconds / 60)
            self.notify(
                f"Key {name} stays unlocked for this session (in memory only) until ctrl+l "
                f"locks it or it is idle {minutes} minutes.",
                title="Key unlocked",
            )
        self._unlocked = now
        self.refresh_bindings()

    def _lock_idle_keys(self) -> None:
        locked = self.context.unlocked_keys.expire()
        if locked:
            self.notify(f"Locked after idling: {', '.join(locked)}.", title="Keys locked")
            self._unlocked = self.context.unlocked_keys.names()
            self.refresh_bindings()

    def action_lock_keys(self) -> None:
        locked = self.context.unlocked_keys.lock()
        self._unlocked = []
        self.refresh_bindings()
        self.notify(
            f"Locked: {', '.join(locked)}; the next signing asks for the password."
            if locked
            else "No key was unlocked.",
            title="Keys locked",
        )

    def warm_up(self) -> None:
        """Import the other screens (and the services they use) while the operator reads the
        dashboard. Called once the dashboard shows its data: started earlier, the imports
        would hold the interpreter while the dashboard is still being read and painted."""
        if not self._warmed_up:
            self._warmed_up = True
            self.run_worker(self._import_screens, thread=True, group="warm-up", exit_on_error=False)

    def _import_screens(self) -> None:
        for place in PLACES[1:]:
            importlib.import_module(place.module)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "warm-up" and event.state in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            self._settle_memory()

    def _settle_memory(self) -> None:
        """Everything imported and built so far lives as long as the app: move it out of the
        garbage collector's sight (``gc.freeze``), and collect again (``airseal tui`` starts
        with the collector off, :mod:`airseal.tui.command`). A full collection then walks only
        what was made since, not every module, class and style of Textual and the signing
        stack: unfrozen, one such walk cost 0.2 s CPU in the first opening of the action form."""
        gc.freeze()
        gc.enable()

    def on_unmount(self) -> None:
        # objects frozen by this app become collectable again once it closes (tests run
        # many apps in one process)
        gc.unfreeze()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("goto", "help") and isinstance(self.screen, ModalScreen):
            return False
        if action == "lock_keys":
            return True if self._unlocked else None  # shown dimmed while nothing is unlocked
        # a text field takes the characters typed: q and the numbers are not offered then
        return not (action in ("goto", "quit") and is_text_field(self.focused))

    async def action_goto(self, mode: str) -> None:
        """Open a main screen; every visit starts on the same widget of it."""
        if mode not in PLACE_BY_MODE:
            return
        if mode != self.current_mode:
            await self.switch_mode(mode)
        self._focus_home()

    def _focus_home(self) -> None:
        from airseal.tui.screens.base import AirsealScreen

        if isinstance(self.screen, AirsealScreen):
            self.screen.focus_home()

    def action_leave_field(self) -> None:
        """Esc in a text field gives the keys back to the screen (numbers, letters)."""
        if is_text_field(self.focused):
            self.screen.set_focus(None)

    def action_help(self) -> None:
        from airseal.tui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def show_error(self, error: BaseException) -> None:
        """The error dialog, with the text the CLI prints for this error."""
        if isinstance(error, PromptCancelled):
            self.notify("Cancelled: nothing was changed.", title="Cancelled")
            return
        from airseal.tui.errors import describe_error

        text = describe_error(error)
        if text.internal:
            import traceback

            self.log.error("internal error\n" + "".join(traceback.format_exception(error)).rstrip())
            self.internal_errors.append(error)
        from airseal.tui.widgets.dialogs import ErrorDialog

        self.push_screen(ErrorDialog(text.title, text.body))

    async def run_palette_command(self, command: PaletteCommand) -> None:
        if isinstance(self.screen, ModalScreen):
            self.notify("Close the dialog first.", severity="warning")
            return
        if command.mode != self.current_mode:
            await self.switch_mode(command.mode)
        while len(self.screen_stack) > 1 and not isinstance(self.screen, ModalScreen):
            await self.pop_screen()
        self._focus_home()
        for action in command.actions:
            await self.screen.run_action(action)


def run() -> int:
    """Open the app on ``$AIRSEAL_HOME`` (else the platform data folder); returns the exit code."""
    app = AirsealApp()
    app.run()
    return app.return_code or 0
