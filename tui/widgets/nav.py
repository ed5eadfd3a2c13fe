"""The navigation bar at the top of every main screen: where you are and the keys to move.

Every screen and its key stay visible at any width down to 80 columns: the bar picks the
longest wording that fits (full titles, then short ones without the app's name).
"""

from __future__ import annotations

from textual.events import Resize
from textual.widgets import Static

from airseal.tui.navigation import PLACES, Place

Wording = tuple[bool, bool, bool]
"""(show the app's name, use full titles, pad every item; the current one is always padded)"""
WORDINGS: tuple[Wording, ...] = (
    (True, True, True),
    (True, False, True),
    (False, False, True),
    (False, False, False),
)


def _title(place: Place, full: bool) -> str:
    return place.title if full or not place.short else place.short


def plain_width(current: str, wording: Wording) -> int:
    """How many columns the bar takes in ``wording``."""
    return len(_items(current, wording)[1])


def _items(current: str, wording: Wording) -> tuple[list[tuple[Place, str]], str]:
    named, full, padded = wording
    items = []
    for place in PLACES:
        label = f"{place.key} {_title(place, full)}"
        if padded or place.mode == current:
            label = f" {label} "
        items.append((place, label))
    plain = " ".join(([" Airseal "] if named else []) + [label for _, label in items])
    return items, plain


def _markup(current: str, wording: Wording = WORDINGS[0]) -> str:
    parts = ["[b reverse] Airseal [/]"] if wording[0] else []
    for place, label in _items(current, wording)[0]:
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
        self.current = current

    def on_resize(self, event: Resize) -> None:
        width = event.size.width
        wording = next((w for w in WORDINGS if plain_width(self.current, w) <= width), WORDINGS[-1])
        self.update(_markup(self.current, wording))
