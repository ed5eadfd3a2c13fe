"""The appliance's signing keys: registered by name, whatever backend holds them.

File keys live encrypted in cosign's format under ``<home>/keys/NAME.key`` (never unencrypted on
disk: decryption happens in memory at signing time). Hardware keys (PKCS#11, YubiKey PIV) are
registered by a reference that holds no secret. :func:`open_signer` returns a
:class:`airseal.trustroot.signer.Signer` and is the only place that knows which backend signs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from airseal._internal.atomic import write_atomic
from airseal.appliance import audit
from airseal.appliance.errors import KeyExists, KeyNotFound, KeyRetired, UsageError
from airseal.appliance.home import Home
from airseal.appliance.prompts import PASSWORD_ENV, Prompter, key_password
from airseal.appliance.unlocked_keys import current_session
from airseal.trustroot.cosign_keys import encrypt_cosign_key, load_private_key
from airseal.trustroot.errors import WrongPassword
from airseal.trustroot.keys import (
    PrivateKey,
    PublicKey,
    fingerprint,
    key_algorithm,
    key_hint,
    load_public_key,
    spki_pem,
)
from airseal.trustroot.signer import PrivateKeySigner, Signer

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

GENERATORS: dict[str, Callable[[], PrivateKey]] = {
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ecdsa-p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "rsa-3072": lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072),
    "rsa-4096": lambda: rsa.generate_private_key(public_exponent=65537, key_size=4096),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


@dataclass(frozen=True)
class KeyRecord:
    name: str
    backend: str
    algorithm: str
    fingerprint: str
    hint: str
    public_key_pem: str
    reference: dict[str, Any]
    created: str

    @property
    def public_key(self) -> PublicKey:
        return load_public_key(self.public_key_pem.encode(), subject=f"key {self.name}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backend": self.backend,
            "algorithm": self.algorithm,
            "fingerprint": self.fingerprint,
            "hint": self.hint,
            "created": self.created,
            "reference": self.reference,
        }


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(
            f"key name {name!r} is not allowed",
            hint="use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name


def _record_from_row(row: dict[str, Any]) -> KeyRecord:
    return KeyRecord(**{**row, "reference": json.loads(row["reference"])})


def list_keys(db: sqlite_utils.Database) -> list[KeyRecord]:
    return [_record_from_row(r) for r in db["keys"].rows_where(order_by="name")]


def get_key(db: sqlite_utils.Database, name: str) -> KeyRecord:
    rows = list(db["keys"].rows_where("name = ?", [name]))
    if not rows:
        raise KeyNotFound(f"no key named {name!r}", subject=name)
    return _record_from_row(rows[0])


def register_key(
    home: Home,
    db: sqlite_utils.Database,
    name: str,
    backend: str,
    public_key: PublicKey,
    reference: dict[str, Any],
    *,
    audit_action: str,
) -> KeyRecord:
    """Record a key (any backend) in the database and the audit log."""
    check_name(name)
    if list(db["keys"].rows_where("name = ?", [name])):
        raise KeyExists(f"a key named {name!r} exists", subject=name)
    record = KeyRecord(
        name=name,
        backend=backend,
        algorithm=key_algorithm(public_key).label,
        fingerprint=fingerprint(public_key),
        hint=key_hint(public_key),
        public_key_pem=spki_pem(public_key).decode(),
        reference=reference,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    db.table("keys").insert({**record.__dict__, "reference": json.dumps(reference, sort_keys=True)})
    audit.record(
        home,
        db,
        audit_action,
        name,
        {"backend": backend, "algorithm": record.algorithm, "fingerprint": record.fingerprint},
    )
    return record


def _store_file_key(
    home: Home,
    db: sqlite_utils.Database,
    name: str,
    key: PrivateKey,
    password: bytes,
    audit_action: str,
    details: dict[str, Any] | None = None,
) -> KeyRecord:
    check_name(name)
    if list(db["keys"].rows_where("name = ?", [name])):
        raise KeyExists(f"a key named {name!r} exists", subject=name)
    path = home.keys_dir / f"{name}.key"
    try:
        write_atomic(path, encrypt_cosign_key(key, password), mode=0o600, exclusive=True)
    except FileExistsError:
        raise KeyExists(
            f"{path} exists (not registered: remove it by hand)", subject=name
        ) from None
    return register_key(
        home,
        db,
        name,
        "file",
        key.public_key(),
        {"path": path.name, **(details or {})},
        audit_action=audit_action,
    )


def generate_file_key(
    home: Home,
    db: sqlite_utils.Database,
    name: str,
    prompter: Prompter,
    *,
    algorithm: str = "ecdsa-p256",
) -> KeyRecord:
    check_name(name)
    if algorithm not in GENERATORS:
        raise UsageError(f"unknown algorithm {algorithm!r}", hint=f"one of {', '.join(GENERATORS)}")
    password = key_password(prompter, f"Password for new key {name}", confirm=True)
    key = GENERATORS[algorithm]()
    return _store_file_key(home, db, name, key, password, "key.generate")


def import_file_key(
    home: Home, db: sqlite_utils.Database, name: str, source: Path, prompter: Prompter
) -> KeyRecord:
    """Import a cosign or plain PEM private key, re-encrypted in cosign's format."""
    check_name(name)
    pem = Path(source).read_bytes()
    from airseal.trustroot.cosign_keys import COSIGN_LABEL, SIGSTORE_LABEL, pem_label

    label = pem_label(pem)
    encrypted = label in (SIGSTORE_LABEL, COSIGN_LABEL, "ENCRYPTED PRIVATE KEY") or (
        b"Proc-Type: 4,ENCRYPTED" in pem
    )
    source_password = (
        key_password(prompter, f"Password of {Path(source).name}") if encrypted else None
    )
    key = load_private_key(pem, source_password, subject=str(source))
    new_password = source_password or key_password(
        prompter, f"Password to protect key {name}", confirm=True
    )
    return _store_file_key(
        home, db, name, key, new_password, "key.import", {"imported_from": Path(source).name}
    )


