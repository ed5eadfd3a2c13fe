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
    metavar="FILE|URI|NAME",
    help="Public key: a PEM or cosign.pub file, a PKCS#11 URI (pkcs11:token=...;object=...; "
    "see --module), or a name from `airseal key list`.",
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
attestation_bundle_option = click.option(
    "--bundle",
    "attestation_bundle",
    type=_IN_FILE,
    required=True,
    help="The attestation: a Sigstore bundle with a DSSE envelope (in-toto statement), "
    "key-based (with --key) or keyless (with the identity options).",
)
certificate_identity_option = click.option(
    "--certificate-identity",
    metavar="ID",
    help="Keyless: the expected signer identity (certificate SAN), exactly.",
)
certificate_identity_regexp_option = click.option(
    "--certificate-identity-regexp",
    metavar="RE",
    help="Keyless: a regular expression the signer identity must contain a match of "
    "(unanchored, as cosign; write ^...$ to pin the whole value).",
)
certificate_oidc_issuer_option = click.option(
    "--certificate-oidc-issuer", metavar="URL", help="Keyless: the expected OIDC issuer, exactly."
)
certificate_oidc_issuer_regexp_option = click.option(
    "--certificate-oidc-issuer-regexp",
    metavar="RE",
    help="Keyless: a regular expression for the OIDC issuer (unanchored, as cosign).",
)
trusted_root_option = click.option(
    "--trusted-root",
    type=_IN_FILE,
    help="trusted_root.json for keyless bundles and for the transparency-log entries of "
    "key-based ones (keyless default: the newest `airseal trustroot import`, else the "
    "public-good root shipped with sigstore; never fetched).",
)
insecure_ignore_tlog_option = click.option(
    "--insecure-ignore-tlog",
    is_flag=True,
    help="Key-based: do not check the bundle's transparency-log entries (cosign's flag; "
    "said on stderr, and refused when the site requires a verified entry).",
)


def rekor_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--rekor-url`` / ``--rekor-key`` / ``--signing-config``: log in a site's Rekor (v1, or
    v2 where its signing config says so) instead of the embedded log."""
    return _apply(
        function,
        (
            click.option(
                "--rekor-url", metavar="URL",
                help="Log the signature in this Rekor (v1 API) instead of the appliance's "
                "log; its answer is verified before it is stored in the bundle.",
            ),
            click.option(
                "--rekor-key", metavar="KEY",
                help="That Rekor's public key (PEM file or appliance key name); default: the "
                "trusted root's tlogs entry whose baseUrl is --rekor-url.",
            ),
            click.option(
                "--signing-config", metavar="FILE", type=_IN_FILE,
                help="The site's Sigstore signing_config.json (v0.2): its rekorTlogUrls "
                "entry for --rekor-url (or, without it, its first valid Rekor) sets the API: "
                "majorApiVersion 2 logs through Rekor v2. Without it --rekor-url speaks v1.",
            ),
        ),
    )


def _apply(function: Callable[..., Any], options: tuple[Decorator, ...]) -> Callable[..., Any]:
    for option in reversed(options):
        function = option(function)
    return function


def identity_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """cosign's keyless policy flags (exact or regexp identity and issuer) and the root."""
    return _apply(
        function,
        (
            certificate_identity_option,
            certificate_identity_regexp_option,
            certificate_oidc_issuer_option,
            certificate_oidc_issuer_regexp_option,
            trusted_root_option,
        ),
    )


def vendor_signature_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The ways a signature is given to verify-blob and file add, in one order."""
    return _apply(
        function,
        (
            verification_key_option,
            module_option(),
            signature_option,
            bundle_option,
            identity_options,
        ),
    )


def attestation_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """verify-blob-attestation's: the same key and identity flags as verify-blob."""
    return _apply(
        function,
        (attestation_bundle_option, verification_key_option, module_option(), identity_options),
    )


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
