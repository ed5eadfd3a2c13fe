"""The appliance as both front ends see it: one object per unit of work, one method per use case.

The CLI and the TUI open an :class:`Appliance`, call its methods and show the typed results; they
never reach the database, the signers or the file formats themselves. The home and the database
open on first use and close with the ``with`` block, in the thread that opened them (SQLite
connections stay in their thread: the TUI opens one ``Appliance`` per worker). Heavy modules (the
signing stack, PKCS#11, yubikit, sigstore) load inside the methods that need them, so listing keys
or verifying the audit chain starts fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from airseal.appliance.service.backup import BackupUseCases
from airseal.appliance.service.log import TransparencyLogMethods, WitnessExchangeMethods
from airseal.appliance.service.options import ApplianceOptions
from airseal.appliance.service.results import (
    AuditRow,
    Initialised,
    MediaCheck,
    MediaRepair,
    SettingView,
    TokenTable,
)
from airseal.appliance.service.site import SiteUseCases

if TYPE_CHECKING:
    from datetime import datetime

    import sqlite_utils

    from airseal.appliance.actions import ActionRecord, ActionSpec
    from airseal.appliance.audit import ChainReport
    from airseal.appliance.audit_entries import AuditEntry
    from airseal.appliance.blobs import BlobSignature
    from airseal.appliance.dashboard import DashboardSummary
    from airseal.appliance.enrolment import (
        Basis,
        EnrolledAgent,
        Enrolment,
        ReceiptIdentity,
        Removal,
    )
    from airseal.appliance.evidence.model import EvidenceWritten
    from airseal.appliance.export import ExportRecord, ExportSummary
    from airseal.appliance.home import Home
    from airseal.appliance.intake import StoredFile, VendorSignature
    from airseal.appliance.keystore import KeyRecord
    from airseal.appliance.mounts import MediaMount, SpaceCheck
    from airseal.appliance.prompts import Prompter
    from airseal.appliance.receipts import ReceiptImportReport, ReceiptListing
    from airseal.appliance.service.yubikey import PivKeyRef, YubiKeyPiv
    from airseal.appliance.sigstore_roots import (
        FetchedMirror,
        FileProgress,
        ImportedRoot,
        TrustedRootInUse,
        TrustRootStatus,
    )
    from airseal.appliance.verification import Artifact
    from airseal.trustroot.identity import CertificatePolicy
    from airseal.trustroot.keyless import KeylessResult
    from airseal.trustroot.keys import PublicKey
    from airseal.trustroot.verify import VerifiedBlob

Progress = Callable[[int, int], None]
"""(bytes done, bytes in all) of an export."""
BytesDone = Callable[[int], None]
"""Bytes read so far of a file being hashed, signed or stored."""


class NoPrompter:
    """Answers no question: for work that must never need a password or PIN."""

    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        from airseal.appliance.errors import UsageError

        raise UsageError(f"{prompt}: no one can be asked here")

    def notice(self, message: str) -> None:
        """Nothing to tell: no one is listening."""


class Appliance(SiteUseCases, TransparencyLogMethods, WitnessExchangeMethods, BackupUseCases):
    """The operator's appliance at ``root`` (default: ``$AIRSEAL_HOME`` or the platform's)."""

    def __init__(
        self,
        root: Path | None = None,
        prompter: Prompter | None = None,
        options: ApplianceOptions | None = None,
    ) -> None:
        self.root = root
        self.prompter: Prompter = prompter if prompter is not None else NoPrompter()
        self.options = options or ApplianceOptions()
        self._home: Home | None = None
        self._db: sqlite_utils.Database | None = None

    # -- lifetime ---------------------------------------------------------------------------

    def __enter__(self) -> Appliance:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def home(self) -> Home:
        """The opened home (raises :class:`~airseal.appliance.errors.HomeError` if absent)."""
        if self._home is None:
            from airseal.appliance.home import open_home

            self._home = open_home(self.root)
        return self._home

    @property
    def db(self) -> sqlite_utils.Database:
        if self._db is None:
            from airseal.appliance.db import open_database

            self._db = open_database(self.home)
        return self._db

    def now(self) -> datetime:
        return self.options.clock()

    def _signing(self) -> AbstractContextManager[None]:
        """Sign in the front end's session of unlocked keys (``options.unlocked_keys``)."""
        from airseal.appliance.unlocked_keys import signing_session

        return signing_session(self.options.unlocked_keys)

    def lock_keys(self) -> list[str]:
        """Forget every key unlocked for the session; returns their names."""
        keys = self.options.unlocked_keys
        return keys.lock() if keys is not None else []

    # -- home -------------------------------------------------------------------------------

    def init(self) -> Initialised:
        """Create the home (idempotent); the first creation is the audit log's first entry."""
        from airseal.appliance import audit
        from airseal.appliance.db import SCHEMA_VERSION, open_database
        from airseal.appliance.home import default_home, init_home

        home, created = init_home(self.root or default_home())
        self.close()
        self._home, self._db = home, open_database(home)
        if created:
            audit.record(home, self._db, "init", str(home.root), {"schema": SCHEMA_VERSION})
        return Initialised(home.root, created, home.appliance_id, SCHEMA_VERSION)

    # -- evidence for auditors ---------------------------------------------------------------

    def export_evidence(self, kind: str, value: str, target: Path) -> EvidenceWritten:
        """Evidence of one action (every version), one export, or everything since a date, as
        a self-contained folder at ``target``; the MANIFEST's digest goes into the audit chain."""
        import hashlib

        from airseal.appliance import audit
        from airseal.appliance.evidence.build import build_evidence
        from airseal.appliance.evidence.collect import collect
        from airseal.appliance.evidence.model import EvidenceWritten, Scope
        from airseal.appliance.evidence.write import check_target, write_evidence
        from airseal.appliance.tlog_store import log_info

        scope = Scope(kind, value)  # type: ignore[arg-type]
        check_target(target)
        trusted_root = self.log_trusted_root() if log_info(self.db.conn) else None
        source = collect(self.home, self.db, scope, now=self.now(),
                         log_trusted_root=trusted_root)
        evidence = build_evidence(source)
        written = write_evidence(target, evidence.files)
        digest = hashlib.sha256(evidence.files["MANIFEST"]).hexdigest()
        audit.record(self.home, self.db, "evidence.export", str(target),
                     {"scope": kind, "value": value, "manifestSha256": digest})
        return EvidenceWritten(str(target), scope, len(source.actions), len(source.exports),
                               len(source.receipts), len(evidence.claims), len(evidence.files),
                               written, digest)

    # -- audit ------------------------------------------------------------------------------

    def verify_audit(self) -> ChainReport:
        from airseal.appliance.audit import verify_chain

        return verify_chain(self.home, self.db)

    def audit_log(self, limit: int = 50) -> list[AuditRow]:
        """The newest ``limit`` rows as stored, newest first."""
        rows = self.db.execute(
            "SELECT seq, ts, actor, action, subject, details FROM audit ORDER BY seq DESC LIMIT ?",
            [limit],
        ).fetchall()
        return [AuditRow(*row) for row in rows]

    def audit_entries(self, *, limit: int = 500, search: str | None = None) -> list[AuditEntry]:
        """The newest entries, newest first."""
        from airseal.appliance.audit_entries import recent_entries

        return recent_entries(self.db, limit=limit, search=search)

    # -- keys -------------------------------------------------------------------------------

    def list_keys(self) -> list[KeyRecord]:
        from airseal.appliance.keystore import list_keys

        return list_keys(self.db)

    def get_key(self, name: str) -> KeyRecord:
        from airseal.appliance.keystore import get_key

        return get_key(self.db, name)

    def generate_file_key(self, name: str, *, algorithm: str = "ecdsa-p256") -> KeyRecord:
        from airseal.appliance.keystore import generate_file_key

        return generate_file_key(self.home, self.db, name, self.prompter, algorithm=algorithm)

    def generate_pkcs11_key(
        self, name: str, *, module: str, token: str, label: str | None = None
    ) -> KeyRecord:
        from airseal.appliance.keystore import generate_pkcs11_key

        return generate_pkcs11_key(
            self.home, self.db, name, self.prompter, module=module, token=token, label=label
        )

    def import_file_key(self, name: str, path: Path) -> KeyRecord:
        from airseal.appliance.keystore import import_file_key

        return import_file_key(self.home, self.db, name, path, self.prompter)

    def import_pkcs11_key(
        self, name: str, *, module: str, token: str, label: str, key_id: str | None = None
    ) -> KeyRecord:
        from airseal.appliance.keystore import import_pkcs11_key

        return import_pkcs11_key(
            self.home, self.db, name, self.prompter,
            module=module, token=token, label=label, key_id=key_id,
        )

    def import_piv_key(
        self, name: str, *, slot: str = "9c", serial: int | None = None
    ) -> KeyRecord:
        """Register a YubiKey slot; with a ``yubikey_factory`` option, the key it gives."""
        if self.options.yubikey_factory is not None:
            return self.register_piv_slot(name, serial=serial, slot=slot)
        from airseal.appliance.keystore import import_piv_key

        return import_piv_key(self.home, self.db, name, self.prompter, slot=slot, serial=serial)

    def register_piv_slot(self, name: str, *, serial: int | None, slot: str = "9c") -> KeyRecord:
        """Register the key in ``slot`` of the YubiKey with ``serial`` under ``name``."""
        from airseal.appliance.hardware_keys import register_piv_slot

        return register_piv_slot(
            self.home, self.db, name, self.yubikey(serial).open_connection, slot=slot
        )

    def register_piv_key(self, name: str, ref: PivKeyRef) -> KeyRecord:
        """Record a key just generated on a YubiKey under ``name`` (audited as generated)."""
        from airseal.appliance.keystore import register_key
        from airseal.appliance.signers.hardware import piv_reference

        return register_key(
            self.home, self.db, name, "piv", ref.public_key, piv_reference(ref),
            audit_action="key.generate",
        )

    @staticmethod
    def check_key_name(name: str) -> str:
        """``name`` if it can name a key, else :class:`~airseal.appliance.errors.UsageError`."""
        from airseal.appliance.keystore import check_name

        return check_name(name)

    def public_key_pem(self, name: str) -> str:
        from airseal.appliance.public_keys import public_key_pem

        return public_key_pem(self.db, name)

    def write_public_key(self, name: str, path: Path) -> None:
        """Write ``name``'s public key (PEM SPKI) to ``path`` atomically, as ``key
        export-public -o`` does (not audited, unlike :meth:`export_public_key`)."""
        from airseal._internal.atomic import write_atomic

        write_atomic(path, self.public_key_pem(name).encode("ascii"), mode=0o644)

    def export_public_key(self, name: str, destination: Path) -> Path:
        """Write ``name``'s public key (PEM SPKI, the shape of ``cosign.pub``) to a file."""
        from airseal.appliance.public_keys import export_public_key

        return export_public_key(self.home, self.db, name, destination)

    def known_pkcs11_modules(self) -> list[str]:
        from airseal.appliance.hardware_keys import known_pkcs11_modules

        return known_pkcs11_modules()

    # -- signing and verifying blobs --------------------------------------------------------

    def sign_blob(
        self,
        path: Path,
        key_name: str,
        *,
        signature_path: Path | None = None,
        bundle_path: Path | None = None,
        on_progress: BytesDone | None = None,
    ) -> BlobSignature:
        """Sign ``path`` (streamed); the detached signature and the bundle are written
        atomically to the paths given."""
        from airseal._internal.atomic import write_atomic
        from airseal.appliance.blobs import sign_blob

        with self._signing():
            result = sign_blob(
                self.home, self.db, path, key_name, self.prompter, on_progress=on_progress
            )
        if signature_path:
            write_atomic(signature_path, result.signature_b64)
        if bundle_path:
            write_atomic(bundle_path, result.bundle_json)
        return result

    def verification_key(self, value: str, module: str | None = None) -> tuple[PublicKey, str]:
        """``--key``: a PEM public key file, a PKCS#11 URI (``module`` when the URI names none),
        or the name of a key here (opens the home only then)."""
        from airseal.appliance.blobs import load_key_argument

        return load_key_argument(value, lambda: self.db, module)

    def verify_blob(
        self,
        path: Path,
        key: PublicKey,
        *,
        signature_path: Path | None = None,
        bundle_path: Path | None = None,
        on_progress: BytesDone | None = None,
    ) -> VerifiedBlob:
        from airseal.appliance.blobs import verify_blob

        return verify_blob(
            path, key, signature_path=signature_path, bundle_path=bundle_path,
            on_progress=on_progress,
        )

    def verify_keyless(
        self,
        path: Path,
        bundle: Path,
        *,
        identity: str,
        issuer: str,
        trusted_root: Path | None = None,
    ) -> tuple[str, KeylessResult]:
        """Check a keyless bundle offline; returns the file's SHA-256 (hex) and the outcome."""
        from airseal._internal.atomic import read_capped
        from airseal.appliance import blobs
        from airseal.trustroot.bundle import MAX_BUNDLE_BYTES
        from airseal.trustroot.keyless import verify_keyless_bundle

        root = self.keyless_trusted_root(trusted_root)
        digest, _ = blobs.hash_file(path)
        outcome = verify_keyless_bundle(
            read_capped(bundle, MAX_BUNDLE_BYTES),
            digest,
            identity=identity,
            issuer=issuer,
            trusted_root_json=root.document,
            subject=str(bundle),
        )
        return digest.hex(), outcome

    # -- the Sigstore trust root (keyless) -------------------------------------------------

    def keyless_trusted_root(self, override: Path | None = None) -> TrustedRootInUse:
        """The ``trusted_root.json`` keyless checks use: ``override``, else the newest import in
        the home (when there is a home), else the one packaged with sigstore-python."""
        from airseal.appliance.home import default_home
        from airseal.appliance.sigstore_roots import home_exists, trusted_root_in_use

        has_home = self._home is not None or home_exists(self.root or default_home())
        return trusted_root_in_use(override, (lambda: (self.home, self.db)) if has_home else None)

    def fetch_trust_root(
        self,
        url: str,
        to: Path,
        *,
        pinned_root: Path | None = None,
        on_file: FileProgress | None = None,
    ) -> FetchedMirror:
        """Connected machine: copy and verify the whole TUF repository at ``url`` into ``to``."""
        from airseal.appliance.sigstore_roots import fetch_mirror, read_pinned_root

        root = read_pinned_root(pinned_root) if pinned_root is not None else None
        return fetch_mirror(url, to, now=self.now(), pinned_root=root, on_file=on_file)

    def import_trust_root(
        self, directory: Path, *, pinned_root: Path | None = None
    ) -> ImportedRoot:
        """Air gap: verify a repository copy and make it the root keyless checks use."""
        from airseal.appliance.sigstore_roots import import_mirror

        return import_mirror(
            self.home, self.db, directory, now=self.now(), pinned_root=pinned_root
        )

    def trust_root_status(self) -> TrustRootStatus:
        from airseal.appliance.sigstore_roots import TrustRootStatus, count_imports

        in_use = self.keyless_trusted_root()
        imports = count_imports(self.db) if in_use.origin == "imported" else 0
        return TrustRootStatus(in_use=in_use, imports=imports, now=self.now())

    # -- verifying what others signed (cosign verify-blob[-attestation]) -------------------

    def resolve_artifact(self, value: str) -> Artifact:
        """``FILE``, ``-`` (standard input) or ``sha256:HEX``, hashed once."""
        from airseal.appliance.verification import resolve_artifact

        return resolve_artifact(value)

    @staticmethod
    def certificate_policy(
        identity: str | None,
        issuer: str | None,
        identity_regexp: str | None = None,
        issuer_regexp: str | None = None,
    ) -> CertificatePolicy | None:
        """cosign's four identity flags as one policy (``None`` when none was given: then
        sigstore, which the policy needs, is not even imported)."""
        if identity is issuer is identity_regexp is issuer_regexp is None:
            return None
        from airseal.appliance.verification import certificate_policy

        return certificate_policy(identity, issuer, identity_regexp, issuer_regexp)

    def verify_blob_artifact(
        self,
        artifact: Artifact,
        key: PublicKey,
        *,
        signature_path: Path | None = None,
        bundle_path: Path | None = None,
        on_progress: BytesDone | None = None,
    ) -> VerifiedBlob:
        """``verify-blob --key`` over a file (hashed once, while verifying), standard input or
        a digest."""
        from airseal.appliance.verification import verify_blob_artifact

        return verify_blob_artifact(
            artifact, key, signature_path=signature_path, bundle_path=bundle_path,
            on_progress=on_progress,
        )

    def verify_keyless_artifact(
        self,
        artifact: Artifact,
        bundle: Path,
        policy: CertificatePolicy,
        trusted_root: Path | None = None,
    ) -> KeylessResult:
        """Keyless ``verify-blob``; the root is :meth:`keyless_trusted_root` (``trusted_root``,
        else the newest import, else the packaged one)."""
        from airseal.appliance.verification import verify_keyless_artifact

        root = self.keyless_trusted_root(trusted_root)
        return verify_keyless_artifact(artifact, bundle, policy, root.document)

    def check_bundle_tlog(
        self, bundle: Path, trusted_root: Path | None, *, ignore_tlog: bool
    ) -> str | None:
        """A key-based bundle's log entries: verified, or a plain note that they were not (and
        a refusal when the site's verify.require-tlog demands a verified one)."""
        from airseal.appliance.errors import HomeError
        from airseal.appliance.verification import check_bundle_tlog

        try:
            require = self.setting_flag("verify.require-tlog")
        except HomeError:
            require = False  # no appliance home here: no site policy to apply
        return check_bundle_tlog(
            bundle, trusted_root, ignore_tlog=ignore_tlog, require_tlog=require
        )

    def verify_attestation(
        self,
        artifact: Artifact,
        bundle: Path,
        *,
        key: PublicKey | None = None,
        policy: CertificatePolicy | None = None,
        predicate_type: str | None = None,
        trusted_root: Path | None = None,
    ) -> dict[str, Any]:
        """Verify a DSSE attestation about ``artifact``; returns its JSON description (keyless:
        with the root :meth:`keyless_trusted_root` chose, under ``trustedRoot``)."""
        from airseal.appliance.verification import attestation_json, verify_attestation

        root = self.keyless_trusted_root(trusted_root) if policy is not None else None
        result = verify_attestation(
            artifact, bundle, key=key, policy=policy, predicate_type=predicate_type,
            trusted_root_json=root.document if root is not None else None,
        )
        data = attestation_json(artifact, result)
        if root is not None:
            data["trustedRoot"] = root.to_json()
        return data

    # -- files ------------------------------------------------------------------------------

    def add_file(
        self,
        source: Path,
        vendor: VendorSignature,
        *,
        name: str | None = None,
        on_progress: BytesDone | None = None,
    ) -> StoredFile:
        from dataclasses import replace

        from airseal.appliance.intake import add_file

        if vendor.method == "keyless" and vendor.trusted_root_json is None:
            root = self.keyless_trusted_root(vendor.trusted_root)
            vendor = replace(vendor, trusted_root_json=root.document)
        return add_file(self.home, self.db, source, vendor, name=name, on_progress=on_progress)

    def list_files(self) -> list[StoredFile]:
        from airseal.appliance.intake import list_files

        return list_files(self.db)

    # -- actions ----------------------------------------------------------------------------

    def create_action(self, spec: ActionSpec, key_name: str) -> ActionRecord:
        from airseal.appliance.actions import create_action

        with self._signing():
            return create_action(
                self.home, self.db, spec, key_name, self.prompter, now=self.now()
            )

    def edit_action(self, action_id: str, spec: ActionSpec, key_name: str | None) -> ActionRecord:
        """Sign a new version; fields the spec leaves out keep the signed values."""
        from airseal.appliance.actions import edit_action

        with self._signing():
            return edit_action(
                self.home, self.db, action_id, spec, key_name, self.prompter, now=self.now()
            )

    def revoke_action(self, action_id: str, reason: str) -> int:
        """Revoke every version; returns how many were revoked."""
        from airseal.appliance.actions import revoke_action

        return revoke_action(self.home, self.db, action_id, reason)

    def list_actions(
        self, *, include_revoked: bool = False, all_versions: bool = False
    ) -> list[ActionRecord]:
        from airseal.appliance.actions import list_actions

        return list_actions(self.db, include_revoked=include_revoked, all_versions=all_versions)

    def current_actions(self) -> list[ActionRecord]:
        """What an export would carry now: latest versions, neither revoked nor expired."""
        from airseal.appliance.actions import current_actions

        return current_actions(self.db, self.now())

    def get_action(self, action_id: str, version: int | None = None) -> ActionRecord:
        from airseal.appliance.actions import get_action

        return get_action(self.db, action_id, version)

    # -- export and media -------------------------------------------------------------------

    def export(
        self,
        target: Path,
        key_name: str,
        *,
        action_ids: Sequence[str] | None = None,
        valid_days: int | None = None,
        split_threshold: int | None = None,
        allow_unknown_capacity: bool = False,
        on_progress: Progress | None = None,
        on_phases: Callable[[int, int, int], None] | None = None,
    ) -> ExportSummary:
        """Write the actions (default: every current one) to ``target``, read them back, sign
        the export statement with ``key_name``."""
        from airseal.appliance.export import export_to_media

        with self._signing():
            return export_to_media(
                self.home, self.db, target, key_name, self.prompter,
                action_ids=list(action_ids) if action_ids is not None else None,
                valid_days=valid_days,
                split_threshold=split_threshold,
                allow_unknown_capacity=allow_unknown_capacity,
                on_progress=on_progress,
                now=self.now(),
                on_phases=on_phases,
            )

    def list_exports(self) -> list[ExportRecord]:
        """Every export started here, newest first: written, failed or cancelled."""
        from airseal.appliance.export import list_exports

        return list_exports(self.db)

    def detect_media(self) -> list[MediaMount]:
        """Removable media mounted now."""
        from airseal.appliance.mounts import detect_media

        table = self.options.mount_table
        return detect_media(table() if table else None)

    def check_space(self, target: Path, action_ids: Sequence[str]) -> SpaceCheck:
        """Whether an export of ``action_ids`` fits on ``target``."""
        from airseal.appliance.mounts import check_space

        table = self.options.mount_table
        mountinfo = table() if table else None
        if self.options.capacity_probe is not None:
            return check_space(
                self.db, target, list(action_ids),
                probe=self.options.capacity_probe, mountinfo=mountinfo,
            )
        return check_space(self.db, target, list(action_ids), mountinfo=mountinfo)

    def check_media(self, mount: Path, *, on_progress: Progress | None = None) -> MediaCheck:
        """The courier's check: complete and undamaged? Needs no home and no keys."""
        from airseal.media.check import check_media

        if on_progress is None:
            return MediaCheck(check_media(mount, now=self.now()))
        return MediaCheck(check_media(mount, now=self.now(), on_progress=on_progress))

    def repair_media(self, mount: Path) -> MediaRepair:
        """Repair the media from its PAR2 repair data, then the courier's check."""
        from airseal.media.parity import repair_media

        return MediaRepair(repair_media(mount, now=self.now()))

    # -- receipts ---------------------------------------------------------------------------

    def import_receipts(self, mount: Path) -> ReceiptImportReport:
        from airseal.appliance.receipts import import_receipts

        return import_receipts(self.home, self.db, mount, now=self.now())

    def list_receipts(self) -> ReceiptListing:
        from airseal.appliance.receipts import list_receipts

        return list_receipts(self.db)

    # -- agents -----------------------------------------------------------------------------

    def list_agents(self) -> list[EnrolledAgent]:
        """The agents whose receipts count in fleet status."""
        from airseal.appliance.enrolment import list_agents

        return list_agents(self.db)

    def enroll_agent(
        self,
        agent_id: str,
        key_path: Path,
        *,
        name: str | None = None,
        basis: Basis = "administrator",
    ) -> Enrolment:
        """Enrol an agent with the public key an administrator brought (``agent.pub``)."""
        from airseal.appliance.enrolment import enroll_agent, read_key_file

        return enroll_agent(
            self.home, self.db, agent_id, read_key_file(key_path),
            name=name, basis=basis, now=self.now(), key_subject=str(key_path),
        )

    def receipt_identity(self, receipt: Path) -> ReceiptIdentity:
        """Who a receipt file says wrote it (its signature checked), for the operator to compare
        before :meth:`enroll_from_receipt`."""
        from airseal.appliance.enrolment import receipt_identity

        return receipt_identity(receipt)

    def enroll_from_receipt(
        self, identity: ReceiptIdentity, *, name: str | None = None
    ) -> Enrolment:
        """Enrol the agent and key a receipt carried, as approved by the operator."""
        from airseal.appliance.enrolment import enroll_agent

        return enroll_agent(
            self.home, self.db, identity.agent_id, identity.public_key_pem.encode(),
            name=name or identity.hostname, basis="operator-approved", now=self.now(),
        )

    def remove_agent(self, agent_id: str) -> Removal:
        """Withdraw an agent's enrolment and discard the receipts kept aside for its id."""
        from airseal.appliance.enrolment import remove_agent

        return remove_agent(self.home, self.db, agent_id, now=self.now())

    # -- settings ---------------------------------------------------------------------------

    def settings(self, name: str | None = None) -> dict[str, str]:
        """Every setting's value (or only ``name``'s), in declaration order."""
        from airseal.appliance import settings

        names = [name] if name else list(settings.SETTINGS)
        return {n: settings.get(self.db, n) for n in names}

    def setting_description(self, name: str) -> str:
        from airseal.appliance import settings

        return settings.SETTINGS[name].description

    def setting_views(self) -> list[SettingView]:
        """Every setting with its value, default, allowed values and meaning (for a form)."""
        from airseal.appliance import settings

        return [
            SettingView(s.name, settings.get(self.db, s.name), s.default, s.choices, s.description)
            for s in settings.SETTINGS.values()
        ]

    def setting_int(self, name: str) -> int:
        from airseal.appliance import settings

        return settings.get_int(self.db, name)

    def setting_flag(self, name: str) -> bool:
        from airseal.appliance import settings

        return settings.get_flag(self.db, name)

    def set_setting(self, name: str, value: str) -> None:
        from airseal.appliance import settings

        settings.set_value(self.home, self.db, name, value)

    # -- hardware ---------------------------------------------------------------------------

    def list_tokens(self, module: str) -> TokenTable:
        """What a PKCS#11 module sees; needs no PIN and no home."""
        from airseal.appliance.signers.pkcs11 import list_tokens

        return TokenTable(module, tuple(list_tokens(module)))

    def yubikeys(self) -> list[Any]:
        """The YubiKeys attached now."""
        if self.options.yubikey_lister is not None:
            return self.options.yubikey_lister()
        from airseal.appliance.signers.piv import list_yubikeys

        return list(list_yubikeys())

    def yubikey(self, serial: int | None = None) -> YubiKeyPiv:
        """PIV management of one YubiKey (the only one attached when ``serial`` is None)."""
        from airseal.appliance.service.yubikey import YubiKeyPiv

        if self.options.yubikey_factory is not None:
            return YubiKeyPiv(self.options.yubikey_factory(serial), self.options)
        from airseal.appliance.signers.piv import yubikey

        return YubiKeyPiv(yubikey(serial), self.options)

    # -- dashboard --------------------------------------------------------------------------

    def dashboard(self) -> DashboardSummary:
        from airseal.appliance.dashboard import summarize

        return summarize(self.home, self.db, now=self.now())
