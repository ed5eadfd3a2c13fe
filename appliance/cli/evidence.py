"""`airseal evidence export`: a self-contained folder for auditors (see docs/evidence.md)."""

from __future__ import annotations

from pathlib import Path

import click

from airseal._internal.cli import examples, json_option
from airseal.appliance.cli import cli
from airseal.appliance.cli.session import open_appliance
from airseal.appliance.cli.ui import emit_json
from airseal.appliance.errors import UsageError


@examples(
    'airseal evidence export --action 3f2a9c01d4e5 --to /media/usb/evidence-3f2a',
    'airseal evidence export --since 2026-01-01 --to /media/usb/evidence-2026',
)
@cli.group(name="evidence")
def evidence_group() -> None:
    """Evidence for auditors: what was signed, by whom, and what endpoints did with it."""


@examples(
    'airseal evidence export --action 3f2a9c01d4e5 --to /media/usb/evidence-3f2a',
    'airseal evidence export --export 9b1c0d2e3f40 --to ./evidence --json',
    'airseal evidence export --since 2026-01-01 --to /media/usb/evidence-2026',
)
@evidence_group.command(name="export")
@click.option("--action", "action_id", metavar="ID",
              help="Evidence of this action: every version, the exports that carried it, "
                   "their receipts.")
@click.option("--export", "export_id", metavar="ID",
              help="Evidence of this export (its id, or a unique prefix of 8+ characters).")
@click.option("--since", metavar="DATE",
              help="Evidence of every action and export since DATE (YYYY-MM-DD, UTC, or an "
                   "ISO 8601 time).")
@click.option("--to", "evidence_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="New folder to write the evidence to (must not exist, or be empty).")
@json_option
def evidence_export(action_id: str | None, export_id: str | None, since: str | None,
                    evidence_dir: Path, as_json: bool) -> None:
    """Write a self-contained evidence folder: signed bundles, keys and fingerprints, the site
    policy then in force, vendor signatures, log entries and proofs, endpoint receipts, the
    audit chain segment, report.html, evidence.json, and VERIFY.md with the openssl and
    coreutils commands that re-check every claim offline.

    Give exactly one of --action, --export or --since. The folder appears whole or not at all.
    """
    chosen = [(k, v) for k, v in (("action", action_id), ("export", export_id),
                                  ("since", since)) if v is not None]
    if len(chosen) != 1:
        raise UsageError("give exactly one of --action, --export or --since")
    kind, value = chosen[0]
    result = open_appliance().export_evidence(kind, value, evidence_dir)
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo("\n".join(result.describe()))
