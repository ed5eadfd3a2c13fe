"""The `airseal` subcommands of the foundation: init, audit, key, sign-blob, verify-blob,
verify-blob-attestation.

Each command parses arguments, calls one `appliance` service and prints its result; no crypto,
SQL or file formats live here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from airseal._internal.cli import examples, json_option
from airseal._internal.times import normalise_timestamp
from airseal.appliance.cli import cli, exit_codes
from airseal.appliance.cli.options import (
    attestation_options,
    insecure_ignore_tlog_option,
    module_option,
    pkcs11_option,
    rekor_options,
    serial_option,
    signing_key_option,
    slot_option,
    token_label_option,
    token_option,
    vendor_signature_options,
)
from airseal.appliance.cli.session import appliance_without_home, open_appliance
from airseal.appliance.cli.ui import (
    byte_progress,
    emit_json,
    file_size,
    stderr_console,
    table_lines,
)
from airseal.appliance.errors import UsageError
from airseal.appliance.service.records import KEY_ALGORITHMS

if TYPE_CHECKING:
    from airseal.appliance.service.records import KeyRecord


@examples(
    'airseal init',
    'AIRSEAL_HOME=/srv/airseal airseal init --json',
)
@cli.command()
@json_option
def init(as_json: bool) -> None:
    """Create the appliance home ($AIRSEAL_HOME, else the platform data dir)."""
    result = appliance_without_home().init()
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo("\n".join(result.describe()))


# --- audit -------------------------------------------------------------------------------------


@examples(
    'airseal audit verify',
    'airseal audit list --limit 20',
)
@cli.group(name="audit")
def audit_group() -> None:
    """The hash-chained audit log of every operator action."""


@examples(
    'airseal audit verify',
    'airseal audit verify --json',
)
@audit_group.command(name="verify")
@json_option
@click.pass_context
def audit_verify(ctx: click.Context, as_json: bool) -> None:
    """Check the whole chain; names every edited, deleted or reordered row (exit 1 if any)."""
    report = open_appliance().verify_audit()
    if as_json:
        emit_json(report.to_dict())
    elif report.ok:
        click.echo(f"Audit chain OK: {report.entries} entries, head {report.head[:16]}")
    else:
        for problem in report.problems:
            click.echo(f"audit: {problem.problem}", err=True)
        click.echo(f"Audit chain BROKEN: {len(report.problems)} problem(s)", err=True)
    if not report.ok:
        ctx.exit(exit_codes.VERIFICATION_FAILED)


@examples(
    'airseal audit list',
    'airseal audit list --limit 200 --json',
)
@audit_group.command(name="list")
@click.option("--limit", default=50, show_default=True, help="Newest entries to show.")
@json_option
def audit_list(limit: int, as_json: bool) -> None:
    """Show the newest audit entries."""
    rows = open_appliance().audit_log(limit)
    if as_json:
        emit_json([{**row.to_json(), "details": _details(row.details)} for row in rows])
        return
    if not rows:
        click.echo("The audit log is empty.")
        return
    click.echo("\n".join(table_lines(
        ("SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT", "DETAILS"),
        [(str(r.seq), normalise_timestamp(r.ts), r.actor, r.action, r.subject, r.details)
         for r in reversed(rows)],
    )))


def _details(text: str) -> object:
    """An audit row's recorded details as JSON (they are stored as canonical JSON text)."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


# --- keys --------------------------------------------------------------------------------------


@examples(
    'airseal key generate ops',
    'airseal key list',
)
@cli.group(name="key")
def key_group() -> None:
    """Signing keys: encrypted files, PKCS#11 tokens, YubiKey PIV slots."""


@examples(
    'airseal key generate ops',
    'airseal key generate ops-rsa --algorithm rsa-3072',
    'airseal key generate hsm --pkcs11 --module /usr/lib/softhsm/libsofthsm2.so --token airseal',
)
@key_group.command(name="generate")
@click.argument("name")
@click.option("--algorithm", type=click.Choice(KEY_ALGORITHMS), default="ecdsa-p256",
              show_default=True, help="Signing key algorithm (file keys; token keys are EC P-256).")
@pkcs11_option
@module_option()
@token_option
@token_label_option
@json_option
def key_generate(name: str, algorithm: str, pkcs11: bool, module: str | None, token: str | None,
                 key_label: str | None, as_json: bool) -> None:
    """Generate a key: an encrypted file (cosign format, scrypt N=65536) or on a PKCS#11 token.

    File keys take their password from COSIGN_PASSWORD, else it is asked twice. Token PINs come
    from AIRSEAL_PIN, else a hidden prompt. YubiKey slots: `airseal piv generate-key`.
    """
    appliance = open_appliance()
    if pkcs11:
        if not module or not token:
            raise UsageError("--pkcs11 needs --module and --token")
        record = appliance.generate_pkcs11_key(name, module=module, token=token, label=key_label)
    else:
        if module or token or key_label:
            raise UsageError("--module, --token and --label go with --pkcs11")
        record = appliance.generate_file_key(name, algorithm=algorithm)
    _print_record(record, as_json, "Generated")


