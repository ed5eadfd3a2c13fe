"""Encrypted, signed backups of the appliance home, and restoring one on a fresh appliance.

A backup is four files in one folder (see docs/backup.md)::

    airseal-backup.tar.age             the home as a tar, age-encrypted (X25519 recipients)
    airseal-backup-key.age             the backup's own age identity, encrypted to the passphrase
    airseal-backup.json                the manifest: digests of the two files above, every file in
                                       the tar with its sha256, the audit head, the log's size
                                       and root, the export sequences, the token keys expected
    airseal-backup.json.sigstore.json  a Sigstore bundle over the manifest, by an appliance key
                                       (the commit point: written last)

Encryption is age (age-encryption.org/v1) through pyrage, the Python binding of the Rust
implementation: a specified format with independent implementations (Go ``age`` in Debian can
decrypt a backup with no Airseal installed), no crypto written here. age allows a passphrase
(scrypt) only as a file's sole recipient, so the archive is encrypted to a fresh X25519 identity
made for this backup (plus any ``--recipient``), and that identity is encrypted to the passphrase.

Guarantees:
- **Consistent snapshot.** The database is copied with ``VACUUM INTO`` while a write lock is held,
  and the small mutable files (keys, site repository, config) are copied under the same lock; the
  store, vendor evidence and Sigstore roots are content-addressed and never rewritten.
- **Nothing written before everything is checked.** Restore checks the signature (against a key
  fingerprint the operator confirms), the digests and sizes, decrypts (age authenticates every
  64 KiB chunk, so truncation or tampering fails), checks every file against the signed list, the
  database's integrity, the audit chain, the log's tree and checkpoint, and the facts the manifest
  states, all in a private staging folder beside the target; only then is the staging folder
  renamed into place. Any failure removes the staging folder.
- **No reused export sequence, no forked log.** The backup may be older than the last export, so
  a restore must be told how far the sequences moved: from the newest media (``--media``, whose
  signed export statements carry their sequence and a log checkpoint) or by a gap
  (``--sequence-gap N``); see :func:`plan_sequences`. A medium whose checkpoint is beyond the
  backup's log, or not a prefix of it, refuses the restore: continuing would fork the log.
- **The backup's signature is not logged**: logging it would grow the log after the snapshot, and
  a restore would then fork the log at that entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from airseal._internal.atomic import fsync_dir, read_capped, write_atomic
from airseal.appliance.errors import ApplianceError, PasswordError, UsageError
from airseal.trustroot.errors import VerificationError

if TYPE_CHECKING:
    from airseal.appliance.home import Home
    from airseal.appliance.prompts import Prompter
    from airseal.trustroot.keys import PublicKey

FORMAT = "airseal-backup/1"
ARCHIVE_NAME = "airseal-backup.tar.age"
IDENTITY_NAME = "airseal-backup-key.age"
MANIFEST_NAME = "airseal-backup.json"
BUNDLE_NAME = "airseal-backup.json.sigstore.json"
BACKUP_FILES = (ARCHIVE_NAME, IDENTITY_NAME, MANIFEST_NAME, BUNDLE_NAME)
PASSWORD_ENV = "AIRSEAL_BACKUP_PASSWORD"  # noqa: S105  (the variable's name)

MAX_MANIFEST_BYTES = 32 * 1024 * 1024
MAX_IDENTITY_BYTES = 64 * 1024
MAX_FILES = 1_000_000
MIN_PASSWORD_CHARS = 12

# What a home holds that a backup carries. The database, config and audit head come from the
# snapshot; these folders are copied as they are (keys and site under the snapshot's lock);
# exports/ keeps each export's signed statement (evidence), log/ the witnesses' cosigned checkpoint.
LOCKED_DIRS = ("keys", "site")
CONTENT_DIRS = ("store", "vendor", "sigstore-roots", "exports", "log")
TOP_FILES = ("config.json", "airseal.db", "audit.head")
_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1024 * 1024


class BackupError(ApplianceError):
    title = "Backup"
    check = "backup"


class BackupRefused(BackupError, VerificationError):
    """The backup failed a check: it is damaged, tampered with, or not what it claims."""

    title = "Backup refused"
    hint = "nothing was written; use another copy of the backup"


class KeyNotConfirmed(BackupError, VerificationError):
    title = "Backup signer not confirmed"
    check = "backup.signer"


class RestoreTargetNotEmpty(BackupError):
    title = "Restore target not empty"
    check = "restore.target"
    hint = "restore only into a fresh home: give an empty or new folder with --home"


class SequencePlanRefused(BackupError):
    title = "Export sequence unknown"
    check = "restore.sequence"


# -- the manifest -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupFile:
    path: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class TokenKey:
    name: str
    backend: str
    fingerprint: str
    reference: dict[str, Any]

    def describe(self) -> str:
        where = self.reference.get("token") or self.reference.get("serial") or ""
        slot = self.reference.get("slot") or self.reference.get("label") or ""
        return f"{self.name} ({self.backend} {where} {slot}, fingerprint {self.fingerprint})"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "backend": self.backend, "fingerprint": self.fingerprint,
                "reference": self.reference}


@dataclass(frozen=True)
class LogFacts:
    origin: str
    size: int
    root_hash: str
    public_key_pem: str

    def to_json(self) -> dict[str, Any]:
        return {"origin": self.origin, "size": self.size, "rootHash": self.root_hash,
                "publicKeyPem": self.public_key_pem}


@dataclass(frozen=True)
class Manifest:
    """What a backup says about itself; built by :meth:`from_json` only from well-formed JSON."""

    appliance_id: str
    created: str
    schema_version: int
    archive: BackupFile
    identity: BackupFile
    recipients: tuple[str, ...]
    signer_name: str
    signer_fingerprint: str
    signer_public_key_pem: str
    files: tuple[BackupFile, ...]
    token_keys: tuple[TokenKey, ...]
    export_sequences: dict[str, int]
    audit_entries: int
    audit_head: str
    log: LogFacts | None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "applianceId": self.appliance_id,
            "created": self.created,
            "schemaVersion": self.schema_version,
            "archive": self.archive.to_json(),
            "identity": self.identity.to_json(),
            "recipients": list(self.recipients),
            "signer": {"name": self.signer_name, "fingerprint": self.signer_fingerprint,
                       "publicKeyPem": self.signer_public_key_pem},
            "files": [f.to_json() for f in self.files],
            "tokenKeys": [k.to_json() for k in self.token_keys],
            "exportSequences": [{"keyFingerprint": k, "lastSequence": v}
                                for k, v in sorted(self.export_sequences.items())],
            "audit": {"entries": self.audit_entries, "head": self.audit_head},
            "log": self.log.to_json() if self.log else None,
        }

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, subject: str) -> Manifest:
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError(f"not an {FORMAT} manifest")
            files = tuple(_file(f) for f in doc["files"])
            if len(files) > MAX_FILES or len({f.path for f in files}) != len(files):
                raise ValueError("the file list is too long or names a file twice")
            log = doc["log"]
            manifest = cls(
                appliance_id=_text(doc["applianceId"]),
                created=_text(doc["created"]),
                schema_version=_int(doc["schemaVersion"]),
                archive=_file(doc["archive"]),
                identity=_file(doc["identity"]),
                recipients=tuple(_text(r) for r in doc["recipients"]),
                signer_name=_text(doc["signer"]["name"]),
                signer_fingerprint=_hex64(doc["signer"]["fingerprint"]),
                signer_public_key_pem=_text(doc["signer"]["publicKeyPem"]),
                files=files,
                token_keys=tuple(
                    TokenKey(_text(k["name"]), _text(k["backend"]), _hex64(k["fingerprint"]),
                             dict(k["reference"]))
                    for k in doc["tokenKeys"]
                ),
                export_sequences={_hex64(s["keyFingerprint"]): _int(s["lastSequence"])
                                  for s in doc["exportSequences"]},
                audit_entries=_int(doc["audit"]["entries"]),
                audit_head=_hex64(doc["audit"]["head"]),
                log=None if log is None else LogFacts(
                    _text(log["origin"]), _int(log["size"]), _hex64(log["rootHash"]),
                    _text(log["publicKeyPem"]),
                ),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackupRefused(f"the manifest is malformed ({exc})", subject=subject,
                                check="backup.manifest") from None
        if (manifest.archive.path, manifest.identity.path) != (ARCHIVE_NAME, IDENTITY_NAME):
            raise BackupRefused("the manifest names other files than a backup holds",
                                subject=subject, check="backup.manifest")
        return manifest


def _text(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 65536:
        raise ValueError("a text field is not text")
    return value


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("a number field is not a whole number >= 0")
    return value


def _hex64(value: Any) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise ValueError("a digest or fingerprint is not 64 lowercase hex digits")
    return value


def _file(value: Any) -> BackupFile:
    return BackupFile(_safe_path(_text(value["path"])), _int(value["size"]),
                      _hex64(value["sha256"]))


def _safe_path(path: str) -> str:
    """A relative path of plain components (what a home holds); anything else is refused."""
    parts = path.split("/")
    if not all(_COMPONENT.match(p) for p in parts) or any(p in (".", "..") for p in parts):
        raise ValueError(f"unsafe path {path!r}")
    if len(parts) == 1 and path not in (*TOP_FILES, ARCHIVE_NAME, IDENTITY_NAME):
        raise ValueError(f"unexpected file {path!r}")
    if len(parts) > 1 and parts[0] not in (*LOCKED_DIRS, *CONTENT_DIRS):
        raise ValueError(f"unexpected folder {parts[0]!r}")
    return path


# -- secrets ----------------------------------------------------------------------------------


def backup_password(prompter: Prompter, *, confirm: bool) -> str:
    """``AIRSEAL_BACKUP_PASSWORD``, else a hidden prompt; never an argument."""
    value = os.environ.get(PASSWORD_ENV)
    if value is None:
        try:
            value = prompter.secret("Backup passphrase", confirm=confirm)
        except PasswordError as exc:
            raise PasswordError(exc.detail, hint=f"set {PASSWORD_ENV} in the environment "
                                                 "(never on the command line)") from None
    if confirm and len(value) < MIN_PASSWORD_CHARS:
        raise PasswordError(
            f"a backup passphrase needs at least {MIN_PASSWORD_CHARS} characters",
            hint=f"set {PASSWORD_ENV} or type a longer passphrase",
        )
    if not value:
        raise PasswordError("no backup passphrase given", hint=f"set {PASSWORD_ENV}")
    return value


def parse_recipients(values: tuple[str, ...] | list[str]) -> list[Any]:
    """age X25519 recipients (``age1...``); anything else is a usage error."""
    from pyrage import RecipientError, x25519

    parsed = []
    for value in values:
        try:
            parsed.append(x25519.Recipient.from_str(value))
        except (RecipientError, ValueError):
            raise UsageError(f"--recipient {value[:80]!r} is not an age X25519 public key",
                             hint="give the age1... line `age-keygen` prints") from None
    return parsed


# -- making a backup --------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupResult:
    directory: Path
    manifest: Manifest
    manifest_sha256: str

    def describe(self) -> list[str]:
        m = self.manifest
        lines = [
            f"Backup written to {self.directory}",
            f"  {len(m.files)} files, {m.archive.size} bytes encrypted, audit entry "
            f"{m.audit_entries}, log size {m.log.size if m.log else '-'}",
            f"  signed by key {m.signer_name}, fingerprint {m.signer_fingerprint}",
            "  write this fingerprint down away from the appliance: a restore asks for it "
            "(--expect-key)",
        ]
        lines += [f"  token key (not in the backup): {k.describe()}" for k in m.token_keys]
        return lines

    def to_json(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "schemaVersion": 1, "directory": str(self.directory), "applianceId": m.appliance_id,
            "created": m.created, "files": len(m.files), "archiveBytes": m.archive.size,
            "archiveSha256": m.archive.sha256, "manifestSha256": self.manifest_sha256,
            "signerKey": m.signer_name, "signerFingerprint": m.signer_fingerprint,
            "recipients": list(m.recipients), "auditEntries": m.audit_entries,
            "logSize": m.log.size if m.log else None,
            "tokenKeys": [k.to_json() for k in m.token_keys],
        }


def _sha256_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while n := handle.readinto(buffer):
            digest.update(view[:n])
            size += n
    return digest.hexdigest(), size


def _private_dir(parent: Path, prefix: str) -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def _snapshot(home: Home, stage: Path) -> None:
    """The database (``VACUUM INTO``), config, keys and site, under one write lock."""
    lock = sqlite3.connect(home.database_path, isolation_level=None, timeout=30)
    try:
        lock.execute("BEGIN IMMEDIATE")  # writers wait; WAL readers (VACUUM INTO) go on
        try:
            reader = sqlite3.connect(home.database_path, isolation_level=None, timeout=30)
            try:
                reader.execute("VACUUM INTO ?", [str(stage / "airseal.db")])
            finally:
                reader.close()
            shutil.copy2(home.root / "config.json", stage / "config.json")
            for name in LOCKED_DIRS:
                if (home.root / name).is_dir():
                    shutil.copytree(home.root / name, stage / name, symlinks=True)
        finally:
            lock.execute("ROLLBACK")
    finally:
        lock.close()


def _walk(root: Path, top: str) -> Iterator[tuple[str, Path]]:
    base = root / top
    if not base.is_dir():
        return
    for directory, dirs, files in os.walk(base):
        dirs.sort()
        for name in sorted(files):
            path = Path(directory) / name
            if path.is_symlink() or not path.is_file() or name.startswith("."):
                continue  # temp files of atomic writes, and links, are not home content
            yield path.relative_to(root).as_posix(), path


def create_backup(
    home: Home,
    db: Any,
    target: Path,
    key_name: str,
    prompter: Prompter,
    *,
    recipients: tuple[str, ...] = (),
    now: datetime | None = None,
) -> BackupResult:
    """Snapshot, pack, encrypt and sign the home into ``target`` (new or empty)."""
    import pyrage
    from pyrage import passphrase, x25519

    from airseal.appliance import audit
    from airseal.appliance.db import SCHEMA_VERSION
    from airseal.appliance.home import Home as HomeType
    from airseal.appliance.keystore import get_key, list_keys, open_signer
    from airseal.trustroot.bundle import bundle_to_json, message_signature_bundle
    from airseal.trustroot.keys import spki_pem

    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{target} is not an empty folder",
                         hint="give a new or empty folder: a backup never overwrites files")
    record = get_key(db, key_name)
    extra = parse_recipients(recipients)
    password = backup_password(prompter, confirm=True)
    now = now or datetime.now(UTC)
    _remove_leftovers(home.root, ".backup-")
    stage = _private_dir(home.root, ".backup-")
    try:
        _snapshot(home, stage)
        staged_home = HomeType(root=stage, appliance_id=home.appliance_id)
        conn = sqlite3.connect(stage / "airseal.db", isolation_level=None)
        try:
            last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            (stage / "audit.head").write_text(f"{last[0]} {last[1]}\n" if last else "")
            facts = _database_facts(conn)
        finally:
            conn.close()
        report = _verify_chain(staged_home)
        if not report.ok:
            raise BackupError(
                f"the audit chain is broken ({report.problems[0].problem})",
                hint="`airseal audit verify` names the problem; a backup of a broken chain "
                     "would not restore",
            )
        files: list[tuple[str, Path]] = []
        for name in TOP_FILES:
            files.append((name, stage / name))
        for name in LOCKED_DIRS:
            files += list(_walk(stage, name))
        for name in CONTENT_DIRS:
            files += list(_walk(home.root, name))
        tar_path = stage / "home.tar"
        listed: list[BackupFile] = []
        with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
            for rel, path in files:
                digest, size = _sha256_file(path)
                info = tarfile.TarInfo(rel)
                info.size, info.mode, info.mtime = size, 0o600, int(path.stat().st_mtime)
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
                listed.append(BackupFile(rel, size, digest))
        identity = x25519.Identity.generate()
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        archive_tmp = target / f".{ARCHIVE_NAME}.tmp"
        with open(tar_path, "rb") as source, \
                os.fdopen(os.open(archive_tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                          "wb") as sink:
            pyrage.encrypt_io(source, sink, [identity.to_public(), *extra])
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(archive_tmp, target / ARCHIVE_NAME)
        identity_bytes = passphrase.encrypt(str(identity).encode() + b"\n", password)
        write_atomic(target / IDENTITY_NAME, identity_bytes, mode=0o600)
        archive_sha, archive_size = _sha256_file(target / ARCHIVE_NAME)
        keys = list_keys(db)
        manifest = Manifest(
            appliance_id=home.appliance_id,
            created=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            schema_version=SCHEMA_VERSION,
            archive=BackupFile(ARCHIVE_NAME, archive_size, archive_sha),
            identity=BackupFile(IDENTITY_NAME, len(identity_bytes),
                                hashlib.sha256(identity_bytes).hexdigest()),
            recipients=tuple(str(r) for r in [identity.to_public(), *extra]),
            signer_name=record.name,
            signer_fingerprint=record.fingerprint,
            signer_public_key_pem=spki_pem(record.public_key).decode(),
            files=tuple(listed),
            token_keys=tuple(TokenKey(k.name, k.backend, k.fingerprint, k.reference)
                             for k in keys if k.backend != "file"),
            export_sequences=facts.sequences,
            audit_entries=report.entries,
            audit_head=report.head,
            log=facts.log,
        )
        manifest_bytes = manifest.to_bytes()
        manifest_digest = hashlib.sha256(manifest_bytes).digest()
        with open_signer(home, record, prompter) as signer:
            if signer.algorithm.prehashed:
                signature = signer.sign_digest(manifest_digest)
            else:
                signature = signer.sign_message(manifest_bytes)
            bundle = bundle_to_json(
                message_signature_bundle(signer.public_key, manifest_digest, signature))
        write_atomic(target / MANIFEST_NAME, manifest_bytes, mode=0o600)
        write_atomic(target / BUNDLE_NAME, bundle, mode=0o600)  # the commit point
        with suppress(OSError):
            fsync_dir(target)
    except BaseException:
        # the folder was empty: whatever carries a backup file's name is ours, and half a backup
        # is worse than none (a wrong key password, a full stick, Ctrl-C)
        for name in (*BACKUP_FILES, f".{ARCHIVE_NAME}.tmp"):
            with suppress(OSError):
                (target / name).unlink()
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    audit.record(home, db, "backup", str(target), {
        "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(), "key": record.name,
        "files": len(listed), "audit_entries": manifest.audit_entries,
        "log_size": manifest.log.size if manifest.log else None,
        "recipients": len(extra),
    })
    return BackupResult(target, manifest, hashlib.sha256(manifest_bytes).hexdigest())


@dataclass(frozen=True)
class _DatabaseFacts:
    sequences: dict[str, int]
    log: LogFacts | None
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)


def _database_facts(conn: sqlite3.Connection) -> _DatabaseFacts:
    """Sequences, the verified log (tree recomputed, checkpoint checked) and keys."""
    from airseal.appliance.tlog_store import TransparencyLog, log_info

    sequences = {str(k): int(v) for k, v in
                 conn.execute("SELECT key_fingerprint, last_sequence FROM export_sequences")}
    keys = {
        str(row[0]): {"name": row[1], "backend": row[2], "reference": json.loads(row[3]),
                      "public_key_pem": row[4]}
        for row in conn.execute(
            "SELECT fingerprint, name, backend, reference, public_key_pem FROM keys")
    }
    log = None
    info = log_info(conn)
    if info is not None:
        latest = TransparencyLog(conn).verify()
        log = LogFacts(info.origin, latest.checkpoint.size, latest.checkpoint.root_hash.hex(),
                       info.public_key_pem)
    return _DatabaseFacts(sequences, log, keys)


def _verify_chain(home: Home) -> Any:
    from airseal.appliance.audit import verify_chain

    conn = sqlite3.connect(home.database_path, isolation_level=None)
    try:
        import sqlite_utils

        return verify_chain(home, sqlite_utils.Database(conn))
    finally:
        conn.close()


# -- checking a backup ------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedBackup:
    """A backup whose signature, digests, decryption and contents all checked out."""

    directory: Path
    manifest: Manifest
    manifest_sha256: str
    key_confirmed_by: str
    """``--expect-key`` or ``registered here`` (the key is one of this appliance's)."""

    def describe(self) -> list[str]:
        m = self.manifest
        lines = [
            f"Backup {self.directory} verified: signature, digests, decryption and all "
            f"{len(m.files)} files",
            f"  appliance {m.appliance_id}, made {m.created}",
            f"  signed by {m.signer_name} {m.signer_fingerprint} ({self.key_confirmed_by})",
            f"  audit chain: {m.audit_entries} entries verified, head {m.audit_head[:16]}",
            f"  log: {f'size {m.log.size}, tree and checkpoint verified' if m.log else 'none'}",
        ]
        lines += [f"  expects token key: {k.describe()}" for k in m.token_keys]
        return lines

    def to_json(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "schemaVersion": 1, "directory": str(self.directory), "verified": True,
            "applianceId": m.appliance_id, "created": m.created, "files": len(m.files),
            "manifestSha256": self.manifest_sha256, "signerKey": m.signer_name,
            "signerFingerprint": m.signer_fingerprint, "keyConfirmedBy": self.key_confirmed_by,
            "auditEntries": m.audit_entries, "auditHead": m.audit_head,
            "logSize": m.log.size if m.log else None,
            "tokenKeys": [k.to_json() for k in m.token_keys],
        }


def _normalise_fingerprint(value: str) -> str:
    text = value.strip().lower().removeprefix("sha256:").replace(":", "")
    if not _HEX64.match(text):
        raise UsageError("--expect-key takes the signer's full fingerprint (64 hex digits)",
                         hint="`airseal key list` and the backup's output show it")
    return text


def read_signed_manifest(
    directory: Path, *, expect_key: str | None, known_keys: set[str] | None = None
) -> tuple[Manifest, str, str]:
    """The manifest, its sha256 and how its signer was confirmed: the signature must verify
    with the key the manifest names, and that key must be ``expect_key`` or among
    ``known_keys`` (this appliance's fingerprints). Reads two small files; writes nothing."""
    from airseal.trustroot.bundle import MAX_BUNDLE_BYTES, parse_bundle
    from airseal.trustroot.keys import fingerprint, load_public_key
    from airseal.trustroot.verify import verify_blob_bundle

    directory = Path(directory)
    expected = _normalise_fingerprint(expect_key) if expect_key is not None else None
    for name in BACKUP_FILES:
        if not (directory / name).is_file():
            raise BackupRefused(f"{name} is missing", subject=str(directory),
                                check="backup.complete",
                                hint="a backup without its signature file did not finish; "
                                     "use another copy")
    manifest_bytes = read_capped(directory / MANIFEST_NAME, MAX_MANIFEST_BYTES)
    bundle_bytes = read_capped(directory / BUNDLE_NAME, MAX_BUNDLE_BYTES)
    manifest = Manifest.from_json(manifest_bytes, str(directory / MANIFEST_NAME))
    key: PublicKey = load_public_key(manifest.signer_public_key_pem.encode(),
                                     subject=str(directory / MANIFEST_NAME))
    if fingerprint(key) != manifest.signer_fingerprint:
        raise BackupRefused("the manifest's signer key does not have the fingerprint it states",
                            subject=str(directory / MANIFEST_NAME), check="backup.signer")
    digest = hashlib.sha256(manifest_bytes).digest()
    try:
        bundle = parse_bundle(bundle_bytes, subject=str(directory / BUNDLE_NAME))
        verify_blob_bundle(key, bundle, digest, message=manifest_bytes,
                           subject=str(directory / BUNDLE_NAME))
    except VerificationError as exc:
        raise BackupRefused(f"the manifest's signature does not verify ({exc.detail})",
                            subject=str(directory / BUNDLE_NAME),
                            check="backup.signature") from None
    if expected is not None:
        if expected != manifest.signer_fingerprint:
            raise KeyNotConfirmed(
                f"the backup is signed by {manifest.signer_fingerprint}, not by the expected "
                f"{expected}",
                subject=str(directory),
                hint="this is not the backup you expect (or the fingerprint was mistyped); "
                     "nothing was written",
            )
        confirmed = "expected key"
    elif known_keys is not None and manifest.signer_fingerprint in known_keys:
        confirmed = "a key of this appliance"
    else:
        raise KeyNotConfirmed(
            f"the backup is signed by key {manifest.signer_name} with fingerprint "
            f"{manifest.signer_fingerprint}, which nothing here confirms",
            subject=str(directory),
            hint="compare that fingerprint with the one written down when the backup was made "
                 "(or `airseal key list` on the old appliance) and, if they match, run again "
                 "with --expect-key FINGERPRINT; nothing was written",
        )
    return manifest, digest.hex(), confirmed


def _check_digest(directory: Path, item: BackupFile) -> None:
    path = directory / item.path
    digest, size = _sha256_file(path)
    if size != item.size:
        raise BackupRefused(f"{item.path} has {size} bytes, the manifest says {item.size} "
                            "(truncated or extended)", subject=str(path), check="backup.digest")
    if digest != item.sha256:
        raise BackupRefused(f"{item.path} has sha256 {digest}, the manifest says {item.sha256}",
                            subject=str(path), check="backup.digest")


def _decrypt_identity(directory: Path, manifest: Manifest, password: str) -> Any:
    from pyrage import DecryptError, IdentityError, passphrase, x25519

    data = read_capped(directory / IDENTITY_NAME, MAX_IDENTITY_BYTES)
    try:
        text = passphrase.decrypt(data, password).decode("ascii").strip()
    except (DecryptError, OSError, UnicodeDecodeError):
        raise PasswordError("the backup passphrase does not open this backup",
                            subject=str(directory / IDENTITY_NAME), check="backup.passphrase",
                            hint=f"check {PASSWORD_ENV} or the passphrase typed; nothing was "
                                 "written") from None
    try:
        identity = x25519.Identity.from_str(text)
    except (IdentityError, ValueError):
        raise BackupRefused("the backup key file does not hold an age identity",
                            subject=str(directory / IDENTITY_NAME)) from None
    if str(identity.to_public()) != manifest.recipients[0]:
        raise BackupRefused("the backup key is not the archive's first recipient",
                            subject=str(directory / IDENTITY_NAME))
    return identity


def _decrypt_and_unpack(directory: Path, manifest: Manifest, identity: Any, stage: Path) -> None:
    """Decrypt the archive (streamed) and unpack exactly the files the manifest lists."""
    import pyrage

    tar_path = stage / ".home.tar"
    try:
        with open(directory / ARCHIVE_NAME, "rb") as source, open(tar_path, "wb") as sink:
            pyrage.decrypt_io(source, sink, [identity])
    except (pyrage.DecryptError, OSError) as exc:
        raise BackupRefused(f"the archive does not decrypt ({exc})",
                            subject=str(directory / ARCHIVE_NAME),
                            check="backup.decrypt") from None
    expected = {f.path: f for f in manifest.files}
    seen: set[str] = set()
    try:
        with tarfile.open(tar_path, "r:") as tar:
            for member in tar:
                item = expected.get(member.name)
                if item is None or member.name in seen or not member.isreg():
                    raise BackupRefused(f"the archive holds {member.name!r}, which the manifest "
                                        "does not list (or lists once, as a file)",
                                        subject=str(directory / ARCHIVE_NAME),
                                        check="backup.contents")
                if member.size != item.size:
                    raise BackupRefused(f"{member.name}: {member.size} bytes in the archive, "
                                        f"{item.size} in the manifest",
                                        subject=str(directory / ARCHIVE_NAME),
                                        check="backup.contents")
                content = tar.extractfile(member)
                assert content is not None
                try:
                    _write_checked(content, stage / member.name, item)
                except OSError as exc:  # a path that is both a file and a folder, say
                    raise BackupRefused(f"{member.name} cannot be unpacked ({exc.strerror})",
                                        subject=str(directory / ARCHIVE_NAME),
                                        check="backup.contents") from None
                seen.add(member.name)
    except tarfile.TarError as exc:
        raise BackupRefused(f"the archive is not a readable tar ({exc})",
                            subject=str(directory / ARCHIVE_NAME),
                            check="backup.contents") from None
    finally:
        tar_path.unlink(missing_ok=True)
    missing = sorted(set(expected) - seen)
    if missing:
        raise BackupRefused(f"the archive lacks {len(missing)} listed file(s), e.g. {missing[0]}",
                            subject=str(directory / ARCHIVE_NAME), check="backup.contents")


def _write_checked(source: IO[bytes], path: Path, item: BackupFile) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = hashlib.sha256()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as sink:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            sink.write(chunk)
        sink.flush()
        os.fsync(sink.fileno())
    if digest.hexdigest() != item.sha256:
        raise BackupRefused(f"{item.path} does not have the sha256 the manifest lists",
                            subject=item.path, check="backup.contents")


def _check_staged_home(stage: Path, manifest: Manifest) -> _DatabaseFacts:
    """The unpacked home says what the manifest says: config, database integrity and schema,
    the whole audit chain, the log's tree and checkpoint, sequences and keys."""
    from airseal.appliance.db import SCHEMA_VERSION
    from airseal.appliance.errors import HomeError
    from airseal.appliance.home import open_home

    def refuse(detail: str, check: str) -> BackupRefused:
        return BackupRefused(detail, subject=str(stage.name), check=check)

    try:
        home = open_home(stage)
    except HomeError:
        raise refuse("the backup's config.json is damaged", "backup.contents") from None
    if home.appliance_id != manifest.appliance_id:
        raise refuse("the backup's config names another appliance than its manifest",
                     "backup.contents")
    conn = sqlite3.connect(f"file:{stage / 'airseal.db'}?mode=ro", uri=True,
                           isolation_level=None)
    try:
        try:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise refuse(f"the database does not open ({exc})", "backup.database") from None
        if integrity != "ok":
            raise refuse(f"the database fails its integrity check ({integrity})",
                         "backup.database")
        if version != manifest.schema_version or version > SCHEMA_VERSION:
            raise refuse(f"the database has schema {version}; the manifest says "
                         f"{manifest.schema_version}, this airseal reads up to {SCHEMA_VERSION}",
                         "backup.database")
        try:
            facts = _database_facts(conn)
        except VerificationError as exc:
            raise refuse(f"the transparency log does not verify ({exc.detail})",
                         "backup.log") from None
    finally:
        conn.close()
    report = _verify_chain(home)
    if not report.ok or (report.entries, report.head) != (manifest.audit_entries,
                                                          manifest.audit_head):
        problem = report.problems[0].problem if report.problems else "its head differs"
        raise refuse(f"the audit chain does not verify to the manifest's head ({problem})",
                     "backup.audit")
    if facts.sequences != manifest.export_sequences:
        raise refuse("the export sequences differ from the manifest's", "backup.sequence")
    if (facts.log.to_json() if facts.log else None) != (
        manifest.log.to_json() if manifest.log else None
    ):
        raise refuse("the transparency log differs from the manifest's", "backup.log")
    if manifest.signer_fingerprint not in facts.keys:
        raise refuse("the backup was signed by a key this appliance does not hold",
                     "backup.signer")
    for fp, key in facts.keys.items():
        if key["backend"] == "file" and not (stage / "keys" / key["reference"]["path"]).is_file():
            raise refuse(f"the key file of {key['name']} is missing", "backup.contents")
        if key["backend"] != "file" and fp not in {t.fingerprint for t in manifest.token_keys}:
            raise refuse(f"token key {key['name']} is not listed in the manifest",
                         "backup.contents")
    return facts


def _remove_leftovers(parent: Path, prefix: str) -> None:
    """Staging folders a crash left behind (they hold a decrypted home): ours by name."""
    for leftover in parent.glob(f"{prefix}*"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)


@contextmanager
def _staging(parent: Path, prefix: str) -> Iterator[Path]:
    _remove_leftovers(parent, prefix)
    stage = _private_dir(parent, prefix)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def verify_backup(
    directory: Path,
    prompter: Prompter,
    *,
    expect_key: str | None = None,
    known_keys: set[str] | None = None,
    scratch: Path | None = None,
) -> CheckedBackup:
    """Every check a restore makes, in a temporary folder that is removed afterwards."""
    import tempfile

    manifest, manifest_sha, confirmed = read_signed_manifest(
        directory, expect_key=expect_key, known_keys=known_keys)
    _check_digest(directory, manifest.archive)
    _check_digest(directory, manifest.identity)
    identity = _decrypt_identity(directory, manifest, backup_password(prompter, confirm=False))
    with tempfile.TemporaryDirectory(prefix="airseal-backup-verify-", dir=scratch) as tmp:
        stage = Path(tmp) / "home"
        stage.mkdir(mode=0o700)
        _decrypt_and_unpack(directory, manifest, identity, stage)
        _check_staged_home(stage, manifest)
    return CheckedBackup(Path(directory), manifest, manifest_sha, confirmed)


# -- restoring --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediumFacts:
    """What one export medium proves: the sequence its key reached, and a log checkpoint."""

    mount: Path
    key_fingerprint: str
    sequence: int
    checkpoint_size: int | None
    checkpoint_root: bytes | None


@dataclass(frozen=True)
class SequencePlan:
    """The last sequence each key is treated as having used after the restore."""

    before: dict[str, int]
    after: dict[str, int]
    gap: int
    media: tuple[MediumFacts, ...]

    def to_json(self) -> list[dict[str, Any]]:
        return [{"keyFingerprint": k, "backupSequence": self.before.get(k, 0),
                 "nextSequence": v + 1} for k, v in sorted(self.after.items())]


def read_medium(mount: Path, facts: _DatabaseFacts, appliance_id: str) -> MediumFacts:
    """The export on a medium, its statement verified with the appliance key that signed it
    (from the backup), and its log checkpoint checked against the backup's log."""
    from airseal.errors import AirsealError
    from airseal.media.reader import DirectorySource, read_export_bundle
    from airseal.media.statement import read_export_statement
    from airseal.trustroot.bundle import parse_bundle
    from airseal.trustroot.keys import load_public_key
    from airseal.trustroot.verify import verify_dsse_bundle

    subject = str(mount)
    try:
        data = read_export_bundle(DirectorySource(Path(mount)))
        bundle = parse_bundle(data, subject=subject)
        raw = json.loads(data)
        unverified = json.loads(_dsse_payload(raw))
        fp = _hex64(unverified["predicate"]["distributor"])
    except (ValueError, KeyError, TypeError, AirsealError) as exc:
        raise SequencePlanRefused(f"no readable export statement on the medium ({exc})",
                                  subject=subject) from None
    key = facts.keys.get(fp)
    if key is None:
        raise SequencePlanRefused("the medium was signed by a key the backup does not hold: "
                                  "it is not from this appliance", subject=subject)
    public = load_public_key(key["public_key_pem"].encode(), subject=subject)
    try:
        statement = verify_dsse_bundle(public, bundle, subject=subject)
        predicate = read_export_statement(statement, subject=subject).predicate
    except VerificationError as exc:
        raise SequencePlanRefused(f"the medium's export statement does not verify ({exc.detail})",
                                  subject=subject) from None
    if predicate.appliance_id != appliance_id:
        raise SequencePlanRefused("the medium was written by another appliance", subject=subject)
    point = _medium_checkpoint(raw, facts, subject)
    return MediumFacts(Path(mount), fp, predicate.sequence,
                       point.size if point else None, point.root_hash if point else None)


def _dsse_payload(raw: dict[str, Any]) -> bytes:
    import base64

    return base64.b64decode(raw["dsseEnvelope"]["payload"], validate=True)


def _medium_checkpoint(raw: dict[str, Any], facts: _DatabaseFacts, subject: str) -> Any:
    """The checkpoint the medium's statement carries, signed by the backup's log key; one beyond
    the backup's log means entries were logged after the backup, and continuing would fork the
    log endpoints follow."""
    from airseal.trustroot.keys import load_public_key
    from airseal.trustroot.tlog.checkpoint import verify_checkpoint

    entries = raw.get("verificationMaterial", {}).get("tlogEntries") or []
    if not entries:
        return None
    if facts.log is None:
        raise SequencePlanRefused("the medium carries a log entry but the backup has no log",
                                  subject=subject)
    try:
        note = entries[0]["inclusionProof"]["checkpoint"]["envelope"]
        point = verify_checkpoint(
            note, key=load_public_key(facts.log.public_key_pem.encode()),
            name=facts.log.origin, origin=facts.log.origin)
    except (KeyError, TypeError, IndexError, VerificationError) as exc:
        raise SequencePlanRefused(f"the medium's log checkpoint does not verify ({exc})",
                                  subject=subject) from None
    if point.size > facts.log.size:
        raise BackupRefused(
            f"the medium shows the log at size {point.size}, the backup holds {facts.log.size} "
            "entries: what was logged after the backup is lost, and continuing would fork the "
            "log endpoints follow",
            subject=subject, check="restore.log",
            hint="restore a newer backup (make one after every export); nothing was written",
        )
    return point


def _check_medium_root(stage: Path, medium: MediumFacts) -> None:
    """The medium's checkpoint root must be the backup's tree root at that size."""
    from airseal.appliance.tlog_store import TransparencyLog

    if medium.checkpoint_size is None:
        return
    conn = sqlite3.connect(f"file:{stage / 'airseal.db'}?mode=ro", uri=True)
    try:
        root = TransparencyLog(conn).root(medium.checkpoint_size)
    finally:
        conn.close()
    if root != medium.checkpoint_root:
        raise BackupRefused(
            f"the medium's log checkpoint (size {medium.checkpoint_size}) is not a prefix of the "
            "backup's log: the log was forked or the medium is from another log",
            subject=str(medium.mount), check="restore.log",
            hint="keep the medium as evidence; nothing was written",
        )


def plan_sequences(
    facts: _DatabaseFacts, media: list[MediumFacts], gap: int | None
) -> SequencePlan:
    """The last sequence each key is treated as having used, so that none is ever reused.

    A key whose newest export medium is given continues right after max(backup, medium): the
    signed statement on the medium is the evidence. Every other key that could have exported
    since the backup (any key not retired) skips ``gap`` numbers; without a gap such a key
    refuses the restore, naming it. With neither media nor a gap nothing is known: refused.
    """
    if gap is None and not media:
        raise UsageError(
            "restore needs to know how far the export sequences moved since the backup",
            hint="give the newest export media with --media DIR, or skip ahead with "
                 "--sequence-gap N (see docs/backup.md)",
        )
    seen: dict[str, int] = {}
    for medium in media:
        seen[medium.key_fingerprint] = max(seen.get(medium.key_fingerprint, 0), medium.sequence)
    active = {fp for fp, key in facts.keys.items() if not key["reference"].get("retired")}
    uncovered = (set(facts.sequences) | active) - set(seen)
    if gap is None and uncovered:
        names = sorted(facts.keys[fp]["name"] if fp in facts.keys else fp[:16] for fp in uncovered)
        raise SequencePlanRefused(
            f"no medium shows the newest export of key(s) {', '.join(names)}, which may have "
            "exported after the backup",
            hint="bring their newest media too, or add --sequence-gap N for the keys no medium "
                 "covers",
        )
    after = {fp: max(facts.sequences.get(fp, 0), last) for fp, last in seen.items()}
    after.update({fp: facts.sequences.get(fp, 0) + (gap or 0) for fp in uncovered})
    return SequencePlan(dict(facts.sequences), after, gap or 0, tuple(media))


@dataclass(frozen=True)
class RestoreResult:
    home: Path
    backup: CheckedBackup
    plan: SequencePlan
    audit_seq: int

    def describe(self) -> list[str]:
        m = self.backup.manifest
        lines = [
            f"Restored appliance {m.appliance_id} (backup of {m.created}) into {self.home}",
            f"  audit chain continues at entry {self.audit_seq} (restore recorded)",
            f"  log continues at size {m.log.size}" if m.log else "  no transparency log",
        ]
        for item in self.plan.to_json():
            lines.append(f"  key {item['keyFingerprint'][:16]}: next export sequence "
                         f"{item['nextSequence']} (backup: {item['backupSequence']})")
        if m.token_keys:
            lines.append("  token keys expected (not in the backup; attach them):")
            lines += [f"    {k.describe()}" for k in m.token_keys]
        return lines

    def to_json(self) -> dict[str, Any]:
        m = self.backup.manifest
        return {
            "schemaVersion": 1, "home": str(self.home), "applianceId": m.appliance_id,
            "backupCreated": m.created, "manifestSha256": self.backup.manifest_sha256,
            "signerFingerprint": m.signer_fingerprint,
            "keyConfirmedBy": self.backup.key_confirmed_by, "auditSeq": self.audit_seq,
            "logSize": m.log.size if m.log else None, "sequenceGap": self.plan.gap,
            "media": [str(x.mount) for x in self.plan.media],
            "sequences": self.plan.to_json(),
            "tokenKeys": [k.to_json() for k in m.token_keys],
        }


def check_restore_target(target: Path) -> None:
    """A fresh home only: absent or an empty folder."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise RestoreTargetNotEmpty(f"{target} is not a folder", subject=str(target))
    if target.is_dir() and any(target.iterdir()):
        raise RestoreTargetNotEmpty(f"{target} is not empty: restore never overwrites a home",
                                    subject=str(target))


def restore_backup(
    directory: Path,
    target: Path,
    prompter: Prompter,
    *,
    expect_key: str | None,
    media: list[Path] | None = None,
    sequence_gap: int | None = None,
    now: datetime | None = None,
) -> RestoreResult:
    """Verify everything, then restore into ``target`` (absent or empty) with one rename."""
    from airseal.appliance import audit
    from airseal.appliance.db import open_database
    from airseal.appliance.home import open_home

    target = Path(target).absolute()
    if sequence_gap is None and not media:
        plan_sequences(_DatabaseFacts({}, None), [], None)  # the usage error, before any work
    if sequence_gap is not None and not 1 <= sequence_gap <= 1_000_000_000:
        raise UsageError("--sequence-gap must be between 1 and 1000000000")
    check_restore_target(target)
    manifest, manifest_sha, confirmed = read_signed_manifest(directory, expect_key=expect_key)
    _check_digest(directory, manifest.archive)
    _check_digest(directory, manifest.identity)
    identity = _decrypt_identity(directory, manifest, backup_password(prompter, confirm=False))
    target.parent.mkdir(parents=True, exist_ok=True)
    with _staging(target.parent, f".{target.name}.restore-") as stage:
        _decrypt_and_unpack(directory, manifest, identity, stage)
        facts = _check_staged_home(stage, manifest)
        read = [read_medium(m, facts, manifest.appliance_id) for m in media or []]
        for medium in read:
            _check_medium_root(stage, medium)
        plan = plan_sequences(facts, read, sequence_gap)
        home = open_home(stage)
        db = open_database(home)
        try:
            conn = db.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                for fp, last in plan.after.items():
                    conn.execute("INSERT OR REPLACE INTO export_sequences "
                                 "(key_fingerprint, last_sequence) VALUES (?, ?)", [fp, last])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            seq = audit.record(home, db, "restore", str(target), {
                "manifest_sha256": manifest_sha, "backup_created": manifest.created,
                "backup_audit_head": manifest.audit_head, "signer": manifest.signer_fingerprint,
                "sequence_gap": plan.gap, "media": len(plan.media),
                "sequences": {fp[:16]: last + 1 for fp, last in sorted(plan.after.items())},
                "log_size": manifest.log.size if manifest.log else None,
            }, now=now)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()
        os.chmod(stage, 0o700)
        if target.is_dir():
            target.rmdir()  # empty, checked above
        os.rename(stage, target)
        with suppress(OSError):
            fsync_dir(target.parent)
    checked = CheckedBackup(Path(directory), manifest, manifest_sha, confirmed)
    return RestoreResult(target, checked, plan, seq)

