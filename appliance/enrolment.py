"""Agent enrolment: which agent keys this appliance accepts receipts from.

A receipt carries its agent's public key, so on its own it proves only that someone holds that
key: anyone can write a folder named after a real agent id on a stick. The appliance therefore
counts a receipt only when its agent id is *enrolled* here with the key that signed it
(:mod:`airseal.appliance.receipts`). An enrolment comes from one of:

- ``administrator``: the agent's public key (``agent.pub``, printed by ``airseal-agent
  identity``) brought to the appliance by an administrator;
- ``operator-approved``: the key a receipt carried on media, approved by the operator after
  seeing the agent id and key fingerprint (best compared with ``airseal-agent identity`` on the
  endpoint);
- ``first-use``: keys pinned on first sight before enrolment existed (schema migration 4); they
  keep counting, shown as never checked, and an administrator can confirm them by enrolling the
  same key.

An enrolled key is never replaced by a receipt or by another enrolment: an endpoint that was
re-installed is removed, then enrolled again. Every change is in the audit log.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

import sqlite_utils

from airseal._internal.atomic import read_capped
from airseal._internal.times import normalise_timestamp
from airseal.appliance import audit
from airseal.appliance.errors import ApplianceError
from airseal.appliance.home import Home
from airseal.errors import FileTooLarge, UsageError
from airseal.media import layout
from airseal.media.errors import MediaIOError
from airseal.media.limits import MAX_RECEIPT_BYTES
from airseal.media.reader import DirectorySource
from airseal.media.receipt import read_receipt_statement
from airseal.trustroot.bundle import parse_bundle
from airseal.trustroot.dsse import Statement
from airseal.trustroot.errors import VerificationError
from airseal.trustroot.keys import fingerprint, load_public_key, spki_pem
from airseal.trustroot.verify import verify_dsse_bundle

Basis = Literal["administrator", "operator-approved", "first-use"]
BASIS_TEXT: Final[dict[str, str]] = {
    "administrator": "enrolled by an administrator",
    "operator-approved": "approved by the operator from a receipt carried on media",
    "first-use": "pinned on first use, not verified by an administrator",
}
MAX_PUBLIC_KEY_BYTES: Final = 64 * 1024
MAX_NAME_CHARS: Final = 255


def shown(text: str) -> str:
    """``text`` as a terminal may show it: host names and agent names come from receipts, which
    anyone can write, so control, format (right-to-left override) and other unprintable
    characters are escaped rather than interpreted."""
    return "".join(
        c if c.isprintable() and unicodedata.category(c) != "Cf" else f"\\u{ord(c):04x}"
        for c in text
    )


class EnrolmentError(ApplianceError):
    title = "Agent enrolment"
    check = "enrolment"


class AgentAlreadyEnrolled(EnrolmentError):
    title = "Agent already enrolled"
    hint = (
        "an enrolled key is never replaced: if the endpoint was re-installed, remove it first "
        "(`airseal agents remove ID`), then enrol its new key"
    )


class AgentNotEnrolled(EnrolmentError):
    title = "Agent not enrolled"
    hint = "see `airseal agents list`"


class ReceiptIdentityUnreadable(EnrolmentError, VerificationError):
    """The receipt offered for enrolment is not a receipt signed by the key it carries."""

    title = "Receipt not verified"
    check = "receipt identity"


@dataclass(frozen=True)
class EnrolledAgent:
    id: str
    name: str
    key_fingerprint: str
    public_key_pem: str
    basis: str
    enrolled: str

    @property
    def basis_text(self) -> str:
        return BASIS_TEXT.get(self.basis, self.basis)

    def describe(self) -> list[str]:
        return [
            f"{self.id}  {shown(self.name)}",
            f"  key fingerprint  {self.key_fingerprint}",
            f"  enrolled         {normalise_timestamp(self.enrolled)}, {self.basis_text}",
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "key_fingerprint": self.key_fingerprint,
            "public_key_pem": self.public_key_pem,
            "basis": self.basis,
            "basis_text": self.basis_text,
            "enrolled": self.enrolled,
        }


@dataclass(frozen=True)
class Enrolment:
    """What an enrolment did: ``created``, ``confirmed`` (a first-use pin now checked by an
    administrator) or ``unchanged``; how many kept-aside receipts now count."""

    agent: EnrolledAgent
    change: str
    admitted: int

    def describe(self) -> list[str]:
        verbs = {"created": "Enrolled", "confirmed": "Confirmed", "unchanged": "Already enrolled:"}
        lines = [f"{verbs[self.change]} agent {self.agent.id}", *self.agent.describe()[1:]]
        if self.admitted:
            lines.append(f"  {self.admitted} receipt(s) kept aside now count in fleet status")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {**self.agent.to_dict(), "change": self.change, "admitted": self.admitted}


@dataclass(frozen=True)
class ReceiptIdentity:
    """Who a receipt file says wrote it, once its signature verified with the key it carries."""

    agent_id: str
    hostname: str
    key_fingerprint: str
    public_key_pem: str

    def describe(self) -> list[str]:
        return [
            f"agent id         {self.agent_id} ({shown(self.hostname)})",
            f"key fingerprint  {self.key_fingerprint}",
        ]


def list_agents(db: sqlite_utils.Database) -> list[EnrolledAgent]:
    rows = db.execute(
        "SELECT id, name, key_fingerprint, public_key_pem, basis, enrolled FROM enrolled_agents "
        "ORDER BY name, id"
    ).fetchall()
    return [EnrolledAgent(*row) for row in rows]


def get_agent(db: sqlite_utils.Database, agent_id: str) -> EnrolledAgent | None:
    row = db.execute(
        "SELECT id, name, key_fingerprint, public_key_pem, basis, enrolled FROM enrolled_agents "
        "WHERE id = ?",
        [agent_id],
    ).fetchone()
    return EnrolledAgent(*row) if row else None


def read_key_file(path: Path) -> bytes:
    """An agent's public key file (``agent.pub``), capped."""
    try:
        return read_capped(path, MAX_PUBLIC_KEY_BYTES)
    except FileTooLarge:
        raise UsageError(f"larger than {MAX_PUBLIC_KEY_BYTES} bytes", subject=str(path)) from None
    except OSError as exc:
        raise UsageError(f"cannot read: {exc.strerror}", subject=str(path)) from None


