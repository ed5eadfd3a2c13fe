"""The audit chain anchored in the transparency log: `airseal log anchor`, anchors at every export,
and `audit verify` / `log verify` catching a chain rewritten below an anchor (even with its
`audit.head` rewritten too, which the chain alone cannot catch)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils
from cryptography.hazmat.primitives.asymmetric import ec

from airseal.appliance import audit, audit_anchor
from airseal.appliance.db import open_database
from airseal.appliance.home import Home, init_home
from airseal.appliance.tlog_store import NewEntry, TransparencyLog, create_log
from airseal.trustroot.signer import PrivateKeySigner
from airseal.trustroot.tlog import entries

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _rewrite_chain(home: Path, seq: int, subject: str) -> None:
    """What a determined editor does: change row ``seq``, recompute every hash after it and
    the head file, so that the chain on its own verifies."""
    conn = sqlite3.connect(home / "airseal.db")
    conn.execute("DROP TRIGGER audit_no_update")
    rows = conn.execute(
        "SELECT seq, ts, actor, action, subject, details FROM audit ORDER BY seq"
    ).fetchall()
    prev = audit.GENESIS
    for row_seq, ts, actor, action, old_subject, details in rows:
        new_subject = subject if row_seq == seq else old_subject
        digest = audit._row_hash(prev, row_seq, ts, actor, action, new_subject, details)
        conn.execute(
            "UPDATE audit SET subject = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            [new_subject, prev, digest, row_seq],
        )
        prev = digest
    conn.commit()
    conn.close()
    (home / "audit.head").write_text(f"{rows[-1][0]} {prev}\n")


def test_anchor_then_rewrite_is_caught_by_both_verifiers(airseal, appliance_home) -> None:
    assert airseal("key", "generate", "logkey").code == 0
    assert airseal("log", "init", "--key", "logkey").code == 0
    first = json.loads(airseal("log", "anchor", "--json").stdout)
    assert first["anchored"] is True and first["logIndex"] == 0 and first["seq"] >= 2
    again = json.loads(airseal("log", "anchor", "--json").stdout)
    assert again["anchored"] is False and again["logIndex"] is None  # the head has not moved
    chain = json.loads(airseal("audit", "verify", "--json").stdout)
    assert chain["ok"] and chain["anchors"] == 1
    log = json.loads(airseal("log", "verify", "--json").stdout)
    assert log["auditAnchors"] == 1

    _rewrite_chain(appliance_home, 1, "/somewhere/else")
    broken = airseal("audit", "verify")
    assert broken.code == 1 and f"audit row {first['seq']}" in broken.stderr
    assert "rewritten" in broken.stderr
    assert airseal("log", "verify").code == 1


def _log_home(tmp_path: Path, rows: int) -> tuple[Home, sqlite_utils.Database, PrivateKeySigner]:
    home, _ = init_home(tmp_path / "home")
    db = open_database(home)
    for i in range(rows):
        audit.record(home, db, "test", f"row {i}", now=NOW)
    signer = PrivateKeySigner(ec.derive_private_key(0x10C, ec.SECP256R1()))
    create_log(db.conn, origin="log.test.example", key_name="k", public_key=signer.public_key,
               signer=signer, now=NOW)
    return home, db, signer


def _append(db: sqlite_utils.Database, signer: PrivateKeySigner, body: bytes, subject: str) -> None:
    TransparencyLog(db.conn).append(
        [NewEntry(entries.HASHEDREKORD, body, subject)], signer, now=NOW
    )


def test_a_forged_or_dangling_anchor_is_named(tmp_path: Path) -> None:
    home, db, signer = _log_home(tmp_path, 3)
    head = audit_anchor.current_head(db.conn)
    assert head is not None and head.seq == 3
    body, subject = audit_anchor.anchor_entry(signer, home.appliance_id, head)
    _append(db, signer, body, subject)
    assert audit.verify_chain(home, db).ok
    assert audit_anchor.last_anchored(db.conn) == head

    # An entry claiming to anchor row 2, signed by another key: not the log's anchor.
    other = PrivateKeySigner(ec.derive_private_key(0x0BAD, ec.SECP256R1()))
    row2 = audit_anchor.AuditHead(2, db.conn.execute(
        "SELECT hash FROM audit WHERE seq = 2").fetchone()[0])
    forged, forged_subject = audit_anchor.anchor_entry(other, home.appliance_id, row2)
    _append(db, signer, forged, forged_subject)
    # Another appliance's anchor of the same row: its statement names another appliance id.
    foreign, foreign_subject = audit_anchor.anchor_entry(signer, "another-appliance", row2)
    _append(db, signer, foreign, foreign_subject)
    # An anchor of a row the chain does not have (the tail was cut after anchoring).
    cut = audit_anchor.AuditHead(9, "ab" * 32)
    dangling, dangling_subject = audit_anchor.anchor_entry(signer, home.appliance_id, cut)
    _append(db, signer, dangling, dangling_subject)

    report = audit.verify_chain(home, db)
    problems = [p.problem for p in report.problems]
    assert report.anchors == 4 and len(problems) == 3, problems
    assert "log entry 1 is not this appliance's anchor of audit row 2" in problems[0]
    assert "log entry 2 is not this appliance's anchor" in problems[1]
    assert "chain has no row 9: rows were removed" in problems[2]


def test_without_a_log_nothing_is_checked(tmp_path: Path) -> None:
    home, _ = init_home(tmp_path / "home")
    db = open_database(home)
    audit.record(home, db, "test", "row", now=NOW)
    report = audit.verify_chain(home, db)
    assert report.ok and report.anchors == 0
