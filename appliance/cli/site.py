"""`airseal site ...` and `airseal distributor ...`: the site TUF repository and its policy.

Every change is a signing event: signed at once by the keys on hand (file keys unlocked through
COSIGN_PASSWORD, tokens through AIRSEAL_PIN, or asked at the terminal), else left pending for
`airseal site sign`. Exit 0 when every change took effect, 1 when one waits for signatures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from airseal._internal.cli import examples, json_option
from airseal.appliance.cli import cli
from airseal.appliance.cli.session import open_appliance
from airseal.appliance.cli.ui import emit_json

PENDING_EXIT = 1


def _outcomes(ctx: click.Context, outcomes: list[Any], as_json: bool) -> None:
    if as_json:
        emit_json({"schemaVersion": 1, "events": [o.to_json() for o in outcomes]})
    else:
        for outcome in outcomes:
            click.echo(outcome.describe())
    if not all(o.published for o in outcomes):
        if not as_json:
            click.echo("A signing event waits for signatures: bring the missing keys and run "
                       "`airseal site sign`.", err=True)
        ctx.exit(PENDING_EXIT)


@examples(
    'airseal site status',
    'airseal site root --output root.json',
)
@cli.group(name="site")
def site() -> None:
    """The site TUF repository: offline root and targets keys, the distributor policy."""


@site.command(name="init")
@click.option("--root-key", "root_keys", multiple=True, required=True,
              help="Appliance key holding the root role (repeatable).")
@click.option("--root-threshold", type=click.IntRange(1, 16), required=True,
              help="How many root keys must sign a root change.")
@click.option("--targets-key", "targets_keys", multiple=True, required=True,
              help="Appliance key holding the targets role (repeatable).")
@click.option("--targets-threshold", type=click.IntRange(1, 16), required=True,
              help="How many targets keys must sign a policy change.")
@click.option("--online-key", required=True,
              help="Appliance key that signs snapshot and timestamp (at every export).")
@json_option
@click.pass_context
def site_init(ctx: click.Context, root_keys: tuple[str, ...], root_threshold: int,
              targets_keys: tuple[str, ...], targets_threshold: int, online_key: str,
              as_json: bool) -> None:
    """Create the site repository in the appliance home.

    Expiries come from the settings site.root-days (365), site.targets-days (180) and
    site.timestamp-days (30): `airseal config set site.timestamp-days 14`. File keys are
    unlocked through COSIGN_PASSWORD, token keys through AIRSEAL_PIN.

    \b
    Examples:
      airseal site init --root-key K1 --root-key K2 --root-key K3 \\
          --root-threshold 2 --targets-key K1 --targets-threshold 1 --online-key K4
    """
    outcomes = open_appliance().site_init(
        root_keys=root_keys, root_threshold=root_threshold, targets_keys=targets_keys,
        targets_threshold=targets_threshold, online_key=online_key,
    )
    _outcomes(ctx, outcomes, as_json)


@site.command(name="status")
@json_option
def site_status(as_json: bool) -> None:
    """Roles, keys, thresholds, versions, expiry countdowns, pending events, distributors.

    \b
    Examples:
      airseal site status
      airseal site status --json
    """
    status = open_appliance().site_status()
    if as_json:
        emit_json(status.to_json())
    else:
        click.echo(status.describe())


@site.command(name="root")
@click.option("--output", "-o", "output", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Write to a file instead of stdout.")
def site_root(output: Path) -> None:
    """Write the current site root, for enrolling endpoints
    (`airseal-agent enroll --site-root root.json` on each).

    \b
    Examples:
      airseal site root --output root.json
    """
    open_appliance().write_site_root(output)
    click.echo(f"Wrote the site root to {output}")


@site.command(name="trusted-root")
@click.option("--output", "-o", "output", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the Sigstore trusted_root.json naming this log.")
def site_trusted_root(output: Path) -> None:
    """Write the Sigstore `trusted_root.json` that names this appliance's transparency log, for
    the site's Sigstore verifiers (`@sigstore/verify`, cosign, sigstore-go) and for
    `--trusted-root` (needs `airseal log init`; the same document as `airseal log trusted-root`).

    \b
    Examples:
      airseal site trusted-root --output trusted_root.json
    """
    open_appliance().write_log_trusted_root(output)
    click.echo(f"Wrote the log's trusted root to {output}")


@site.command(name="log-policy")
@click.option("--witness", "witnesses", multiple=True, metavar="VKEY",
              help="A witness whose cosignature counts (its vkey, from `airseal witness "
                   "status`); repeat for several.")
@click.option("--quorum", type=click.IntRange(1, 32),
              help="How many of the witnesses must cosign each media's checkpoint "
                   "(default: all of them).")
@click.option("--not-required", is_flag=True,
              help="Let endpoints accept media without the log's proofs (bad proofs are still "
                   "refused); not with --witness.")
@click.pass_context
def site_log_policy(ctx: click.Context, witnesses: tuple[str, ...], quorum: int | None,
                    not_required: bool) -> None:
    """Publish what endpoints demand of the transparency log: its proofs on every media
    (default), and a quorum of witness cosignatures on its checkpoint. A signing event of the
    targets keys; the log's trusted root target is published with it.

    \b
    Examples:
      airseal site log-policy
      airseal site log-policy --witness "$(cat w1.vkey)" --witness "$(cat w2.vkey)" --quorum 1
    """
    _outcomes(ctx, [open_appliance().site_log_policy(
        required=not not_required, witnesses=witnesses, quorum=quorum)], False)


@site.command(name="signing-config")
@click.option("--set", "document", type=click.Path(dir_okay=False, path_type=Path),
              help="Publish this Sigstore signing_config.json as the site's.")
@click.option("--clear", is_flag=True, help="Stop publishing a signing config.")
@json_option
@click.pass_context
def site_signing_config(ctx: click.Context, document: Path | None, clear: bool,
                        as_json: bool) -> None:
    """Show, set or clear the site's Sigstore signing config (a TUF target of the site, set
    by a signing event of the targets keys). `--rekor-url URL` on signing commands uses the
    Rekor API version it lists for that URL (majorApiVersion 2: Rekor v2); a URL it does not
    list, or no config, means Rekor v1. `--signing-config FILE` still overrides it.

    \b
    Examples:
      airseal site signing-config
      airseal site signing-config --set signing_config.json
      airseal site signing-config --clear --json
    """
    from airseal.appliance.errors import UsageError

    if document is not None and clear:
        raise UsageError("give --set FILE or --clear, not both")
    appliance = open_appliance()
    if document is not None or clear:
        _outcomes(ctx, [appliance.site_set_signing_config(document)], as_json)
        return
    shown = appliance.site_signing_config_view()
    if as_json:
        emit_json(shown.to_json())
    else:
        click.echo(shown.describe())


@site.command(name="sign")
@click.option("--media", "media", type=click.Path(file_okay=False, path_type=Path),
              help="Write the pending events to this media for key holders elsewhere instead.")
@json_option
@click.pass_context
def site_sign(ctx: click.Context, media: Path | None, as_json: bool) -> None:
    """Sign the pending signing events with the keys on hand (a ceremony: plug each key in turn
    and run again until the threshold is met), or carry them on media to other holders.

    \b
    Examples:
      AIRSEAL_PIN=... airseal site sign
      airseal site sign --media /mnt/usb              # then, at the holder's appliance:
      airseal site sign-request /mnt/usb --key K2     # and back here:
      airseal site import-signatures /mnt/usb
    """
    if media is not None:
        roles = open_appliance().site_write_request(media)
        if as_json:
            emit_json({"schemaVersion": 1, "roles": roles, "media": str(media)})
        else:
            click.echo(f"Wrote the pending {', '.join(roles)} change(s) to {media}/airseal-site")
        return
    _outcomes(ctx, open_appliance().site_sign(), as_json)


@site.command(name="sign-request")
@click.argument("media", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--key", "role_key", required=True, help="Your key that holds the role.")
@json_option
def site_sign_request(media: Path, role_key: str, as_json: bool) -> None:
    """Sign a signing request carried on MEDIA with one of this appliance's keys.

    \b
    Examples:
      AIRSEAL_PIN=... airseal site sign-request /mnt/usb --key K2
    """
    attempts = open_appliance().site_sign_request(media, role_key)
    if as_json:
        emit_json({"schemaVersion": 1, "signed": [a.key for a in attempts]})
        return
    for attempt in attempts:
        click.echo(f"signed {attempt.key}")


@site.command(name="import-signatures")
@click.argument("media", type=click.Path(exists=True, file_okay=False, path_type=Path))
@json_option
@click.pass_context
def site_import_signatures(ctx: click.Context, media: Path, as_json: bool) -> None:
    """Add the signatures holders put on MEDIA to the pending events (each verified first).

    \b
    Examples:
      airseal site import-signatures /mnt/usb
    """
    _outcomes(ctx, open_appliance().site_import_signatures(media), as_json)


@site.command(name="rotate-root")
@click.option("--add-key", "add", multiple=True, help="Appliance key to add to root.")
@click.option("--remove-key", "remove", multiple=True, help="Root key to remove.")
@click.option("--threshold", type=click.IntRange(1, 16), help="The new root threshold.")
@click.option("--online-key",
              help="Appliance key that signs snapshot and timestamp (at every export).")
@json_option
@click.pass_context
def site_rotate_root(ctx: click.Context, add: tuple[str, ...], remove: tuple[str, ...],
                     threshold: int | None, online_key: str | None, as_json: bool) -> None:
    """Replace root keys: a new root signed by the old threshold and the new one.

    \b
    Examples:
      airseal site rotate-root --remove-key K3 --add-key K5
    """
    if not add and not remove and threshold is None and online_key is None:
        raise click.UsageError("give --add-key, --remove-key, --threshold or --online-key")
    outcome = open_appliance().site_rotate_root(add=add, remove=remove, threshold=threshold,
                                                online_key=online_key)
    _outcomes(ctx, [outcome], as_json)


@examples(
    'airseal distributor list',
    'airseal distributor add release-key --name "Release team"',
)
@cli.group(name="distributor")
def distributor() -> None:
    """The site's distributors: who may sign exports and actions (the policy target)."""


