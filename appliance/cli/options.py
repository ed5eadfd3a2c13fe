"""One definition per option that several `airseal` commands share, so that the same flag has the
same name, type and help text everywhere (tests/appliance/test_cli_help.py checks it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

MODULE_ENV = "AIRSEAL_PKCS11_MODULE"
SERIAL_ENV = "AIRSEAL_YUBIKEY_SERIAL"

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

_IN_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def signing_key_option(*, required: bool) -> Decorator:
    """``--key NAME``: the key that signs (sign-blob, action create/edit, export)."""
    return click.option(
        "--key",
        "key_name",
        required=required,
        metavar="NAME",
        help="Signing key: a name from `airseal key list`.",
    )


verification_key_option = click.option(
    "--key",
    "key_arg",
    metavar="FILE|NAME",
    help="Public key: a PEM file, or a name from `airseal key list`.",
)
signature_option = click.option(
    "--signature",
    type=_IN_FILE,
    help="A cosign detached signature (base64), checked with --key.",
)
bundle_option = click.option(
    "--bundle",
    type=_IN_FILE,
    help="A Sigstore bundle: key-based (with --key) or keyless (with the identity options).",
)
certificate_identity_option = click.option(
    "--certificate-identity", help="Keyless: the expected signer identity (certificate SAN)."
)
certificate_oidc_issuer_option = click.option(
    "--certificate-oidc-issuer", help="Keyless: the expected OIDC issuer URL."
)
trusted_root_option = click.option(
    "--trusted-root",
    type=_IN_FILE,
    help="Keyless: trusted_root.json (default: the newest `airseal trustroot import`, else "
    "the public-good root shipped with sigstore; never fetched).",
)


def vendor_signature_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The ways a signature is given to verify-blob and file add, in one order."""
    for option in reversed(
        (
            verification_key_option,
            signature_option,
            bundle_option,
            certificate_identity_option,
            certificate_oidc_issuer_option,
            trusted_root_option,
        )
    ):
        function = option(function)
    return function


def module_option(*, required: bool = False) -> Decorator:
    return click.option(
        "--module",
        required=required,
        envvar=MODULE_ENV,
        metavar="PATH",
        help=f"PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so (or set {MODULE_ENV}).",
    )


pkcs11_option = click.option(
    "--pkcs11", is_flag=True, help="The key is on a PKCS#11 token (give --module and --token)."
)
token_option = click.option(
    "--token", help="Token label or serial (needed when several tokens are attached)."
)
token_label_option = click.option(
    "--label", "key_label", help="Key label on the token (key generate: default NAME)."
)
slot_option = click.option(
    "--slot", default="9c", show_default=True, help="PIV slot (9a, 9c, 9d, 9e, 82-95)."
)
serial_option = click.option(
    "--serial",
    type=int,
    envvar=SERIAL_ENV,
    help=f"The YubiKey to use, by serial (or set {SERIAL_ENV}); needed with several attached.",
)