@examples(
    'airseal key import vendor cosign.key',
    'airseal key import hsm --pkcs11 --module /usr/lib/softhsm/libsofthsm2.so \\',
    '    --token airseal --label hsm',
    'airseal key import yk --piv --slot 9c',
)
@key_group.command(name="import")
@click.argument("name")
@click.argument("path", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pkcs11_option
@module_option()
@token_option
@token_label_option
@click.option("--key-id", help="CKA_ID (hex) when several token keys share the label.")
@click.option("--piv", is_flag=True, help="Register a YubiKey PIV slot.")
@slot_option
@serial_option
@json_option
def key_import(name: str, path: Path | None, pkcs11: bool, module: str | None,
               token: str | None, key_label: str | None, key_id: str | None, piv: bool,
               slot: str, serial: int | None, as_json: bool) -> None:
    """Import a key file, or register a token key or YubiKey slot under NAME.

    PATH: a cosign encrypted key or a PEM RSA/ECDSA/Ed25519 key (PKCS#1, PKCS#8, SEC1),
    re-encrypted in cosign's format; passwords from COSIGN_PASSWORD, else asked.
    """
    appliance = open_appliance()
    if sum((path is not None, pkcs11, piv)) != 1:
        raise UsageError("give exactly one of PATH, --pkcs11 or --piv")
    if pkcs11:
        if not (module and token and key_label):
            raise UsageError("--pkcs11 needs --module, --token and --label")
        record = appliance.import_pkcs11_key(name, module=module, token=token, label=key_label,
                                             key_id=key_id)
    elif piv:
        record = appliance.import_piv_key(name, slot=slot, serial=serial)
    else:
        assert path is not None
        record = appliance.import_file_key(name, path)
    _print_record(record, as_json, "Imported")


@examples(
    'airseal key export-public ops',
    'airseal key export-public ops -o /media/usb/ops.pub',
)
@key_group.command(name="export-public")
@click.argument("name")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to a file instead of stdout.",
)
def key_export_public(name: str, output: Path | None) -> None:
    """Print the public key as PEM SPKI (the shape of cosign.pub)."""
    appliance = open_appliance()
    if output is None:
        click.echo(appliance.public_key_pem(name), nl=False)
    else:
        appliance.write_public_key(name, output)
        click.echo(f"Wrote {output}", err=True)


@examples(
    "airseal key retire dist-a",
    "airseal key retire dist-a --json",
)
@key_group.command(name="retire")
@click.argument("name")
@json_option
def key_retire(name: str, as_json: bool) -> None:
    """Stop a key from signing anything new (what it signed stays verifiable).

    Endpoints stop trusting it only through the site policy: `airseal distributor retire NAME`.
    """
    record = open_appliance().retire_key(name)
    if as_json:
        emit_json({"schemaVersion": 1, "name": record.name, "retired": True})
        return
    click.echo(f"Retired key {record.name}: it signs nothing new")


@examples(
    'airseal key list',
    'airseal key list --json',
)
@key_group.command(name="list")
@json_option
def key_list(as_json: bool) -> None:
    """List the keys this appliance holds."""
    records = open_appliance().list_keys()
    if as_json:
        emit_json([r.to_dict() for r in records])
        return
    if not records:
        click.echo("No keys. Create one with `airseal key generate NAME`.")
        return
    click.echo("\n".join(table_lines(
        ("NAME", "BACKEND", "ALGORITHM", "FINGERPRINT"),
        [(r.name, r.backend, r.algorithm, r.fingerprint) for r in records],
    )))


def _print_record(record: KeyRecord, as_json: bool, verb: str) -> None:
    if as_json:
        emit_json(record.to_dict())
    else:
        click.echo(f"{verb} {record.algorithm} key {record.name} ({record.backend})")
        click.echo(f"  fingerprint {record.fingerprint}")


# --- sign / verify -----------------------------------------------------------------------------


