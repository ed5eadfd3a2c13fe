"""The app's main screens (one Textual mode each), in the order of the navigation bar."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Place:
    mode: str
    title: str
    key: str
    module: str
    screen: str
    short: str = ""
    """The title in a narrow terminal (default: the title)."""


PLACES: tuple[Place, ...] = (
    Place("dashboard", "Dashboard", "1", "airseal.tui.screens.dashboard", "DashboardScreen"),
    Place("keys", "Keys & tokens", "2", "airseal.tui.screens.keys", "KeysScreen", "Keys"),
    Place("files", "Files", "3", "airseal.tui.screens.files", "FilesScreen"),
    Place("actions", "Actions", "4", "airseal.tui.screens.actions", "ActionsScreen"),
    Place("export", "Export", "5", "airseal.tui.screens.export", "ExportScreen"),
    Place(
        "check", "Media check", "6", "airseal.tui.screens.media_check", "MediaCheckScreen", "Check"
    ),
    Place("receipts", "Receipts", "7", "airseal.tui.screens.receipts", "ReceiptsScreen"),
    Place("audit", "Audit", "8", "airseal.tui.screens.audit", "AuditScreen"),
    Place("log", "Log", "9", "airseal.tui.screens.log", "LogScreen"),
)
PLACE_BY_MODE = {p.mode: p for p in PLACES}
