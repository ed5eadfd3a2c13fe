"""`airseal-agent` commands and plumbing of the site trust mode (kept apart from agent/cli.py).

``enroll --site-root`` pins the site's TUF root; ``unenroll`` removes it. On import, an endpoint
enrolled with a site root trusts what the site repository on the media says
(:mod:`airseal.agent.site_trust`); otherwise it trusts its pinned keys.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from airseal._internal.cli import emit_json, json_option
from airseal.agent.cli import cli

if TYPE_CHECKING:  # the modules load when a command runs: `airseal-agent --version` stays light
    from airseal.agent.journal import Journal
    from airseal.agent.state import AgentState
    from airseal.agent.trust import TrustSource
    from airseal.media.reader import MediaSource


def enroll_site(state: AgentState, path: Path, *, now: datetime, as_json: bool) -> None:
    from airseal._internal.atomic import read_capped
    from airseal.agent.lock import StateLock
    from airseal.agent.site_trust import MAX_ROOT_BYTES, enroll_site_root
    from airseal.errors import FileTooLarge

    try:
        data = read_capped(path, MAX_ROOT_BYTES)
    except FileTooLarge as exc:
        raise click.BadParameter(str(exc), param_hint="--site-root") from None
    with StateLock(state.lock_path):
        root = enroll_site_root(state.root, data, now=now, subject=str(path))
    info = root.roles["root"]
    if as_json:
        emit_json({
            "schemaVersion": 1, "mode": "site", "rootVersion": root.version,
            "rootThreshold": info.threshold, "rootKeys": len(info.keyids),
            "expires": root.expires, "agentId": state.agent_id,
        })
        return
    click.echo(f"Enrolled with the site root (version {root.version}, {info.threshold} of "
               f"{len(info.keyids)} root keys, expires {root.expires.isoformat()})")
    click.echo("  distributors  whoever the site policy on each media names (approved here the "
               "first time)")


def trust_for_import(
    state: AgentState, journal: Journal, source: MediaSource, clock: Callable[[], datetime]
) -> TrustSource | Callable[[], TrustSource]:
    """Pinned keys, or (site mode) a provider that updates from the media during check 2."""
    from airseal.agent.enrolment import pinned_trust
    from airseal.agent.state import is_site_enrolled

    if is_site_enrolled(state.root):
        from airseal.agent.site_trust import site_trust  # the TUF client: site mode only

        return lambda: site_trust(state.root, source, journal, now=clock())
    return pinned_trust(journal, state.root)


@cli.command()
@json_option
def unenroll(as_json: bool) -> None:
    """Trust nothing any more: forget the site root and distrust every pinned key (media signed
    by them is refused, naming the distrust, until an administrator enrols again).

    \b
    Examples:
      airseal-agent unenroll
      airseal-agent enroll --site-root root.json   # enrol with another site
    """
    from airseal.agent.cli import _journal, _now, _open_state
    from airseal.agent.enrolment import distrust, read_distrusted
    from airseal.agent.lock import StateLock
    from airseal.agent.site_trust import unenroll_site

    state = _open_state()
    with StateLock(state.lock_path), _journal(state) as journal:
        removed = unenroll_site(state.root)
        already = read_distrusted(state.root)
        names = [distrust(state.root, journal, r.fingerprint, now=_now())
                 for r in journal.distributors() if r.fingerprint not in already]
    if as_json:
        emit_json({"schemaVersion": 1, "siteRootRemoved": removed, "distrusted": names})
        return
    click.echo("Site root removed" if removed else "No site root was enrolled")
    for name in names:
        click.echo(f"Distrusted {name}")


@cli.command(name="distrust")
@click.argument("fingerprint")
@json_option
def distrust_command(fingerprint: str, as_json: bool) -> None:
    """Stop trusting the pinned distributor key FINGERPRINT (hex SHA-256, as `status` shows);
    its media is refused from now on, naming this. `enroll --key` trusts it again.

    \b
    Examples:
      airseal-agent distrust 3f1c...e9a0
    """
    from airseal.agent.cli import _journal, _now, _open_state
    from airseal.agent.enrolment import distrust
    from airseal.agent.lock import StateLock

    state = _open_state()
    with StateLock(state.lock_path), _journal(state) as journal:
        name = distrust(state.root, journal, fingerprint.strip().lower(), now=_now())
    if as_json:
        emit_json({"schemaVersion": 1, "fingerprint": fingerprint, "name": name})
        return
    click.echo(f"Distrusted {name} ({fingerprint})")
