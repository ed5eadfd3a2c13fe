"""`airseal-agent selfcheck` and `airseal-agent self-update`: keeping the agent itself current.

Kept apart from :mod:`airseal.agent.cli` (its size), registered on the same group when that
module loads; like it, each command imports what it uses.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from airseal._internal.cli import json_option
from airseal.agent.cli import _emit_json, _journal, _open_state, cli

DEFAULT_PREFIX = Path("/opt/airseal")


@cli.command()
@json_option
def selfcheck(as_json: bool) -> None:
    """Check this agent can work: its state opens, its journal migrates, its keys load.

    The key password is looked for as by `import` (credential, AIRSEAL_AGENT_KEY_PASSWORD);
    without one the private key is only checked to be there and encrypted. Run by
    `self-update` on the new agent before and after switching to it.

    \b
    Examples:
      airseal-agent selfcheck
      AIRSEAL_AGENT_HOME=/var/lib/airseal-agent airseal-agent selfcheck --json
    """
    from importlib.metadata import version

    from airseal._internal.atomic import read_capped
    from airseal.agent.errors import StateError
    from airseal.agent.identity import (
        CREDENTIAL_NAME,
        CREDENTIALS_DIRECTORY_ENV,
        KEY_NAME,
        PASSWORD_ENV,
        key_password,
        load_public_key,
        load_signer,
    )
    from airseal.trustroot.cosign_keys import pem_label
    from airseal.trustroot.keys import fingerprint

    state = _open_state()
    with _journal(state) as journal:
        schema = journal.schema_version()
        distributors = len(journal.distributors())
    public = load_public_key(state.root)
    credential = os.environ.get(CREDENTIALS_DIRECTORY_ENV)
    has_password = PASSWORD_ENV in os.environ or bool(
        credential and (Path(credential) / CREDENTIAL_NAME).exists()
    )
    if has_password:
        load_signer(state.root, key_password(os.environ, None, purpose="selfcheck"))
        key_state = "decrypted"
    else:
        path = state.root / KEY_NAME
        try:
            label = pem_label(read_capped(path, 64 * 1024))
        except OSError:
            label = None
        if label is None or not label.startswith("ENCRYPTED"):
            raise StateError("the agent key is missing or not an encrypted private key",
                             subject=str(path))
        key_state = "present (not decrypted: no password source)"
    result = {
        "schemaVersion": 1,
        "version": version("airseal"),
        "executable": sys.argv[0],
        "state": str(state.root),
        "agentId": state.agent_id,
        "journalSchema": schema,
        "distributors": distributors,
        "keyFingerprint": fingerprint(public),
        "key": key_state,
    }
    if as_json:
        _emit_json(result)
        return
    click.echo(f"Self-check OK: airseal-agent {result['version']}, state {state.root}")
    click.echo(f"  journal schema {schema}, {distributors} distributor(s)")
    click.echo(f"  agent key {result['keyFingerprint']} {key_state}")


@cli.command(name="self-update")
@click.argument("kit", type=click.Path(path_type=Path, file_okay=False))
@click.option("--prefix", type=click.Path(path_type=Path, file_okay=False),
              default=DEFAULT_PREFIX, show_default=True,
              help="Where the kit installed the agent (PREFIX/current, PREFIX/releases).")
@click.option("--python", "python", default=None,
              help="Interpreter for the new release (default: the current agent's).")
@json_option
def self_update(kit: Path, prefix: Path, python: str | None, as_json: bool) -> None:
    """Install a newer agent from the offline kit KIT (a folder, e.g. on the media).

    The kit's manifest must be signed by a distributor enrolled on this agent for actions, and
    every file must match it. The new release is installed beside the current one, must pass
    `--version` and `selfcheck` against this agent's state, and only then becomes current; if
    anything fails, the previous release stays current and the journal is restored. State and
    keys stay where they are. Exit codes: 0 updated, 1 kit refused, 3 update failed (rolled back).

    \b
    Examples:
      airseal-agent self-update /media/usb/airseal-kit
      airseal-agent self-update /media/usb/airseal-kit --prefix /opt/airseal --json
    """
    from airseal.agent.lock import StateLock
    from airseal.agent.self_update import self_update as update

    state = _open_state()
    with StateLock(state.lock_path):
        with _journal(state) as journal:
            distributors = journal.distributors()
        result = update(kit, prefix=prefix, state_root=state.root,
                        journal_path=state.journal_path, distributors=distributors,
                        env=os.environ, python=python)
    if as_json:
        _emit_json(result.to_json())
        return
    click.echo(f"Updated: {prefix / 'current'} -> {result.installed} (airseal-agent "
               f"{result.version}, kit signed by {result.signed_by}); previous: "
               f"{result.previous or 'none'} (kept under {prefix / 'releases'})")