@examples(
    'airseal sign-blob tool.tar.gz --key ops',
    'airseal sign-blob tool.tar.gz --key ops --bundle tool.sigstore.json',
    'airseal sign-blob tool.tar.gz --key ops --output-signature tool.sig --json',
    'airseal sign-blob tool.tar.gz --key ops --bundle tool.sigstore.json \\',
    '    --rekor-url https://rekor.site.example --rekor-key rekor.pub',
    'airseal sign-blob tool.tar.gz --key ops --bundle tool.sigstore.json \\',
    '    --rekor-url https://rekor2.site.example --signing-config signing_config.json',
)
@cli.command(name="sign-blob")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@signing_key_option(required=True)
@click.option(
    "--output-signature",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write cosign's detached signature (base64 DER).",
)
@click.option(
    "--bundle",
    "bundle_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a Sigstore bundle v0.3 to this file.",
)
@rekor_options
@json_option
def sign_blob(
    file: Path, key_name: str, output_signature: Path | None, bundle_out: Path | None,
    rekor_url: str | None, rekor_key: str | None, signing_config: Path | None, as_json: bool,
) -> None:
    """Sign FILE (streamed: any size, constant memory)."""
    bundle = bundle_out
    appliance = open_appliance()
    with appliance.using_rekor(rekor_url, rekor_key, signing_config), \
            byte_progress(f"hash {file.name}", file_size(file)) as advance:
        result = appliance.sign_blob(
            file, key_name, signature_path=output_signature, bundle_path=bundle,
            on_progress=advance,
        )
    if as_json:
        emit_json(
            {
                "file": str(file),
                "sha256": result.sha256,
                "size": result.size,
                "key": key_name,
                "fingerprint": result.key_fingerprint,
                "signature": result.signature_b64.decode(),
                "signature_file": str(output_signature) if output_signature else None,
                "bundle_file": str(bundle) if bundle else None,
            }
        )
        return
    if not output_signature and not bundle:
        click.echo(result.signature_b64.decode())
    else:
        for target in (output_signature, bundle):
            if target:
                stderr_console().print(f"Wrote {target}")


@examples(
    'airseal verify-blob tool.tar.gz --key ops.pub --signature tool.sig',
    'airseal verify-blob tool.tar.gz --key ops --bundle tool.sigstore.json --json',
    'airseal verify-blob tool.tar.gz --key vendor.pub --bundle tool.sigstore.json \\',
    '    --trusted-root site_trusted_root.json',
    'airseal verify-blob tool.tar.gz --key vendor.pub --bundle tool.sigstore.json \\',
    '    --insecure-ignore-tlog',
    'airseal verify-blob tool.tar.gz --signature tool.sig \\',
    "    --key 'pkcs11:token=Vendor;object=release?module-path=/usr/lib/softhsm/libsofthsm2.so'",
    'airseal verify-blob - --key vendor.pub --bundle tool.sigstore.json < tool.tar.gz',
    'airseal verify-blob tool.tar.gz --bundle tool.sigstore.json \\',
    '    --certificate-identity dev@example.com --certificate-oidc-issuer https://github.com/login/oauth',
    'airseal verify-blob sha256:a7dd...94da --bundle tool.sigstore.json \\',
    "    --certificate-identity-regexp '^https://github\\.com/acme/' \\",
    '    --certificate-oidc-issuer https://token.actions.githubusercontent.com',
)
@cli.command(name="verify-blob")
@click.argument("file", metavar="FILE")
@vendor_signature_options
@insecure_ignore_tlog_option
@json_option
def verify_blob(
    file: str,
    key_arg: str | None,
    module: str | None,
    signature: Path | None,
    bundle: Path | None,
    certificate_identity: str | None,
    certificate_identity_regexp: str | None,
    certificate_oidc_issuer: str | None,
    certificate_oidc_issuer_regexp: str | None,
    trusted_root: Path | None,
    insecure_ignore_tlog: bool,
    as_json: bool,
) -> None:
    """Verify FILE offline; prints `Verified OK` (exit 0) or what failed (exit 1).

    FILE is a path, - (standard input) or sha256:HEX (the artifact's digest). An attestation
    (DSSE bundle) is verified with `airseal verify-blob-attestation` instead.
    """
    appliance = appliance_without_home()
    policy = appliance.certificate_policy(
        certificate_identity, certificate_oidc_issuer,
        certificate_identity_regexp, certificate_oidc_issuer_regexp,
    )
    if policy is not None:
        if key_arg or signature or not bundle:
            raise UsageError(
                "keyless verification takes --bundle and the identity options "
                "(and no --key or --signature)"
            )
        root = appliance.keyless_trusted_root(trusted_root)
        click.echo(root.describe(), err=True)
        artifact = appliance.resolve_artifact(file)
        outcome = appliance.verify_keyless_artifact(artifact, bundle, policy, trusted_root)
        result: dict[str, object] = {
            "schemaVersion": 1,
            "verified": True,
            "file": artifact.label,
            "sha256": outcome.sha256,
            "identity": outcome.identity,
            "issuer": outcome.issuer,
            "trustedRoot": root.to_json(),
        }
    else:
        if not key_arg:
            raise UsageError(
                "give --key, or the keyless identity options (--certificate-identity or "
                "--certificate-identity-regexp, and --certificate-oidc-issuer or "
                "--certificate-oidc-issuer-regexp)"
            )
        key, label = appliance.verification_key(key_arg, module)
        artifact = appliance.resolve_artifact(file)
        if artifact.path is not None:
            with byte_progress(f"hash {artifact.path.name}", file_size(artifact.path)) as advance:
                verified = appliance.verify_blob_artifact(
                    artifact, key, signature_path=signature, bundle_path=bundle,
                    on_progress=advance,
                )
        else:
            verified = appliance.verify_blob_artifact(
                artifact, key, signature_path=signature, bundle_path=bundle
            )
        if bundle is not None:
            _tlog_note(
                appliance.check_bundle_tlog(
                    bundle, trusted_root, ignore_tlog=insecure_ignore_tlog
                )
            )
        result = {
            "schemaVersion": 1,
            "verified": True,
            "file": artifact.label,
            "sha256": verified.sha256,
            "key": label,
            "fingerprint": verified.key_fingerprint,
            "algorithm": verified.algorithm.label,
            "uncheckedTlogEntries": verified.unchecked_tlog_entries,
        }
    if as_json:
        emit_json(result)
    else:
        click.echo("Verified OK")