def generate_pkcs11_key(
    home: Home, db: sqlite_utils.Database, name: str, prompter: Prompter,
    *, module: str, token: str, label: str | None = None,
) -> KeyRecord:
    """Generate a non-extractable EC P-256 key on a PKCS#11 token and register it."""
    from airseal.appliance.signers.hardware import pkcs11_pin_provider, pkcs11_reference
    from airseal.appliance.signers.pkcs11 import generate_key

    check_name(name)
    if list(db["keys"].rows_where("name = ?", [name])):
        raise KeyExists(f"a key named {name!r} exists", subject=name)
    ref = generate_key(module, token=token, label=label or name,
                       pin_provider=pkcs11_pin_provider(prompter, token))
    return register_key(home, db, name, "pkcs11", ref.public_key(), pkcs11_reference(ref),
                        audit_action="key.generate")


def import_pkcs11_key(
    home: Home, db: sqlite_utils.Database, name: str, prompter: Prompter,
    *, module: str, token: str, label: str, key_id: str | None = None,
) -> KeyRecord:
    """Register an existing token key (found by label, or by CKA_ID when labels repeat)."""
    from airseal.appliance.signers.hardware import pkcs11_pin_provider, pkcs11_reference
    from airseal.appliance.signers.pkcs11 import find_key

    check_name(name)
    ref = find_key(module, token=token, label=label, key_id=key_id,
                   pin_provider=pkcs11_pin_provider(prompter, token))
    return register_key(home, db, name, "pkcs11", ref.public_key(), pkcs11_reference(ref),
                        audit_action="key.import")


def import_piv_key(
    home: Home, db: sqlite_utils.Database, name: str, prompter: Prompter,
    *, slot: str = "9c", serial: int | None = None,
) -> KeyRecord:
    """Register the key in a YubiKey PIV slot (made first with `airseal piv generate-key`)."""
    from airseal.appliance.signers.hardware import piv_reference
    from airseal.appliance.signers.piv import read_key, yubikey

    check_name(name)
    ref = read_key(yubikey(serial), slot)
    return register_key(home, db, name, "piv", ref.public_key, piv_reference(ref),
                        audit_action="key.import")


def retire_key(home: Home, db: sqlite_utils.Database, name: str) -> KeyRecord:
    """Mark a key retired: :func:`open_signer` refuses it from now on. Kept in the key's
    reference (no schema change); audited."""
    record = get_key(db, name)
    if record.reference.get("retired"):
        return record
    when = datetime.now(UTC).isoformat(timespec="seconds")
    reference = {**record.reference, "retired": when}
    db.execute("UPDATE keys SET reference = ? WHERE name = ?",
               [json.dumps(reference, sort_keys=True), name])
    db.conn.commit()
    audit.record(home, db, "key.retire", name, {"fingerprint": record.fingerprint})
    return get_key(db, name)


def _unlock_file_key(
    home: Home, record: KeyRecord, prompter: Prompter, attempts: int
) -> PrivateKey:
    """Decrypt a file key; a wrong password is asked again up to ``attempts`` times in all
    (once when the password comes from the environment: it would be the same again)."""
    path = home.keys_dir / record.reference["path"]
    data = path.read_bytes()
    purpose = f"Password for key {record.name}"
    for attempt in range(1, attempts + 1):
        password = key_password(prompter, purpose)
        try:
            key = load_private_key(data, password, subject=f"key {record.name}")
        except WrongPassword:
            if attempt == attempts or PASSWORD_ENV in os.environ:
                raise
            purpose = (
                f"Password for key {record.name}: the last one did not unlock it "
                f"(attempt {attempt + 1} of {attempts})"
            )
            continue
        if fingerprint(key.public_key()) != record.fingerprint:
            raise KeyNotFound(
                "the key file does not hold the registered key",
                subject=str(path),
                hint="the key file was replaced; restore it from backup",
            )
        return key
    raise AssertionError("unreachable: the last attempt returns or raises")


@contextmanager
def open_signer(home: Home, record: KeyRecord, prompter: Prompter) -> Iterator[Signer]:
    """A signer for a registered key; hardware sessions are closed when the block ends.
    A retired key is refused."""
    if record.reference.get("retired"):
        raise KeyRetired(f"key {record.name} was retired on {record.reference['retired']}",
                         subject=record.name)
    if record.backend == "file":
        session = current_session()
        key = session.get(record.name, record.fingerprint) if session else None
        if key is None:
            key = _unlock_file_key(home, record, prompter, session.attempts if session else 1)
            if session is not None:
                session.put(record.name, record.fingerprint, key)
        yield PrivateKeySigner(key)
        return
    if record.backend == "pkcs11":
        from airseal.appliance.signers.hardware import open_pkcs11_signer as open_pkcs11

        with open_pkcs11(record.reference, record.public_key_pem.encode(), prompter) as signer:
            yield signer
        return
    if record.backend == "piv":
        from airseal.appliance.signers.hardware import open_piv_signer as open_piv

        with open_piv(record.reference, record.public_key_pem.encode(), prompter) as signer:
            yield signer
        return
    raise KeyNotFound(f"unknown key backend {record.backend!r}", subject=record.name)
