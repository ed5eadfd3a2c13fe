"""Filling a data table so that every column is as wide as its widest cell.

Textual's ``DataTable`` widens auto-width columns later, when it next goes idle; tables refilled
after a change (a file added, receipts imported) were seen with columns left at the width of
their header ("hell" for "hello"). Here each column is re-added with its width measured from the
rows before they are shown, so the width never depends on when the table went idle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable

Row = tuple[Sequence[str | Text], str | None]
"""The cells of a row and its key."""


def _width(cell: str | Text) -> int:
    text = cell.plain if isinstance(cell, Text) else str(cell)
    return max((cell_len(line) for line in text.splitlines()), default=0)


def fill_table(table: DataTable[Any], rows: Iterable[Row]) -> None:
    """Replace the rows of ``table`` (its columns stay, as wide as their widest cell)."""
    rows = list(rows)
    labels = [column.label for column in table.ordered_columns]
    widths = [_width(label) for label in labels]
    for cells, _key in rows:
        widths = [max(w, _width(c)) for w, c in zip(widths, cells, strict=True)]
    table.clear(columns=True)
    for label, width in zip(labels, widths, strict=True):
        table.add_column(label, width=width)
    for cells, key in rows:
        table.add_row(*cells, key=key)
