"""Which widget takes the characters typed: the keys' rules (number keys, letters) depend on it."""

from __future__ import annotations

import sys

from textual.widgets import Input


def is_text_field(widget: object) -> bool:
    """True for an ``Input`` or a ``TextArea``.

    ``TextArea`` is looked up only if its module is loaded already (no ``TextArea`` exists
    before): importing it, with its document and syntax machinery, cost the first paint of
    the dashboard, which has none."""
    if isinstance(widget, Input):
        return True
    text_area = sys.modules.get("textual.widgets._text_area")
    return text_area is not None and isinstance(widget, text_area.TextArea)
