"""Handing out a key's public half (PEM SPKI, the shape of ``cosign.pub``)."""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from airseal._internal.atomic import write_atomic
from airseal.appliance import audit
from airseal.appliance.errors import UsageError
from airseal.appliance.home import Home
from airseal.appliance.keystore import get_key
from airseal.trustroot.keys import spki_pem


def public_key_pem(db: sqlite_utils.Database, name: str) -> str:
    return spki_pem(get_key(db, name).public_key).decode("ascii")


def export_public_key(home: Home, db: sqlite_utils.Database, name: str, destination: Path) -> Path:
    """Write key ``name``'s public key to ``destination`` (a file, or a folder to hold
    ``NAME.pub``); returns the file written. Existing files are replaced atomically."""
    destination = Path(destination).expanduser()
    if destination.is_dir():
        destination = destination / f"{name}.pub"
    if not destination.parent.is_dir():
        raise UsageError(
            f"{destination.parent} is not a folder",
            subject=str(destination),
            hint="choose a path in an existing folder",
        )
    record = get_key(db, name)
    write_atomic(destination, spki_pem(record.public_key), mode=0o644)
    audit.record(
        home,
        db,
        "key.export-public",
        name,
        {"path": str(destination), "fingerprint": record.fingerprint},
    )
    return destination
