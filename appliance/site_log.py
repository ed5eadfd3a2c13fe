"""Logging the site TUF repository's metadata: every version the appliance publishes.

A new root, targets, snapshot or timestamp version is appended as a Rekor v1 ``hashedrekord``
0.0.1 entry over the SHA-256 of the metadata file's bytes (exactly as written under
``site/metadata/``), **signed by the log key**, with the subject ``tuf <role> v<N>``. Endpoints
and auditors can then check that the metadata they were given is the one the appliance logged,
and a root or targets version that never reached the log stands out.

Why the log key and not the role keys, for the reasons :mod:`airseal.appliance.audit_anchor`
gives for anchors: the entry is the appliance's record of what it published, made without a
further operator decision (the role keys' signatures are inside the metadata itself, and a
``hashedrekord`` by a distributor or root key would read to any Sigstore verifier as "this key
signed an artifact with this digest"). The log key is trusted only as a log key, and is open
whenever anything is logged. What the entry proves comes from the log (append-only, consistent
checkpoints); its signature only says the log itself wrote it.

When: a root or targets version when its threshold is met and it is published, before the file
is written (nothing is published that the log does not hold); snapshot and timestamp versions
when the online key signs them: on a publish at once; at an export, right after the export
statement (one timestamp entry per export). Not before it: the export statement must be the
entry right after the checkpoint the media carries, which may be the one the witnesses
cosigned, so nothing else may be appended ahead of it. That timestamp's entry is therefore not
proved on the media that carries it, only on later ones. Without a log nothing is appended. A
change waiting in ``pending/`` is not logged until it is published.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airseal.appliance.tlog_store import LogAppender, NewEntry
from airseal.trustroot.errors import InvalidSignature
from airseal.trustroot.keys import PublicKey, spki_pem, verify_digest
from airseal.trustroot.signer import Signer
from airseal.trustroot.tlog import entries

SUBJECT_PREFIX = "tuf "
ROLES = ("root", "targets", "snapshot", "timestamp")


@dataclass(frozen=True)
class MetadataVersion:
    """One published metadata file: its role, version and bytes as written."""

    role: str
    version: int
    data: bytes

    @property
    def subject(self) -> str:
        return f"{SUBJECT_PREFIX}{self.role} v{self.version}"


def metadata_entry(signer: Signer, item: MetadataVersion) -> bytes:
    """The ``hashedrekord`` body of ``item``, signed by ``signer`` (the log key)."""
    digest = hashlib.sha256(item.data).digest()
    return entries.hashedrekord_body(digest, signer.sign_digest(digest), signer.public_key)


def metadata_entries(signer: Signer, items: Sequence[MetadataVersion]) -> list[NewEntry]:
    return [NewEntry(entries.HASHEDREKORD, metadata_entry(signer, i), i.subject) for i in items]


def log_metadata(home: Any, db: Any, prompter: Any, items: Sequence[MetadataVersion]) -> list[int]:
    """Append ``items`` in one batch when this appliance keeps a log; their log indexes."""
    if not items:
        return []
    with LogAppender(home, db, prompter) as log:
        return log.append_own(lambda signer: metadata_entries(signer, items))


def check_metadata_entries(conn: sqlite3.Connection, metadata_dir: Path,
                           log_key: PublicKey) -> tuple[int, list[str]]:
    """Every ``tuf`` entry against the files under ``metadata_dir``: the log key's signature
    over the SHA-256 of the file of that role and version, where the file is still kept (every
    root, targets and snapshot version; of the timestamps only the newest). Returns the number
    of entries and the problems found."""
    log_pem = base64.b64encode(spki_pem(log_key)).decode()
    problems: list[str] = []
    rows = conn.execute(
        "SELECT idx, subject, body FROM log_entries WHERE kind = 'hashedrekord' "
        "AND substr(subject, 1, ?) = ? ORDER BY idx", [len(SUBJECT_PREFIX), SUBJECT_PREFIX],
    ).fetchall()
    for index, subject, body in rows:
        parts = str(subject)[len(SUBJECT_PREFIX):].split(" v")
        if len(parts) != 2 or parts[0] not in ROLES or not parts[1].isdigit():
            problems.append(f"log entry {index}: unreadable subject {subject!r}")
            continue
        role, version = parts[0], int(parts[1])
        try:
            spec = json.loads(bytes(body))["spec"]
            digest = bytes.fromhex(spec["data"]["hash"]["value"])
            signature = base64.b64decode(spec["signature"]["content"])
            signer_pem = spec["signature"]["publicKey"]["content"]
        except (ValueError, KeyError, TypeError):
            problems.append(f"log entry {index}: bad {subject} body")
            continue
        try:
            verify_digest(log_key, signature, digest)
            signed = signer_pem == log_pem
        except InvalidSignature:
            signed = False
        if not signed:
            problems.append(f"log entry {index} ({subject}) is not signed by the log key")
            continue
        path = metadata_dir / (f"{version}.{role}.json" if role != "timestamp"
                               else "timestamp.json")
        if not path.is_file():
            if role != "timestamp":
                problems.append(f"{subject} is logged (entry {index}) but {path.name} is gone")
            continue
        data = path.read_bytes()
        if role == "timestamp" and _version_of(data) != version:
            continue  # an older timestamp: only the newest is kept
        if hashlib.sha256(data).digest() != digest:
            problems.append(f"{path.name} differs from the version logged as entry {index}: "
                            "the published metadata was replaced")
    return len(rows), problems


def _version_of(data: bytes) -> int | None:
    try:
        version = json.loads(data)["signed"]["version"]
    except (ValueError, KeyError, TypeError):
        return None
    return version if isinstance(version, int) else None