@distributor.command(name="add")
@click.argument("key")
@click.option("--name", help="A name people recognise (default: the key's name).")
@click.option("--may-sign", default="exports,actions", show_default=True,
              help="What it may sign: exports, actions, or both comma-separated.")
@json_option
@click.pass_context
def distributor_add(ctx: click.Context, key: str, name: str | None, may_sign: str,
                    as_json: bool) -> None:
    """Add a distributor KEY (an appliance key name or a public key file).

    \b
    Examples:
      airseal distributor add dist-b --name "Site distributor B"
      airseal distributor add vendor.pub --may-sign actions
    """
    wanted = [p.strip() for p in may_sign.split(",") if p.strip()]
    if not wanted or any(p not in ("exports", "actions") for p in wanted):
        raise click.BadParameter("list exports, actions or both", param_hint="--may-sign")
    _outcomes(ctx, [open_appliance().distributor_add(key, name=name, may_sign=wanted)], as_json)


@distributor.command(name="retire")
@click.argument("key")
@json_option
@click.pass_context
def distributor_retire(ctx: click.Context, key: str, as_json: bool) -> None:
    """Retire a distributor: endpoints refuse its media from the next export on.

    \b
    Examples:
      airseal distributor retire dist-a
    """
    _outcomes(ctx, [open_appliance().distributor_retire(key)], as_json)


