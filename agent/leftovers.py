"""What a killed import leaves behind, and its removal on the next start.

A kill during placement leaves full-size hidden copies (``.<name>.airseal-<hex>.tmp``) beside
destinations, and a kill at any point after staging leaves the staging folder. Both are the
agent's own: the temporaries are recorded in the placement ledger (``<state>/placements.json``,
written durably *before* any of them is created, cleared once the batch is placed), and staging
lives in the agent's private folders. The next command that holds the state lock (an import,
``airseal-agent status``) removes exactly those: a file is removed only if the ledger names it,
its name has the agent's pattern, it is a regular file, and its folder is reached as placement
reaches it (no link the policy forbids). Nothing else on the endpoint is ever touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from airseal._internal.atomic import read_capped, write_atomic
from airseal.agent.destinations import DestinationPolicy, unlink_in
from airseal.agent.platforms import OperatingSystem
from airseal.agent.staging import memory_prefix, memory_staging_parent, remove_stale_staging
from airseal.agent.state import AgentState
from airseal.errors import FileTooLarge

LEDGER_NAME = "placements.json"
LEDGER_FORMAT = 1
MAX_LEDGER_BYTES = 64 * 1024 * 1024
TEMPORARY_PATTERN = re.compile(r"^\..+\.airseal-[0-9a-f]{12}\.tmp$", re.DOTALL)


def record_placements(state: AgentState, temporaries: Sequence[tuple[str, str]]) -> None:
    """Durably note ``(folder, temporary name)`` pairs before any of them is created."""
    data = {
        "format": LEDGER_FORMAT,
        "temporaries": [{"folder": f, "name": n} for f, n in temporaries],
    }
    write_atomic(state.root / LEDGER_NAME, json.dumps(data).encode(), mode=0o600)


def clear_placements(state: AgentState) -> None:
    """The batch is placed (or discarded): nothing to clean up any more."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(state.root / LEDGER_NAME)


def _recorded(path: Path) -> list[tuple[str, str]]:
    try:
        data = json.loads(read_capped(path, MAX_LEDGER_BYTES))
        entries = data["temporaries"] if data.get("format") == LEDGER_FORMAT else []
        return [
            (e["folder"], e["name"])
            for e in entries
            if isinstance(e.get("folder"), str) and isinstance(e.get("name"), str)
        ]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError, KeyError, AttributeError, FileTooLarge):
        return []  # a ledger torn by the kill names nothing we could trust


def pending_leftovers(state: AgentState) -> list[str]:
    """The placement temporaries a killed run may have left (without touching them)."""
    return [
        os.path.join(folder, name)
        for folder, name in _recorded(state.root / LEDGER_NAME)
        if TEMPORARY_PATTERN.match(name) and "/" not in name and "\\" not in name
    ]


def remove_leftovers(
    state: AgentState, os_name: OperatingSystem, policy: DestinationPolicy
) -> list[str]:
    """Remove what a killed run left (see the module's docstring); what was removed. Call with
    the state lock held."""
    removed: list[str] = []
    ledger = state.root / LEDGER_NAME
    for folder, name in _recorded(ledger):
        if not TEMPORARY_PATTERN.match(name) or "/" in name or "\\" in name:
            continue
        if unlink_in(folder, name, policy):
            removed.append(os.path.join(folder, name))
    clear_placements(state)
    stale = remove_stale_staging(
        state.staging_dir, memory_staging_parent(os_name), memory_prefix(state.agent_id)
    )
    removed.extend(str(path) for path in stale)
    return removed
