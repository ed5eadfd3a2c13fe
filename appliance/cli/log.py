"""`airseal log init|status|get|prove|verify|trusted-root|export|serve|witness-request|
witness-import`: the embedded transparency log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from airseal._internal.cli import examples, json_option
from airseal.appliance.cli import cli
from airseal.appliance.cli.session import open_appliance
from airseal.appliance.cli.ui import emit_json


@examples(
    'airseal log init --key log-key --origin log.site.example',
    'airseal log status --json',
    'airseal log prove --index 0',
    'airseal log trusted-root --output trusted_root.json',
)
@cli.group(name="log")
def log_group() -> None:
    """The appliance's transparency log: once it exists, every signature is logged."""


@examples(
    'airseal log init --key log-key',
    'airseal log init --key log-key --origin log.site.example',
)
@log_group.command(name="init")
@click.option("--key", "log_key", required=True, help="Appliance key signing the log (P-256).")
@click.option("--origin", help="The log's bare host name (default: from the appliance id).")
@json_option
def log_init(log_key: str, origin: str | None, as_json: bool) -> None:
    """Create the transparency log; from now on sign-blob, actions and exports are logged."""
    status = open_appliance().log_init(log_key, origin=origin)
    _show(status.to_json() if as_json else None, status.describe())


@examples(
    'airseal log status',
    'airseal log status --json',
)
@log_group.command(name="status")
@json_option
def log_status(as_json: bool) -> None:
    """Size, root hash and latest signed checkpoint."""
    status = open_appliance().log_status()
    _show(status.to_json() if as_json else None, [*status.describe(), "", status.checkpoint])


@examples(
    'airseal log verify',
)
@log_group.command(name="verify")
@json_option
def log_verify(as_json: bool) -> None:
    """Recompute the tree from every entry and check tiles and the latest checkpoint (exit 1
    if anything differs)."""
    status = open_appliance().log_verify()
    _show(status.to_json() if as_json else None, status.describe())


@examples(
    'airseal log anchor',
    'airseal log anchor --json',
)
@log_group.command(name="anchor")
@json_option
def log_anchor(as_json: bool) -> None:
    """Append the audit chain's head to the log (every export also does), so that `audit
    verify` and `log verify` catch a chain rewritten below it."""
    anchor = open_appliance().log_anchor()
    _show(anchor.to_json() if as_json else None, anchor.describe())


class _EntryRef(click.ParamType[int | str, Any]):
    """An entry index, or a Rekor UUID (64 hex digits, or 80 with the tree id in front)."""

    name = "INDEX|UUID"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int | str:
        text = str(value).strip()
        if text.isdigit():
            return int(text)
        if len(text) in (64, 80) and all(c in "0123456789abcdefABCDEF" for c in text):
            return text
        self.fail(f"{value!r} is neither an entry index nor a UUID (64 or 80 hex digits)",
                  param, ctx)


@examples(
    'airseal log get 0',
    'airseal log get c2ac548aa97f1f8e5d49a217cdada3418c9fcb5dbaa100f5f6c329bf427ea626',
)
@log_group.command(name="get")
@click.argument("index", metavar="INDEX|UUID", type=_EntryRef())
def log_get(index: int | str) -> None:
    """Entry INDEX, or the entry a UUID names (its leaf hash, as `log serve` and Rekor name
    entries; found through an index), as a bundle `tlogEntries` item (JSON), with its verified
    inclusion proof."""
    emit_json(open_appliance().log_get(index))


@examples(
    'airseal log prove --index 3 --json',
    'airseal log prove --from-size 10',
)
@log_group.command(name="prove")
@click.option("--index", type=click.IntRange(min=0), help="Inclusion proof of this entry.")
@click.option(
    "--from-size", "old_size", type=click.IntRange(min=0),
    help="Consistency proof from this earlier checkpoint size to the latest.",
)
@json_option
def log_prove(index: int | None, old_size: int | None, as_json: bool) -> None:
    """An inclusion or consistency proof against the latest checkpoint, verified first."""
    proof = open_appliance().log_prove(index=index, old_size=old_size)
    _show(proof.to_json() if as_json else None, proof.describe())


