"""`airseal-agent` commands and plumbing of the site trust mode (kept apart from agent/cli.py).

``enroll --site-root`` pins the site's TUF root; ``unenroll`` removes it. On import, an endpoint
enrolled with a site root trusts what the site repository on the media says
(:mod:`airseal.agent.site_trust`); otherwise it trusts its pinned keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import click

from airseal._internal.atomic import read_capped
from airseal._internal.cli import json_option
from airseal.agent.cli import cli
from airseal.agent.enrolment import pinned_trust
from airseal.agent.journal import Journal
from airseal.agent.site_trust import (
    MAX_ROOT_BYTES,
    enroll_site_root,
    is_site_enrolled,
    site_trust,
    unenroll_site,
)
from airseal.agent.state import AgentState
from airseal.agent.trust import TrustSource
from airseal.errors import FileTooLarge
from airseal.media.reader import MediaSource


def enroll_site(state: AgentState, path: Path, *, now: datetime, as_json: bool) -> None:
    from airseal.agent.lock import StateLock

    try:
        data = read_capped(path, MAX_ROOT_BYTES)
    except FileTooLarge as exc:
        raise click.BadParameter(str(exc), param_hint="--site-root") from None
    with StateLock(state.lock_path):
        root = enroll_site_root(state.root, data, now=now, subject=str(path))
    info = root.roles["root"]
    if as_json:
        click.echo(json.dumps({
            "schemaVersion": 1, "mode": "site", "rootVersion": root.version,
            "rootThreshold": info.threshold, "rootKeys": len(info.keyids),
            "expires": root.expires.isoformat(), "agentId": state.agent_id,
        }, indent=2, sort_keys=True))
        return
    click.echo(f"Enrolled with the site root (version {root.version}, {info.threshold} of "
               f"{len(info.keyids)} root keys, expires {root.expires.isoformat()})")
    click.echo("  distributors  whoever the site policy on each media names (approved here the "
               "first time)")


def trust_for_import(
    state: AgentState, journal: Journal, source: MediaSource, clock: Callable[[], datetime]
) -> TrustSource | Callable[[], TrustSource]:
    """Pinned keys, or (site mode) a provider that updates from the media during check 2."""
    if is_site_enrolled(state.root):
        return lambda: site_trust(state.root, source, journal, now=clock())
    return pinned_trust(journal)


@cli.command()
@json_option
def unenroll(as_json: bool) -> None:
    """Forget the site root this endpoint was enrolled with (pinned keys stay).

    \b
    Examples:
      airseal-agent unenroll
      airseal-agent enroll --site-root root.json   # enrol with another site
    """
    from airseal.agent.cli import _open_state
    from airseal.agent.lock import StateLock

    state = _open_state()
    with StateLock(state.lock_path):
        removed = unenroll_site(state.root)
    if as_json:
        click.echo(json.dumps({"schemaVersion": 1, "removed": removed}, sort_keys=True))
        return
    click.echo("Site root removed" if removed else "This endpoint has no site root")
