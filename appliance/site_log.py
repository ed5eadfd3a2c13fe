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

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airseal.appliance.tlog_store import LogAppender, NewEntry
from airseal.trustroot.signer import Signer
from airseal.trustroot.tlog import entries

SUBJECT_PREFIX = "tuf "


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
