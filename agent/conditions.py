"""Whether an action applies to this endpoint, now: pure decisions over facts and a clock.

An action that does not apply is *skipped* with the reason, never an error: the reason goes into
the journal and the receipt, so the operator sees why an endpoint did nothing.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from airseal.agent.platforms import OperatingSystem
from airseal.media.statement import ActionPredicate


@dataclass(frozen=True)
class HostFacts:
    """What conditions are judged against. ``path_exists`` is the one window onto the disk."""

    os: OperatingSystem
    hostname: str
    groups: frozenset[str]
    path_exists: Callable[[str], bool]


def os_problem(action: ActionPredicate, host: HostFacts) -> str | None:
    if action.os != host.os:
        return f"the action is for {action.os}; this endpoint runs {host.os}"
    return None


def window_problem(action: ActionPredicate, now: datetime) -> str | None:
    """Outside the action's validity window (signed into the action)."""
    if now < action.valid_from:
        return f"the action is valid only from {action.valid_from.isoformat()}"
    if now >= action.valid_until:
        return f"the action expired at {action.valid_until.isoformat()}"
    return None


def condition_problem(action: ActionPredicate, host: HostFacts) -> str | None:
    """The first of the action's own conditions that does not hold, or ``None`` (all hold)."""
    conditions = action.conditions
    if conditions.host is not None and not fnmatch.fnmatchcase(
        host.hostname.casefold(), conditions.host.casefold()
    ):
        return f"host {host.hostname!r} does not match {conditions.host!r}"
    if conditions.group is not None and conditions.group not in host.groups:
        shown = ", ".join(sorted(host.groups)) or "none"
        return f"this endpoint is not in group {conditions.group!r} (its groups: {shown})"
    for path in conditions.if_missing:
        if host.path_exists(path):
            return f"{path} exists (the action runs only if it is missing)"
    for path in conditions.if_exists:
        if not host.path_exists(path):
            return f"{path} does not exist (the action runs only if it exists)"
    return None
