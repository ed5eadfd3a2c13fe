"""One time format for people and scripts: ISO 8601 in UTC to the second, ``2026-12-02T08:30:00Z``.

Every command prints times through :func:`utc_text` (and the JSON writer normalises any
timestamp string it is handed with :func:`normalise_timestamp`), so the CLI, the JSON documents
and the audit listing agree. Stored and signed values keep their own precision; this is display.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$"
)


def utc_text(value: datetime | None) -> str:
    """``value`` as ``YYYY-MM-DDTHH:MM:SSZ`` (naive datetimes are taken to be UTC); "" for None."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalise_timestamp(text: str) -> str:
    """An ISO 8601 timestamp with an offset, in the one format; any other string unchanged."""
    if not _TIMESTAMP.match(text):
        return text
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return utc_text(parsed)