@examples(
    'airseal log trusted-root --output trusted_root.json',
)
@log_group.command(name="trusted-root")
@click.option(
    "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the Sigstore trusted_root.json naming this log.",
)
def log_trusted_root(output: Path) -> None:
    """Write a Sigstore `trusted_root.json` naming this log, for Sigstore verifiers at the site."""
    click.echo(f"Wrote {open_appliance().write_log_trusted_root(output)}")


@examples(
    'airseal log export /srv/log',
)
@log_group.command(name="export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def log_export(directory: Path) -> None:
    """Write the log as static C2SP tlog-tiles files (checkpoint, tile/...) into DIRECTORY."""
    paths = open_appliance().export_log_tiles(directory)
    click.echo(f"Wrote {len(paths)} files into {directory}")


@examples(
    'airseal log serve --listen 127.0.0.1:3000',
    'airseal log serve --listen 10.0.0.5:3000 --read-only',
    'airseal log serve --listen [::1]:3000 --quiet',
)
@log_group.command(name="serve")
@click.option(
    "--listen", required=True, metavar="HOST:PORT",
    help="Address to serve on (only this one), e.g. 127.0.0.1:3000; port 0 picks a free one.",
)
@click.option(
    "--read-only", is_flag=True,
    help="Serve reads only: no entry creation, the log key is not opened.",
)
@click.option("--quiet", is_flag=True, help="Do not print one line per request.")
def log_serve(listen: str, read_only: bool, quiet: bool) -> None:
    """Serve the log over the Rekor v1 REST API and the C2SP tlog-tiles paths until Ctrl-C or
    SIGTERM (`POST /api/v1/log/entries` verifies and appends hashedrekord entries)."""

    def ready(url: str) -> None:
        mode = "read-only" if read_only else "entry creation on"
        click.echo(f"Serving the transparency log on {url} ({mode}); Ctrl-C stops.")
        sys.stdout.flush()

    open_appliance().serve_log(listen, read_only=read_only, quiet=quiet, on_ready=ready)
    click.echo("Stopped.")


@examples(
    'airseal log witness-request --output /media/usb/witness',
    'airseal log witness-request --output /media/usb/witness --from-size 120',
)
@log_group.command(name="witness-request")
@click.option(
    "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write checkpoint, proofs.json and hashes into (for the witness stations).",
)
@click.option(
    "--from-size", "from_size", type=click.IntRange(min=1),
    help="Also prove consistency from this size (what `airseal witness status` says it saw).",
)
def log_witness_request(output: Path, from_size: int | None) -> None:
    """Write the latest checkpoint and a consistency proof for the site's witnesses
    (`airseal witness cosign DIR` on each station); bring their cosigned notes back with
    `airseal log witness-import`."""
    size, proofs = open_appliance().log_witness_request(output, from_size=from_size)
    click.echo(f"Wrote checkpoint {size}, proved consistent with {proofs} earlier size(s), "
               f"into {output}")


@examples(
    'airseal log witness-import /media/usb/witness/checkpoint.cosigned',
)
@log_group.command(name="witness-import")
@click.argument("note", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def log_witness_import(note: Path) -> None:
    """Keep the witnesses' cosignatures on a checkpoint of this log: exports carry them while
    it is the latest checkpoint, and endpoints require the site policy's witness quorum."""
    names = open_appliance().log_witness_import(note)
    click.echo(f"Kept the checkpoint signed by {', '.join(names)}")


def _show(data: dict[str, object] | None, lines: list[str]) -> None:
    if data is not None:
        emit_json(data)
    else:
        click.echo("\n".join(lines))
