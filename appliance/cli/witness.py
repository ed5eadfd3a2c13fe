"""`airseal witness init|cosign|status`: a witness station for the site's transparency log.

Run on another machine than the appliance, with its own home (``$AIRSEAL_WITNESS_HOME`` or
``--home``); see :mod:`airseal.appliance.witness_station`. With ``--yubikey`` the witness key
is an Ed25519 key in a YubiKey PIV slot (firmware 5.7+); its PIN comes from ``AIRSEAL_PIN`` or a
hidden prompt, never from argv. Tests hand a YubiKey connection factory through click's context
object, as for `airseal piv`: ``obj={"open_connection": factory}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from airseal._internal.cli import examples
from airseal.appliance.cli import cli
from airseal.appliance.cli.options import serial_option, slot_option
from airseal.appliance.errors import UsageError

if TYPE_CHECKING:
    from airseal.appliance.witness_station import WitnessStation

_HOME_HELP = ("The witness station's folder (default: $AIRSEAL_WITNESS_HOME, else "
              "~/.airseal-witness).")


def _station(home: Path | None) -> WitnessStation:
    from airseal.appliance.cli.ui import TerminalPrompter
    from airseal.appliance.witness_station import WitnessStation, witness_home

    override: Any = (click.get_current_context().obj or {}).get("open_connection")
    return WitnessStation(witness_home(home), TerminalPrompter(),
                          open_yubikey=None if override is None else lambda _serial: override)


@examples(
    'airseal witness init --name witness.site.example/w1 --log-key log.pub '
    '--log-origin log.site.example',
    'airseal witness cosign /media/usb/witness',
    'airseal witness status',
)
@cli.group(name="witness")
def witness() -> None:
    """A witness station: cosigns the appliance log's checkpoints (C2SP cosignature/v1) after
    checking that each one extends the last it cosigned."""


@examples(
    'airseal witness init --name witness.site.example/w1 --log-key log.pub '
    '--log-origin log.site.example',
    'airseal witness init --name witness.site.example/w2 --log-key log.pub '
    '--log-origin log.site.example --yubikey --slot 9a',
)
@witness.command(name="init")
@click.option("--name", required=True, help="The witness's name, e.g. witness.site.example/w1.")
@click.option("--log-key", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The site log's public key (PEM), whose checkpoints this station checks.")
@click.option("--log-origin", required=True,
              help="The site log's origin, a bare host name (`airseal log status` shows it).")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), help=_HOME_HELP)
@click.option("--yubikey", is_flag=True,
              help="Keep the witness key on a YubiKey (PIV Ed25519, firmware 5.7 or later) "
                   "instead of a password-protected file.")
@slot_option
@serial_option
@click.option("--use-existing", is_flag=True,
              help="With --yubikey: use the Ed25519 key already in --slot instead of generating "
                   "one (a slot that holds a key is never overwritten).")
def witness_init(name: str, log_key: Path, log_origin: str, home: Path | None, yubikey: bool,
                 slot: str, serial: int | None, use_existing: bool) -> None:
    """Create the station's Ed25519 key (under a password, or with --yubikey in an empty PIV
    slot: PIN from AIRSEAL_PIN or asked) and name the log it watches; prints the vkey to put in
    the site policy's witnesses."""
    from click.core import ParameterSource

    from airseal.appliance.witness_station import YubiKeyWitnessKey

    ctx = click.get_current_context()
    given = [f"--{p.replace('_', '-')}" for p in ("slot", "serial", "use_existing")
             if ctx.get_parameter_source(p) == ParameterSource.COMMANDLINE]
    if given and not yubikey:
        raise UsageError(f"{', '.join(given)} go with --yubikey")
    where = YubiKeyWitnessKey(slot, serial, use_existing) if yubikey else None
    status = _station(home).init(name, log_key, log_origin, yubikey=where)
    click.echo("\n".join(status.describe()))


@examples(
    'airseal witness cosign /media/usb/witness',
)
@witness.command(name="cosign")
@click.argument("request", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the cosigned checkpoint "
                   "(default: REQUEST/checkpoint.cosigned).")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), help=_HOME_HELP)
def witness_cosign(request: Path, output: Path | None, home: Path | None) -> None:
    """Cosign the checkpoint in REQUEST (written by `airseal log witness-request`) if it is
    signed by the log and consistent with the last checkpoint this station cosigned (a file key
    takes COSIGN_PASSWORD or asks; a YubiKey key takes AIRSEAL_PIN or asks)."""
    target = output or request / "checkpoint.cosigned"
    point = _station(home).cosign(request, target, now=datetime.now(UTC))
    click.echo(f"Cosigned {point.describe()}; wrote {target}")


@examples(
    'airseal witness status',
)
@witness.command(name="status")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), help=_HOME_HELP)
def witness_status(home: Path | None) -> None:
    """The station's name, vkey, the log it watches and the last checkpoint it cosigned."""
    click.echo("\n".join(_station(home).status().describe()))