@examples(
    'airseal verify-blob-attestation tool.tar.gz --bundle tool.intoto.sigstore.json \\',
    '    --key vendor.pub --type slsaprovenance1',
    'airseal verify-blob-attestation sha256:59ed...2ad7 --bundle pkg.sigstore.json \\',
    "    --certificate-identity-regexp '^https://github\\.com/acme/' \\",
    '    --certificate-oidc-issuer https://token.actions.githubusercontent.com',
    'airseal verify-blob-attestation payload/setup.exe \\',
    '    --bundle actions/ID/action.sigstore.json --key distributor.pub --json',
)
@cli.command(name="verify-blob-attestation")
@click.argument("file", metavar="FILE")
@attestation_options
@click.option(
    "--type", "predicate_type", metavar="TYPE",
    help="Required predicate type: a URI, or one of cosign's names (custom, slsaprovenance, "
    "slsaprovenance02, slsaprovenance1, spdx, spdxjson, cyclonedx, link, vuln, openvex).",
)
@insecure_ignore_tlog_option
@json_option
def verify_blob_attestation(
    file: str,
    attestation_bundle: Path,
    key_arg: str | None,
    module: str | None,
    certificate_identity: str | None,
    certificate_identity_regexp: str | None,
    certificate_oidc_issuer: str | None,
    certificate_oidc_issuer_regexp: str | None,
    trusted_root: Path | None,
    predicate_type: str | None,
    insecure_ignore_tlog: bool,
    as_json: bool,
) -> None:
    """Verify an attestation about FILE offline; prints `Verified OK` (exit 0) or what failed.

    The bundle's signature must hold (with --key, or keyless with the identity options), FILE's
    SHA-256 must be the digest of one of the statement's subjects, and with --type the
    statement's predicate type must be TYPE. FILE is a path, - (standard input) or sha256:HEX.
    An action's bundle (actions/ID/action.sigstore.json) verifies against its payload too.
    """
    bundle = attestation_bundle
    appliance = appliance_without_home()
    policy = appliance.certificate_policy(
        certificate_identity, certificate_oidc_issuer,
        certificate_identity_regexp, certificate_oidc_issuer_regexp,
    )
    if policy is not None and key_arg:
        raise UsageError("give --key or the keyless identity options, not both")
    if policy is None and not key_arg:
        raise UsageError(
            "give --key, or the keyless identity options (--certificate-identity or "
            "--certificate-identity-regexp, and --certificate-oidc-issuer or "
            "--certificate-oidc-issuer-regexp)"
        )
    key = appliance.verification_key(key_arg, module)[0] if key_arg else None
    if policy is not None:
        click.echo(appliance.keyless_trusted_root(trusted_root).describe(), err=True)
    artifact = appliance.resolve_artifact(file)
    result = appliance.verify_attestation(
        artifact, bundle, key=key, policy=policy, predicate_type=predicate_type,
        trusted_root=trusted_root,
    )
    if key is not None:
        _tlog_note(
            appliance.check_bundle_tlog(bundle, trusted_root, ignore_tlog=insecure_ignore_tlog)
        )
    if as_json:
        emit_json(result)
    else:
        click.echo("Verified OK")


def _tlog_note(note: str | None) -> None:
    if note is not None:
        click.echo(f"Note: {note}", err=True)
