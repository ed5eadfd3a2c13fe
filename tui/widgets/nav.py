"""The navigation bar at the top of every main screen: where you are and the keys to move."""

from __future__ import annotations

from textual.widgets import Static

from airseal.tui.navigation import PLACES


def _markup(current: str) -> str:
    parts = ["[b reverse] Airseal [/] "]
    for place in PLACES:
        label = f" {place.key} {place.title} "
        click = f"@click=app.goto('{place.mode}')"
        if place.mode == current:
            parts.append(f"[b reverse {click}]{label}[/]")
        else:
            parts.append(f"[{click}]{label}[/]")
    return " ".join(parts)


class NavBar(Static):
    """One line: the app name and every main screen with its key (click or press it)."""

    def __init__(self, current: str) -> None:
        super().__init__(_markup(current), id="nav")