def receipt_identity(path: Path) -> ReceiptIdentity:
    """The agent id and key a receipt file carries, checked: its signature must verify with that
    key (so the operator approves a key that did sign it)."""
    subject = str(path)
    try:  # the file is on hostile media: read as the media reader reads (no link, no fifo, capped)
        data = DirectorySource(path.parent).read_bytes(path.name, max_size=MAX_RECEIPT_BYTES)
        bundle = parse_bundle(data, subject=subject)
        envelope = bundle.dsse_envelope
        if envelope is None:
            raise ReceiptIdentityUnreadable("is not a DSSE bundle", subject=subject)
        claimed = read_receipt_statement(
            Statement.from_payload(envelope.payload, subject=subject), subject=subject
        )
        key = load_public_key(claimed.agent_key.encode(), subject=subject)
        predicate = read_receipt_statement(
            verify_dsse_bundle(key, bundle, subject=subject), subject=subject
        )
    except (VerificationError, MediaIOError) as exc:
        raise ReceiptIdentityUnreadable(exc.detail, subject=subject) from None
    return ReceiptIdentity(
        predicate.agent_id, predicate.hostname, fingerprint(key), spki_pem(key).decode()
    )


def enroll_agent(
    home: Home,
    db: sqlite_utils.Database,
    agent_id: str,
    public_key_pem: bytes,
    *,
    name: str | None,
    basis: Basis,
    now: datetime,
    key_subject: str | None = None,
) -> Enrolment:
    """Enrol ``agent_id`` with this key, then count the receipts kept aside for it that this key
    signed. Refuses another key for an enrolled id (:class:`AgentAlreadyEnrolled`)."""
    from airseal.appliance.receipts import admit_unenrolled

    if not layout.is_identifier(agent_id):
        raise UsageError(f"{agent_id!r} is not an agent id (letters, digits, . _ -)")
    key = load_public_key(public_key_pem, subject=key_subject)
    key_fp = fingerprint(key)
    pem = spki_pem(key).decode()
    label = (name or agent_id).strip()[:MAX_NAME_CHARS] or agent_id
    existing = get_agent(db, agent_id)
    if existing is not None and existing.key_fingerprint != key_fp:
        raise AgentAlreadyEnrolled(
            f"agent {agent_id} is enrolled with key {existing.key_fingerprint}, not {key_fp}",
            subject=agent_id,
        )
    stamp = now.isoformat(timespec="seconds")
    if existing is None:
        change = "created"
        with db.conn:
            db.conn.execute(
                "INSERT INTO enrolled_agents (id, name, key_fingerprint, public_key_pem, basis, "
                "enrolled) VALUES (?, ?, ?, ?, ?, ?)",
                [agent_id, label, key_fp, pem, basis, stamp],
            )
    elif existing.basis == "first-use" and basis != "first-use":
        change = "confirmed"
        with db.conn:
            db.conn.execute(
                "UPDATE enrolled_agents SET basis = ?, name = ?, enrolled = ? WHERE id = ?",
                [basis, label if name else existing.name, stamp, agent_id],
            )
    else:
        change = "unchanged"
    admitted = admit_unenrolled(db, agent_id, now)
    if change != "unchanged" or admitted:
        audit.record(
            home,
            db,
            "agent.enroll",
            agent_id,
            {"fingerprint": key_fp, "basis": basis, "change": change, "admitted": admitted},
            now=now,
        )
    agent = get_agent(db, agent_id)
    assert agent is not None
    return Enrolment(agent, change, admitted)


