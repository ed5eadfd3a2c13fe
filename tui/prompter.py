"""The :class:`airseal.appliance.prompts.Prompter` of the terminal UI: masked modal dialogs.

Services run in worker threads and call :meth:`ModalPrompter.secret`; the request crosses to the
UI thread (``App.call_from_thread``), a :class:`~airseal.tui.widgets.dialogs.SecretDialog` opens,
and the
worker waits for the answer. The secret goes back to the service and nowhere else.
"""

from __future__ import annotations

import queue
from typing import Any

from textual.app import App
from textual.worker import NoActiveWorker, get_current_worker

from airseal.appliance.errors import PasswordError


class PromptCancelled(PasswordError):
    """The operator closed a secret dialog: the work stops, nothing was changed by the prompt."""

    title = "Cancelled"
    hint = ""


class ModalPrompter:
    """Asks the operator through the app's dialogs; for use from worker threads only."""

    def __init__(self, app: App[Any]) -> None:
        self._app = app

    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        # the dialogs load with the first question, not with the app (before the first paint)
        from airseal.tui.widgets.dialogs import SecretDialog

        answers: queue.Queue[str | None] = queue.Queue(maxsize=1)
        self._app.call_from_thread(
            self._app.push_screen, SecretDialog(prompt, confirm=confirm), answers.put
        )
        while True:
            try:
                value = answers.get(timeout=0.25)
                break
            except queue.Empty:
                if self._abandoned():
                    raise PromptCancelled(f"{prompt}: the question was abandoned") from None
        if value is None:
            raise PromptCancelled(f"{prompt}: cancelled by the operator")
        return value

    def notice(self, message: str) -> None:
        self._app.call_from_thread(
            self._app.notify, message, title="Action needed", severity="warning", timeout=20
        )

    def _abandoned(self) -> bool:
        if not self._app.is_running:
            return True
        try:
            return get_current_worker().is_cancelled
        except NoActiveWorker:
            return False
