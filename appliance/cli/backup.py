"""`airseal backup [verify]` and `airseal restore`: encrypted, signed backups of the home."""

from __future__ import annotations

from pathlib import Path

import click

from airseal._internal.cli import examples, json_option
from airseal.appliance.cli import cli
from airseal.appliance.cli.options import signing_key_option
from airseal.appliance.cli.session import appliance_without_home, open_appliance
from airseal.appliance.cli.ui import TerminalPrompter, emit_json

_expect_key_option = click.option(
    "--expect-key", metavar="FINGERPRINT",
    help="The backup signer's key fingerprint (64 hex digits), as written down when the backup "
         "was made; refused if the backup was signed by another key.",
)


@examples(
    'airseal backup --to /media/usb/backup-2026-12 --key ops',
    'AIRSEAL_BACKUP_PASSWORD=... airseal backup --to /media/usb/b1 --key ops \\',
    '    --recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p --json',
    'airseal backup verify /media/usb/backup-2026-12',
)
@cli.group(name="backup", invoke_without_command=True)
@click.option("--to", "backup_dir", type=click.Path(file_okay=False, path_type=Path),
              help="New or empty folder the backup is written into.  [required]")
@signing_key_option(required=False)
@click.option("--recipient", "recipients", multiple=True, metavar="AGE_PUBKEY",
              help="Also encrypt to this age public key (age1..., repeatable), besides the "
                   "passphrase.")
@json_option
@click.pass_context
def backup_command(ctx: click.Context, backup_dir: Path | None, key_name: str | None,
                   recipients: tuple[str, ...], as_json: bool) -> None:
    """Write an encrypted, signed backup of the appliance home (--to and --key are required).

    The database (a consistent snapshot), encrypted key files, site repository, transparency
    log, settings and audit chain are packed, encrypted with age to a passphrase
    (AIRSEAL_BACKUP_PASSWORD, else asked twice) and to each --recipient, and the manifest is
    signed with --key. Keys held on tokens are not in the backup: the manifest names them.
    """
    if ctx.invoked_subcommand is not None:
        if backup_dir or key_name or recipients or as_json:
            raise click.UsageError(f"backup options go without `backup {ctx.invoked_subcommand}`")
        return
    if backup_dir is None or key_name is None:
        missing = " and ".join(f for f, v in (("--to", backup_dir), ("--key", key_name))
                               if v is None)
        raise click.UsageError(f"Missing option {missing} (or a subcommand: `backup verify`).")
    result = open_appliance().backup(backup_dir, key_name, recipients=recipients)
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo("\n".join(result.describe()))


@examples(
    'airseal backup verify /media/usb/backup-2026-12',
    'airseal backup verify /media/usb/backup-2026-12 --expect-key 3b1f...e09a --json',
)
@backup_command.command(name="verify")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_expect_key_option
@json_option
def backup_verify(directory: Path, expect_key: str | None, as_json: bool) -> None:
    """Check a backup without restoring it: signature, digests, decryption (to a temporary
    folder, removed after) and every file, the database, audit chain and log inside.

    The signer must be --expect-key, or a key of the appliance here; otherwise exit 1.
    """
    from airseal.appliance.service import Appliance

    checked = Appliance(prompter=TerminalPrompter()).verify_backup(directory,
                                                                  expect_key=expect_key)
    if as_json:
        emit_json(checked.to_json())
    else:
        click.echo("\n".join(checked.describe()))


@examples(
    'airseal restore /media/usb/backup-2026-12 --expect-key 3b1f...e09a --media /media/usb2',
    'AIRSEAL_HOME=/srv/airseal airseal restore /media/usb/b1 --expect-key 3b1f...e09a \\',
    '    --sequence-gap 1000 --json',
)
@cli.command(name="restore")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--home", "home_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The new appliance home, absent or empty (default: $AIRSEAL_HOME, else the "
                   "platform data dir).")
@_expect_key_option
@click.option("--media", "media_dirs", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The newest export media this appliance wrote (repeatable): each key's "
                   "sequence continues after theirs.")
@click.option("--sequence-gap", type=click.IntRange(1, 1_000_000_000),
              help="Skip this many export sequence numbers for each key no --media covers.")
@json_option
def restore_command(directory: Path, home_dir: Path | None, expect_key: str | None,
                    media_dirs: tuple[Path, ...], sequence_gap: int | None,
                    as_json: bool) -> None:
    """Restore a backup on a fresh appliance: everything is verified before anything is
    written, then the home appears in one rename.

    The signer's fingerprint must be confirmed with --expect-key. The export sequences continue
    past the newest --media and/or skip --sequence-gap numbers, so none is ever reused; the
    audit chain records the restore; the log continues where the backup left it.
    """
    from airseal.appliance.service import Appliance

    appliance = (Appliance(root=home_dir, prompter=TerminalPrompter()) if home_dir
                 else appliance_without_home())
    result = appliance.restore(directory, expect_key=expect_key, media=list(media_dirs),
                               sequence_gap=sequence_gap)
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo("\n".join(result.describe()))
