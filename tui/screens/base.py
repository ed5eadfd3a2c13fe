"""What every Airseal screen shares: the app's context, the prompter, and the one place where a
failed worker's error reaches the operator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from textual.screen import Screen
from textual.worker import Worker, WorkerState

if TYPE_CHECKING:
    from airseal.tui.app import AirsealApp
    from airseal.tui.context import ApplianceContext
    from airseal.tui.prompter import ModalPrompter


class AirsealScreen(Screen[Any]):
    """A screen whose workers call appliance services; their errors open the error dialog."""

    @property
    def airseal(self) -> AirsealApp:
        return cast("AirsealApp", self.app)

    @property
    def context(self) -> ApplianceContext:
        return self.airseal.context

    @property
    def prompter(self) -> ModalPrompter:
        return self.airseal.prompter

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state not in (WorkerState.SUCCESS, WorkerState.CANCELLED, WorkerState.ERROR):
            return
        failed = event.state is WorkerState.ERROR and worker.error is not None
        if failed and not self.worker_failed(worker.name, worker.error):  # type: ignore[arg-type]
            self.airseal.show_error(worker.error)  # type: ignore[arg-type]
        self.worker_done(worker.name)

    def worker_failed(self, name: str, error: BaseException) -> bool:
        """Show ``error`` here instead of in the error dialog (e.g. inline); True if shown."""
        return False

    def worker_done(self, name: str) -> None:
        """A worker finished (any way): re-enable what it disabled."""
