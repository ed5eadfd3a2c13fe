"""Enrolment: pinning a distributor's public key on this endpoint (the pinned-key trust source).

``airseal-agent enroll --key distributor.pub`` records the key (PEM SubjectPublicKeyInfo, as
``airseal key export-public`` and ``cosign.pub`` write it), a name to show people, and what it
may sign. Enrolment is what makes a key *trusted*; the endpoint user still *approves* the
distributor the first time its media arrives, unless the enrolling administrator approved it
already (``--approved``, for endpoints nobody sits at).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from airseal._internal.atomic import read_capped, write_atomic
from airseal.agent.errors import EnrolmentError
from airseal.agent.journal import DistributorRecord, Journal
from airseal.agent.trust import PinnedKeyTrust, Purpose, TrustedKey
from airseal.trustroot.keys import fingerprint, load_public_key, spki_pem

MAX_NAME_CHARS = 128


def enroll(
    journal: Journal,
    pem: bytes,
    *,
    name: str | None,
    purposes: Iterable[Purpose],
    now: datetime,
    approved: bool = False,
    subject: str | None = None,
) -> tuple[DistributorRecord, bool]:
    """Pin a key; returns its record and whether it is new. Enrolling the same key again
    updates its name and purposes (never its approval or sequence history)."""
    key = load_public_key(pem, subject=subject)
    fp = fingerprint(key)
    shown = (name or f"Distributor {fp[:16]}").strip()
    if not shown or len(shown) > MAX_NAME_CHARS or any(ord(c) < 0x20 for c in shown):
        raise EnrolmentError(
            f"the name must be 1-{MAX_NAME_CHARS} printable characters", subject=subject
        )
    wanted = frozenset(purposes)
    if not wanted:
        raise EnrolmentError("a key must be allowed to sign exports, actions or both")
    existing = journal.distributor(fp)
    if existing is not None:
        if approved and existing.approved is None:
            journal.approve(fp, "enrolment", now=now)
        return journal.update_distributor(fp, name=shown, may_sign=wanted), False
    record = journal.add_distributor(
        fp,
        shown,
        spki_pem(key).decode(),
        wanted,
        now=now,
        approved_how="enrolment" if approved else None,
    )
    return record, True


def trusted_key(record: DistributorRecord) -> TrustedKey:
    key = load_public_key(record.public_key_pem.encode(), subject=f"distributor {record.name}")
    if fingerprint(key) != record.fingerprint:
        raise EnrolmentError(
            "the journal's key does not match its fingerprint", subject=record.fingerprint
        )
    purposes: frozenset[Purpose] = frozenset(
        p for p in ("exports", "actions") if p in record.may_sign
    )
    return TrustedKey(
        fingerprint=record.fingerprint,
        name=record.name,
        public_key=key,
        may_sign=purposes,
        authorised_by=f"pinned on this endpoint at enrolment ({record.enrolled[:10]})",
    )


def pinned_trust(journal: Journal, state_root: Path | None = None) -> PinnedKeyTrust:
    """The trust source made of every enrolled key not distrusted since (raises
    :class:`NotEnrolled` if there is none and none was distrusted)."""
    from airseal.agent.log_state import pinned_log

    distrusted = read_distrusted(state_root) if state_root is not None else {}
    return PinnedKeyTrust((trusted_key(r) for r in journal.distributors()), {
        fp: f"distributor {entry['name']} was distrusted on this endpoint on "
            f"{entry['distrusted']} (airseal-agent distrust)"
        for fp, entry in distrusted.items()
    }, pinned_log(state_root) if state_root is not None else None)


# -- local distrust (pinned mode) ----------------------------------------------------------------

DISTRUSTED_NAME = "distrusted.json"
MAX_DISTRUSTED_BYTES = 1024 * 1024


def read_distrusted(state_root: Path) -> dict[str, dict[str, str]]:
    """Keys an administrator removed here, by fingerprint: ``{name, distrusted}``."""
    path = Path(state_root) / DISTRUSTED_NAME
    if not path.is_file():
        return {}
    data = json.loads(read_capped(path, MAX_DISTRUSTED_BYTES))
    entries: dict[str, dict[str, str]] = data["keys"]
    return entries


def distrust(state_root: Path, journal: Journal, fp: str, *, now: datetime) -> str:
    """Stop trusting a pinned key here (its history stays in the journal); returns its name.
    Enrolling it again (`airseal-agent enroll --key`) trusts it again."""
    record = journal.distributor(fp)
    if record is None:
        raise EnrolmentError(f"no enrolled distributor has fingerprint {fp}", subject=fp,
                             hint="`airseal-agent status` lists the enrolled keys")
    entries = read_distrusted(state_root)
    entries[fp] = {"name": record.name, "distrusted": now.isoformat(timespec="seconds")}
    _write_distrusted(state_root, entries)
    return record.name


def _write_distrusted(state_root: Path, entries: dict[str, dict[str, str]]) -> None:
    data = {"schemaVersion": 1, "keys": entries}
    write_atomic(Path(state_root) / DISTRUSTED_NAME,
                 (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), mode=0o600)


def trust_again(state_root: Path, fp: str) -> None:
    entries = read_distrusted(state_root)
    if entries.pop(fp, None) is not None:
        _write_distrusted(state_root, entries)
