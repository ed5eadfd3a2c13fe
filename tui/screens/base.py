"""What every Airseal screen shares: the app's context, the prompter, the one place where a
failed worker's error reaches the operator, and the keyboard rules every screen keeps:

- every visit starts on the screen's ``AUTO_FOCUS`` widget (:meth:`AirsealScreen.focus_home`);
- a binding on a key that types a character never fires while a text field has the focus (the
  field takes the character), and the footer does not offer it then;
- the media path is one for the session: every :class:`MediaPicker` shows the last one chosen.

A screen shown again is not restyled whole when nothing its styles depend on changed
(:meth:`AirsealScreen._keep_styles`).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, cast

from textual import events, on
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from airseal.tui.fields import is_text_field

if TYPE_CHECKING:
    from airseal.tui.app import AirsealApp
    from airseal.tui.context import ApplianceContext
    from airseal.tui.prompter import ModalPrompter
    from airseal.tui.widgets.media_picker import MediaPicker


TYPED_KEY_NAMES = frozenset({"slash", "question_mark", "space", "full_stop", "comma", "minus"})
"""Key names (besides single characters) that type a character into a text field."""


class AirsealScreen(Screen[Any]):
    """A screen whose workers call appliance services; their errors open the error dialog."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        # The size classes (-narrow/-wide, -short/-tall) from the start: set only on the first
        # resize, they would restyle every widget of the screen a second time as it opens.
        with contextlib.suppress(Exception):
            self.update_classes(self._size_classes(*self.app.size), update=False)

        self._styled_for: tuple[object, ...] | None = None

    def _size_classes(self, width: int, height: int) -> dict[str, bool]:
        """The breakpoint classes for a screen of this size (True: the screen has it)."""
        app = self.app
        horizontal = app.HORIZONTAL_BREAKPOINTS or []
        vertical = app.VERTICAL_BREAKPOINTS or []
        classes = {name: False for _, name in (*horizontal, *vertical)}
        for name in (
            *self._get_breakpoint_classes(width, horizontal),
            *self._get_breakpoint_classes(height, vertical),
        ):
            classes[name] = True
        return classes

    @on(events.Resize)
    def _laid_out_already(self, event: events.Resize) -> None:
        """A screen shown for the first time is laid out, then sent its size (a Resize), on
        which Textual lays it out again, whole: a quarter of the first opening of the action
        form. At the size it was laid out at, only the size classes are brought up to date
        (a terminal resize brings a new size: Textual's handler, after this one, lays out)."""
        if event.size == self.outer_size:
            event.prevent_default()
            self.update_classes(self._size_classes(*event.size), animate=False)

    def _style_inputs(self) -> tuple[object, ...]:
        """What, outside the screen, its widgets' styles depend on: the stylesheet and its
        sources, the theme, the app's classes and pseudo-classes. Changes inside the screen
        (classes, focus, sizes) restyle the widgets concerned as they happen, shown or not."""
        app = self.app
        return (
            id(app.stylesheet),
            len(app.stylesheet.source),
            app.current_theme,
            app.ansi_theme,
            frozenset(app.classes),
            app.app_focus,
            app.is_inline,
            getattr(app, "native_ansi_color", None),
            app.no_color,
        )

    @on(events.Mount)
    def _styled(self) -> None:
        # every widget composed so far was styled as it was registered
        self._styled_for = self._style_inputs()

    @on(events.ScreenResume)
    def _keep_styles(self, event: events.ScreenResume) -> None:
        """Textual restyles every widget of a screen each time it is shown (in case the
        theme changed meanwhile): a third of the cost of opening the action form. Runs before
        Textual's own handler (a subclass's handlers come first), which then skips it when
        nothing the styles depend on changed since the screen was last styled."""
        inputs = self._style_inputs()
        if inputs == self._styled_for:
            event.refresh_styles = False
        self._styled_for = inputs

    @property
    def airseal(self) -> AirsealApp:
        return cast("AirsealApp", self.app)

    @property
    def context(self) -> ApplianceContext:
        return self.airseal.context

    @property
    def prompter(self) -> ModalPrompter:
        return self.airseal.prompter

    def focus_home(self) -> None:
        """Focus the widget every visit starts on (``AUTO_FOCUS``), if it can take the focus."""
        if not self.AUTO_FOCUS:
            return
        for widget in self.query(self.AUTO_FOCUS):
            if widget.focusable:
                self.set_focus(widget)
                return

    def typing(self) -> bool:
        """True while a text field has the focus (characters go into it)."""
        return is_text_field(self.focused)

    def typed_key_actions(self) -> set[str]:
        """The actions of this screen bound to keys that type a character."""
        return {
            binding.action.partition("(")[0]
            for key, bindings in self._bindings.key_to_bindings.items()
            if len(key) == 1 or key in TYPED_KEY_NAMES
            for binding in bindings
        }

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (self.typing() and action in self.typed_key_actions())

    # MediaPicker is named, not imported: screens without one (the dashboard) paint without it
    def on_screen_resume(self) -> None:
        shared = self.airseal.media_path
        for picker in self.query("MediaPicker"):
            cast("MediaPicker", picker).share(shared)

    def on_media_picker_chosen(self, message: MediaPicker.Chosen) -> None:
        self.airseal.media_path = message.path

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state not in (WorkerState.SUCCESS, WorkerState.CANCELLED, WorkerState.ERROR):
            return
        failed = event.state is WorkerState.ERROR and worker.error is not None
        if failed and not self.worker_failed(worker.name, worker.error):  # type: ignore[arg-type]
            self.airseal.show_error(worker.error)  # type: ignore[arg-type]
        self.worker_done(worker.name)
        self.airseal.keys_changed()

    def worker_failed(self, name: str, error: BaseException) -> bool:
        """Show ``error`` here instead of in the error dialog (e.g. inline); True if shown."""
        return False

    def worker_done(self, name: str) -> None:
        """A worker finished (any way): re-enable what it disabled."""
