"""A bar of blocks showing how many agents succeeded, failed or skipped an action.

Each outcome has its own symbol as well as its colour (█ succeeded, ✗ failed, ░ skipped), so the
bar reads the same without colour (monochrome terminals, colour blindness)."""

from __future__ import annotations

from rich.text import Text

SUCCESS = ("succeeded", "already-done")
FAILURE = ("failed", "interrupted", "refused")
SKIPPED = ("skipped", "not-run")
SYMBOLS = ("█", "✗", "░")
"""succeeded, failed, skipped"""
LEGEND = f"{SYMBOLS[0]} succeeded {SYMBOLS[1]} failed {SYMBOLS[2]} skipped"


def tally(outcomes: dict[str, int]) -> tuple[int, int, int]:
    """(succeeded, failed, skipped) from the receipts' outcome counts."""
    return (
        sum(outcomes.get(o, 0) for o in SUCCESS),
        sum(outcomes.get(o, 0) for o in FAILURE),
        sum(outcomes.get(o, 0) for o in SKIPPED),
    )


def outcome_bar(succeeded: int, failed: int, skipped: int, width: int = 24) -> Text:
    """Green, red and grey blocks in proportion; any non-zero share gets at least one block."""
    total = succeeded + failed + skipped
    bar = Text()
    if total == 0:
        return Text("·" * width, style="dim")
    shares = [succeeded, failed, skipped]
    cells = [round(width * n / total) for n in shares]
    for i, n in enumerate(shares):
        if n and cells[i] == 0:
            cells[i] = 1
    while sum(cells) > width:
        cells[cells.index(max(cells))] -= 1
    while sum(cells) < width:
        cells[shares.index(max(shares))] += 1
    for count, (char, style) in zip(
        cells,
        ((SYMBOLS[0], "green"), (SYMBOLS[1], "red"), (SYMBOLS[2], "bright_black")),
        strict=True,
    ):
        bar.append(char * count, style=style)
    return bar
