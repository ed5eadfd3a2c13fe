"""Anchoring the audit chain in the transparency log, and checking the anchors against the chain.

The audit chain (:mod:`airseal.appliance.audit`) proves its own integrity only against the head
kept beside the database: someone who can rewrite the database can rewrite both. An *anchor*
puts the chain's head into the transparency log, whose checkpoints leave the appliance on every
export and reach the endpoints and witnesses: a chain rewritten below an anchored row no longer
matches a log entry that everyone has seen.

An anchor is a Rekor v1 ``hashedrekord`` entry over the SHA-256 of the anchor statement
(:func:`anchor_statement`: appliance id, row number, row hash), **signed by the log key**, with the
subject ``audit head <seq> <hash>`` that names the row for people and for :func:`check_anchors`.
Why the log key and not an operator's key: an anchor is something the log states about the
appliance's own record, made without an operator's decision, and a ``hashedrekord`` signed by a
distributor key means "this distributor signed an artifact with this digest" to any Sigstore
verifier that trusts that key. The log key is trusted only as a log key (the site's
``trusted_root.json`` lists it under ``tlogs``), and it is already open whenever anything is
logged. What the anchor proves comes from the log (append-only, consistent checkpoints), not
from that signature; the signature only says the log itself wrote the entry.

When: at every export, right after its statement is logged (the statement must be the entry
right after the media's checkpoint, which is the one the witnesses cosigned, so the anchor comes
after it; the next export's checkpoint covers it), and on ``airseal log anchor``. An anchor is
skipped when the head has not moved since the last one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from dataclasses import dataclass

from airseal.trustroot.errors import InvalidSignature
from airseal.trustroot.keys import PublicKey, spki_pem, verify_digest
from airseal.trustroot.signer import Signer
from airseal.trustroot.tlog import entries

SUBJECT_PREFIX = "audit head "
STATEMENT_TYPE = "airseal-audit-anchor/v1"


@dataclass(frozen=True)
class AuditHead:
    seq: int
    hash: str


@dataclass(frozen=True)
class AnchorProblem:
    log_index: int
    seq: int
    problem: str


def anchor_statement(appliance_id: str, head: AuditHead) -> bytes:
    """The bytes an anchor's ``hashedrekord`` digest is computed over."""
    text = f"{STATEMENT_TYPE}\nappliance {appliance_id}\nseq {head.seq}\nhead {head.hash}\n"
    return text.encode()


def anchor_subject(head: AuditHead) -> str:
    return f"{SUBJECT_PREFIX}{head.seq} {head.hash}"


def current_head(conn: sqlite3.Connection) -> AuditHead | None:
    row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else AuditHead(int(row[0]), str(row[1]))


def _parse_subject(subject: str) -> AuditHead | None:
    parts = subject[len(SUBJECT_PREFIX) :].split(" ")
    if len(parts) != 2 or not parts[0].isdigit() or len(parts[1]) != 64:
        return None
    return AuditHead(int(parts[0]), parts[1])


def _anchors(
    conn: sqlite3.Connection, *, newest_only: bool = False
) -> list[tuple[int, str, bytes]]:
    sql = (
        "SELECT idx, subject, body FROM log_entries WHERE kind = 'hashedrekord' "
        "AND substr(subject, 1, ?) = ? ORDER BY idx"
    )
    if newest_only:
        sql += " DESC LIMIT 1"
    return [
        (int(i), str(s), bytes(b))
        for i, s, b in conn.execute(sql, [len(SUBJECT_PREFIX), SUBJECT_PREFIX])
    ]


def last_anchored(conn: sqlite3.Connection) -> AuditHead | None:
    found = _anchors(conn, newest_only=True)
    return _parse_subject(found[0][1]) if found else None


def anchor_entry(signer: Signer, appliance_id: str, head: AuditHead) -> tuple[bytes, str]:
    """The ``hashedrekord`` body and subject of the anchor of ``head``, signed by ``signer``
    (the log key)."""
    digest = hashlib.sha256(anchor_statement(appliance_id, head)).digest()
    body = entries.hashedrekord_body(digest, signer.sign_digest(digest), signer.public_key)
    return body, anchor_subject(head)


def check_anchors(
    conn: sqlite3.Connection, appliance_id: str, log_key: PublicKey
) -> tuple[int, list[AnchorProblem]]:
    """Every anchor in the log against the audit chain: the entry is the log key's signature
    over this appliance's statement of that row, and the chain's row still has that hash.
    Returns the number of anchors and the problems found."""
    problems: list[AnchorProblem] = []
    log_pem = base64.b64encode(spki_pem(log_key)).decode()
    found = _anchors(conn)
    for index, subject, body in found:
        head = _parse_subject(subject)
        if head is None:
            problems.append(AnchorProblem(index, 0, f"log entry {index}: unreadable anchor"))
            continue
        want = hashlib.sha256(anchor_statement(appliance_id, head)).hexdigest()
        try:
            spec = json.loads(body)["spec"]
            digest = spec["data"]["hash"]["value"]
            signature = base64.b64decode(spec["signature"]["content"])
            signer_pem = spec["signature"]["publicKey"]["content"]
        except (ValueError, KeyError, TypeError):
            problems.append(AnchorProblem(index, head.seq, f"log entry {index}: bad anchor body"))
            continue
        if digest != want or signer_pem != log_pem:
            problems.append(AnchorProblem(
                index, head.seq,
                f"log entry {index} is not this appliance's anchor of audit row {head.seq}",
            ))
            continue
        try:
            verify_digest(log_key, signature, bytes.fromhex(digest))
        except InvalidSignature:
            problems.append(AnchorProblem(
                index, head.seq, f"log entry {index}: anchor signature does not verify"
            ))
            continue
        row = conn.execute("SELECT hash FROM audit WHERE seq = ?", [head.seq]).fetchone()
        if row is None:
            problems.append(AnchorProblem(
                index, head.seq,
                f"the log anchored audit row {head.seq} (entry {index}) but the chain has no "
                f"row {head.seq}: rows were removed",
            ))
        elif row[0] != head.hash:
            problems.append(AnchorProblem(
                index, head.seq,
                f"audit row {head.seq} has hash {str(row[0])[:16]}…, the log anchored "
                f"{head.hash[:16]}… (entry {index}): the chain was rewritten",
            ))
    return len(found), problems
