"""How numbers, sizes and times read on screen."""

from __future__ import annotations

from datetime import datetime


def size(n: int | None) -> str:
    if n is None:
        return "unknown"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def when(moment: datetime | str | None) -> str:
    if moment is None:
        return "-"
    if isinstance(moment, str):
        try:
            parsed = datetime.fromisoformat(moment)
        except ValueError:
            return moment
        return f"{parsed:%Y-%m-%d %H:%M}"
    return f"{moment:%Y-%m-%d %H:%M}"


def day(moment: datetime | str | None) -> str:
    return when(moment)[:10]


def until(moment: datetime, now: datetime) -> str:
    """'in 3 days', 'in 5 hours', '2 days ago'."""
    seconds = (moment - now).total_seconds()
    ahead = seconds >= 0
    seconds = abs(seconds)
    if seconds >= 86400:
        amount, unit = int(seconds // 86400), "day"
    elif seconds >= 3600:
        amount, unit = int(seconds // 3600), "hour"
    else:
        amount, unit = max(1, int(seconds // 60)), "minute"
    text = f"{amount} {unit}{'' if amount == 1 else 's'}"
    return f"in {text}" if ahead else f"{text} ago"


def short(text: str, keep: int) -> str:
    """``text`` cut to ``keep`` characters with an ellipsis (hashes, fingerprints)."""
    return text if len(text) <= keep else text[:keep] + "…"
