"""`airseal piv`: a YubiKey's PIV application (the equivalent of ``cosign piv-tool``).

Thin over :mod:`airseal.appliance.signers.piv` and :mod:`airseal.appliance.piv_attestation`;
errors reach the operator through the CLI's ``main``. Register with ``cli.add_command(piv)``.

Secrets never come from argv: PIN, PUK and management keys are read from the environment
(``AIRSEAL_PIN``, ``AIRSEAL_NEW_PIN``, ``AIRSEAL_PUK``, ``AIRSEAL_NEW_PUK``,
``AIRSEAL_MANAGEMENT_KEY``, ``AIRSEAL_NEW_MANAGEMENT_KEY``) or asked for with a hidden prompt.

Tests (and the TUI) can hand the group a connection factory and trust anchors through click's
context object: ``obj={"open_connection": factory, "anchors": TrustAnchors(...)}``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from airseal._internal.cli import emit_json, examples, json_option
from airseal.appliance.cli.options import serial_option, slot_option
from airseal.appliance.errors import PinError, UsageError, YubiKeyNotFound
from airseal.appliance.service import Appliance, ApplianceOptions
from airseal.appliance.service.records import TrustAnchors
from airseal.appliance.service.yubikey import (
    ALGORITHMS,
    MANAGEMENT_KEY_ALGORITHMS,
    PivKeyRef,
    YubiKeyPiv,
    key_fingerprint,
)

PIN_ENV = "AIRSEAL_PIN"
NEW_PIN_ENV = "AIRSEAL_NEW_PIN"
PUK_ENV = "AIRSEAL_PUK"
NEW_PUK_ENV = "AIRSEAL_NEW_PUK"
MANAGEMENT_KEY_ENV = "AIRSEAL_MANAGEMENT_KEY"
NEW_MANAGEMENT_KEY_ENV = "AIRSEAL_NEW_MANAGEMENT_KEY"
RESET_WORD = "RESET"


def _secret(env: str, prompt: str, *, confirm: bool = False) -> str:
    """A secret from ``env`` if set, else a hidden prompt (never echoed, never in argv)."""
    value = os.environ.get(env)
    if value:
        return value
    if not sys.stdin.isatty():
        raise PinError(f"{prompt}: no terminal to ask on", hint=f"set {env} in the environment")
    answer: str = click.prompt(
        prompt, hide_input=True, confirmation_prompt=confirm, err=True, show_default=False
    )
    return answer


def _notice(message: str) -> None:
    click.secho(message, err=True, fg="yellow", bold=True)


def _pin() -> str:
    return _secret(PIN_ENV, "YubiKey PIV PIN")


def _management_key() -> str:
    return _secret(MANAGEMENT_KEY_ENV, "YubiKey PIV management key (hex)")


def _appliance(ctx: click.Context) -> Appliance:
    """The service with the YubiKey and trust anchors tests put in the context object."""
    obj = ctx.obj or {}
    override: Callable[[], Any] | None = obj.get("open_connection")
    anchors: TrustAnchors | None = obj.get("anchors")
    factory = (lambda _serial: override) if override is not None else None
    return Appliance(options=ApplianceOptions(yubikey_factory=factory, attestation_anchors=anchors))


def _yubikey(ctx: click.Context, serial: int | None) -> YubiKeyPiv:
    return _appliance(ctx).yubikey(serial)


def _emit(data: Any) -> None:
    emit_json(data)


@examples(
    'airseal piv info',
    'airseal piv generate-key --slot 9c',
)
@click.group("piv")
def piv() -> None:
    """YubiKey PIV: PIN, PUK, management key, key generation, attestation."""


@examples(
    'airseal piv info',
    'airseal piv info --serial 12345678 --json',
)
@piv.command("info")
@serial_option
@json_option
@click.pass_context
def info_command(ctx: click.Context, serial: int | None, as_json: bool) -> None:
    """Serial, firmware, PIN/PUK tries left, and the slots that hold keys."""
    if serial is None and not (ctx.obj or {}).get("open_connection"):
        devices = _appliance(ctx).yubikeys()
        if not devices:
            raise YubiKeyNotFound("no YubiKey is attached")
        if len(devices) > 1:
            if as_json:
                _emit({"yubikeys": [d.to_dict() for d in devices]})
            else:
                click.echo(f"{len(devices)} YubiKeys are attached; choose one with --serial:")
                for device in devices:
                    state = "" if device.available else "  (in use by another program)"
                    click.echo(f"  {device.describe()}{state}")
            return
        serial = devices[0].serial
    result = _yubikey(ctx, serial).info()
    if as_json:
        _emit(result.to_dict())
        return
    click.echo(f"YubiKey serial:    {result.serial if result.serial is not None else 'unknown'}")
    click.echo(f"Firmware:          {result.firmware}")
    click.echo(f"PIN tries left:    {_tries(result.pin_tries_left, result.pin_tries_total)}")
    click.echo(f"PUK tries left:    {_tries(result.puk_tries_left, result.puk_tries_total)}")
    protected = ", stored on the YubiKey under the PIN" if result.management_key_protected else ""
    click.echo(f"Management key:    {result.management_key_algorithm}{protected}")
    if not result.slots:
        click.echo("Slots:             no keys")
    for slot in result.slots:
        click.echo(
            f"Slot {slot.slot}:           {slot.algorithm or 'certificate only'}, "
            f"PIN {slot.pin_policy or '?'}, touch {slot.touch_policy or '?'}, "
            f"{slot.origin or 'origin unknown'}"
        )
        if slot.public_key_fingerprint:
            click.echo(f"  key SHA-256:     {slot.public_key_fingerprint}")
        if slot.certificate_subject:
            click.echo(f"  certificate:     {slot.certificate_subject}")
    for warning in result.warnings:
        click.secho(f"warning: {warning}", err=True, fg="yellow")


def _tries(left: int | None, total: int | None) -> str:
    if left is None:
        return "unknown"
    return f"{left} of {total}" if total is not None else str(left)


@examples(
    'airseal piv reset',
    'airseal piv reset --serial 12345678 --yes',
)
@piv.command("reset")
@serial_option
@click.option("--yes", is_flag=True, help="Do not ask: erase every PIV key on the YubiKey.")
@click.pass_context
def reset_command(ctx: click.Context, serial: int | None, yes: bool) -> None:
    """Erase the PIV application: keys, certificates, PIN, PUK and management key to defaults."""
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "reset erases every PIV key on the YubiKey and needs a confirmation",
                hint="pass --yes, or run it in a terminal and type the confirmation",
            )
        which = f"YubiKey {serial}" if serial is not None else "the YubiKey"
        typed = click.prompt(
            f"This erases every PIV key and certificate on {which}. Type {RESET_WORD} to go on",
            err=True,
            default="",
            show_default=False,
        )
        if typed != RESET_WORD:
            raise UsageError("reset was not confirmed; nothing was changed")
    _yubikey(ctx, serial).reset(confirm=True)
    click.echo("PIV application reset: PIN 123456, PUK 12345678, default management key.")
    click.echo("Change them now: airseal piv set-pin, set-puk, set-management-key --random")


@examples(
    'airseal piv set-pin',
)
@piv.command("set-pin")
@serial_option
@click.pass_context
def set_pin_command(ctx: click.Context, serial: int | None) -> None:
    """Change the PIN (AIRSEAL_PIN and AIRSEAL_NEW_PIN, or hidden prompts)."""
    old = _secret(PIN_ENV, "Current PIN")
    new = _secret(NEW_PIN_ENV, "New PIN (6-8 characters)", confirm=True)
    _yubikey(ctx, serial).set_pin(old, new)
    click.echo("PIN changed.")


@examples(
    'airseal piv set-puk',
)
@piv.command("set-puk")
@serial_option
@click.pass_context
def set_puk_command(ctx: click.Context, serial: int | None) -> None:
    """Change the PUK (AIRSEAL_PUK and AIRSEAL_NEW_PUK, or hidden prompts)."""
    old = _secret(PUK_ENV, "Current PUK")
    new = _secret(NEW_PUK_ENV, "New PUK (6-8 characters)", confirm=True)
    _yubikey(ctx, serial).set_puk(old, new)
    click.echo("PUK changed.")


@examples(
    'airseal piv unblock-pin',
)
@piv.command("unblock-pin")
@serial_option
@click.pass_context
def unblock_pin_command(ctx: click.Context, serial: int | None) -> None:
    """Set a new PIN with the PUK (AIRSEAL_PUK and AIRSEAL_NEW_PIN, or hidden prompts)."""
    puk = _secret(PUK_ENV, "PUK")
    new = _secret(NEW_PIN_ENV, "New PIN (6-8 characters)", confirm=True)
    _yubikey(ctx, serial).unblock_pin(puk, new)
    click.echo("PIN set; its tries are reset.")


@examples(
    'airseal piv set-management-key --random',
    'airseal piv set-management-key --random --algorithm aes256 --touch',
)
@piv.command("set-management-key")
@serial_option
@click.option(
    "--random",
    "random_key",
    is_flag=True,
    help="Generate a random key and keep it on the YubiKey under the PIN (recommended).",
)
@click.option(
    "--algorithm",
    type=click.Choice(sorted(MANAGEMENT_KEY_ALGORITHMS)),
    help="Default: aes256 (tdes on firmware before 5.4).",
)
@click.option("--touch", is_flag=True, help="Require a touch to use the management key.")
@click.pass_context
def set_management_key_command(
    ctx: click.Context,
    serial: int | None,
    random_key: bool,
    algorithm: str | None,
    touch: bool,
) -> None:
    """Replace the management key (without --random: AIRSEAL_NEW_MANAGEMENT_KEY or a prompt)."""
    new_key = None
    if not random_key:
        new_key = _secret(NEW_MANAGEMENT_KEY_ENV, "New management key (hex)", confirm=True)
    change = _yubikey(ctx, serial).set_management_key(
        pin=_pin,
        random=random_key,
        new_key=new_key,
        algorithm=algorithm,
        require_touch=touch,
        management_key=_management_key,
        notice=_notice,
    )
    where = (
        "stored on the YubiKey, protected by the PIN"
        if change.protected_by_pin
        else "kept by you (not stored on the YubiKey)"
    )
    click.echo(f"Management key set ({change.algorithm}), {where}.")


@examples(
    'airseal piv generate-key --slot 9c',
    'airseal piv generate-key --slot 9a --pin-policy once --touch-policy cached --json',
)
@piv.command("generate-key")
@serial_option
@slot_option
@click.option(
    "--algorithm",
    type=click.Choice(sorted(ALGORITHMS)),
    default="ecdsa-p256",
    show_default=True,
    help="Signing key algorithm.",
)
@click.option(
    "--pin-policy",
    type=click.Choice(["once", "always"]),
    help="When the PIN is needed (default: the slot's; 9c asks before every signature).",
)
@click.option(
    "--touch-policy",
    type=click.Choice(["always", "cached", "never"]),
    help="When a touch is needed (default: never; cached lasts 15 s).",
)
@json_option
@click.pass_context
def generate_key_command(
    ctx: click.Context,
    serial: int | None,
    slot: str,
    algorithm: str,
    pin_policy: str | None,
    touch_policy: str | None,
    as_json: bool,
) -> None:
    """Generate a key on the YubiKey, with a self-signed certificate in the slot."""
    generated = _yubikey(ctx, serial).generate_key(
        pin=_pin,
        slot=slot,
        algorithm=algorithm,
        pin_policy=pin_policy or "default",
        touch_policy=touch_policy or "default",
        management_key=_management_key,
        notice=_notice,
    )
    ref = generated.ref
    if as_json:
        _emit(
            {
                **ref.to_record(),
                "algorithm": generated.algorithm,
                "pin_policy": generated.pin_policy,
                "touch_policy": generated.touch_policy,
                "fingerprint": _fingerprint(ref),
                "certificate_pem": generated.certificate_pem,
            }
        )
        return
    click.echo(f"Generated {generated.algorithm} key in slot {ref.slot} of {ref.describe()}.")
    click.echo(f"PIN policy {generated.pin_policy}, touch policy {generated.touch_policy}.")
    click.echo(f"Key SHA-256: {_fingerprint(ref)}")
    click.echo(ref.public_key_pem, nl=False)


def _fingerprint(ref: PivKeyRef) -> str:
    return key_fingerprint(ref.public_key)


@examples(
    'airseal piv attestation --slot 9c',
    'airseal piv attestation --slot 9c --json',
)
@piv.command("attestation")
@serial_option
@slot_option
@json_option
@click.pass_context
def attestation_command(ctx: click.Context, serial: int | None, slot: str, as_json: bool) -> None:
    """Print the slot's attestation chain and verify it to Yubico's attestation roots.

    Exits 1 when it does not verify: the key is then not proven to come from a genuine YubiKey."""
    yubikey = _yubikey(ctx, serial)
    attested = yubikey.attestation(slot)
    if not as_json:
        click.echo(attested.chain_pem(), nl=False)
    verified = yubikey.verify_attested(attested)
    key = verified.key
    if as_json:
        _emit(
            {
                "verified": True,
                "root": verified.root,
                "chain_pem": verified.chain_pem(),
                "attested": key.to_dict(),
            }
        )
        return
    click.echo(f"Attestation verified to {verified.root}.")
    click.echo(f"  YubiKey serial:  {key.serial}")
    click.echo(f"  firmware:        {key.firmware}")
    click.echo(f"  slot:            {key.slot}")
    click.echo(f"  PIN policy:      {key.pin_policy}")
    click.echo(f"  touch policy:    {key.touch_policy}")
    click.echo(f"  form factor:     {key.form_factor}")