@dataclass(frozen=True)
class Removal:
    """What ``agents remove`` did: the enrolment withdrawn (if there was one) and how many
    receipts kept aside for that id were discarded."""

    agent_id: str
    agent: EnrolledAgent | None
    discarded: int

    def describe(self) -> list[str]:
        lines = []
        if self.agent is not None:
            lines.append(f"Removed agent {self.agent_id} (key {self.agent.key_fingerprint})")
        if self.discarded:
            lines.append(f"Discarded {self.discarded} receipt(s) kept aside for {self.agent_id}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.agent_id,
            "removed": self.agent.to_dict() if self.agent else None,
            "discarded": self.discarded,
        }


def remove_agent(
    home: Home, db: sqlite_utils.Database, agent_id: str, *, now: datetime
) -> Removal:
    """Withdraw an enrolment (the agent's receipts stay stored but no longer count; new ones are
    kept aside until it is enrolled again) and discard the receipts kept aside for that id."""
    existing = get_agent(db, agent_id)
    (waiting,) = db.execute(
        "SELECT COUNT(*) FROM unenrolled_receipts WHERE agent_id = ?", [agent_id]
    ).fetchone()
    if existing is None and not waiting:
        raise AgentNotEnrolled(
            f"no agent {agent_id} is enrolled or has receipts kept aside", subject=agent_id
        )
    with db.conn:
        db.conn.execute("DELETE FROM enrolled_agents WHERE id = ?", [agent_id])
        db.conn.execute("DELETE FROM unenrolled_receipts WHERE agent_id = ?", [agent_id])
    audit.record(
        home,
        db,
        "agent.remove",
        agent_id,
        {
            "fingerprint": existing.key_fingerprint if existing else None,
            "discarded": waiting,
        },
        now=now,
    )
    return Removal(agent_id, existing, waiting)