@distributor.command(name="revoke")
@click.argument("key")
@click.option("--reason", default="revoked by the site", show_default=True,
              help="Why (shown on endpoints that refuse it).")
@json_option
@click.pass_context
def distributor_revoke(ctx: click.Context, key: str, reason: str, as_json: bool) -> None:
    """Revoke a distributor key for good (a leaked key).

    \b
    Examples:
      airseal distributor revoke dist-a --reason "key leaked"
    """
    _outcomes(ctx, [open_appliance().distributor_revoke(key, reason=reason)], as_json)


@distributor.command(name="set-threshold")
@click.argument("threshold", type=click.IntRange(1, 16))
@json_option
@click.pass_context
def distributor_set_threshold(ctx: click.Context, threshold: int, as_json: bool) -> None:
    """How many distinct distributor keys must sign each action (two-person rule; default 1).

    \b
    Examples:
      airseal distributor set-threshold 2
      airseal action approve ACTION_ID --key dist-b
    """
    _outcomes(ctx, [open_appliance().distributor_set_threshold(threshold)], as_json)


@distributor.command(name="list")
@json_option
def distributor_list(as_json: bool) -> None:
    """The distributors of the published policy.

    \b
    Examples:
      airseal distributor list --json
    """
    status = open_appliance().site_status()
    if as_json:
        emit_json({"schemaVersion": 1, "actionThreshold": status.action_threshold,
                   "distributors": status.distributors})
        return
    for d in status.distributors:
        state = "revoked" if d["revoked"] else d["status"]
        click.echo(f"{d['name']:<24} {state:<8} {','.join(d['maySign']):<16} {d['fingerprint']}")
