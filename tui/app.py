"""The Airseal terminal UI: one mode per main screen, reached by number keys or the palette."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, TextArea

from airseal.tui.commands import AirsealCommands, PaletteCommand
from airseal.tui.context import ApplianceContext, default_context
from airseal.tui.errors import describe_error
from airseal.tui.navigation import PLACE_BY_MODE, PLACES
from airseal.tui.prompter import ModalPrompter, PromptCancelled


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
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(p.key, f"goto('{p.mode}')", p.title, show=False, tooltip=f"Open {p.title}")
            for p in PLACES
        ),
        Binding("escape", "leave_field", "Leave the field (then number keys work)", show=False),
        Binding("question_mark,f1", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, context: ApplianceContext | None = None) -> None:
        super().__init__()
        self.context = context or default_context()
        self.prompter = ModalPrompter(self)
        self.internal_errors: list[BaseException] = []
        """Bugs caught at the worker edge (tests assert there are none)."""
        self._warmed_up = False

    def on_mount(self) -> None:
        self.switch_mode("dashboard")

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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action in ("goto", "help") and isinstance(self.screen, ModalScreen))

    def action_goto(self, mode: str) -> None:
        if mode in PLACE_BY_MODE and mode != self.current_mode:
            self.switch_mode(mode)

    def action_leave_field(self) -> None:
        """Esc in a text field gives the keys back to the screen (numbers, letters)."""
        if isinstance(self.focused, Input | TextArea):
            self.screen.set_focus(None)

    def action_help(self) -> None:
        from airseal.tui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def show_error(self, error: BaseException) -> None:
        """The error dialog, with the text the CLI prints for this error."""
        if isinstance(error, PromptCancelled):
            self.notify("Cancelled: nothing was changed.", title="Cancelled")
            return
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
        for action in command.actions:
            await self.screen.run_action(action)


def run() -> int:
    """Open the app on ``$AIRSEAL_HOME`` (else the platform data folder); returns the exit code."""
    app = AirsealApp()
    app.run()
    return app.return_code or 0
