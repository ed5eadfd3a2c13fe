"""Schema 7: the log's leaf-hash index (Rekor UUID lookups), and no other.

A home whose database was made by schema 6 gains it when it is opened, and every lookup answers
as it did at schema 6 (the Log screen's searches still scan); a migration that fails leaves the
database as it was.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from airseal.appliance import db as appliance_db
from airseal.appliance.home import init_home
from airseal.appliance.log_view import log_overview
from airseal.appliance.tlog_schema import LOG_INDEX_NAMES
from airseal.appliance.tlog_store import NewEntry, TransparencyLog, create_log
from airseal.trustroot.signer import PrivateKeySigner
from airseal.trustroot.tlog import entries

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SCHEMA_6 = appliance_db.MIGRATIONS[:6]


def _scan_search(conn: sqlite3.Connection, search: str, limit: int = 500) -> list[int]:
    """The Log screen's search as schema 6 ran it (a scan of bodies and subjects): the
    reference the search at schema 7 must agree with."""
    text = search.strip().lower()
    clauses, params = ["instr(lower(subject || ' ' || kind), ?) > 0"], [text]
    if all(c in "0123456789abcdef" for c in text) and len(text) >= 8:
        clauses.append("instr(body, CAST(? AS BLOB)) > 0")
        params.append(text)
        clauses.append("substr(lower(hex(leaf_hash)), 1, ?) = ?")
        params.extend([len(text), text])
    if text.isdigit():
        clauses.append("idx = ?")
        params.append(int(text))
    sql = "SELECT idx FROM log_entries WHERE " + " OR ".join(clauses)
    return [r[0] for r in conn.execute(sql + " ORDER BY idx DESC LIMIT ?", [*params, limit])]


def _fill(conn: sqlite3.Connection) -> list[NewEntry]:
    signer = PrivateKeySigner(ec.derive_private_key(0x1E, ec.SECP256R1()))
    create_log(conn, origin="log.index.example", key_name="k", public_key=signer.public_key,
               signer=signer, now=NOW)
    new = []
    for i in range(40):
        digest = hashlib.sha256(b"file %d" % (i % 30)).digest()  # some files signed twice
        if i % 4 == 3:
            body = entries.dsse_body(b"{}", b"payload %d" % i, b"s", signer.public_key)
            new.append(NewEntry(entries.DSSE, body, f"action {digest.hex()[:12]} v{i % 3 + 1}"))
        else:
            body = entries.hashedrekord_body(digest, b"\x30" * 70, signer.public_key)
            new.append(NewEntry(entries.HASHEDREKORD, body, f"blob f{i}.bin"))
    TransparencyLog(conn).append(new, signer, now=NOW)
    return new


def _schema6_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    """A home made by schema 6 with a log of 41 entries (the creation checkpoint's included)."""
    with monkeypatch.context() as m:
        m.setattr(appliance_db, "MIGRATIONS", SCHEMA_6)
        home, _ = init_home(tmp_path / "home")
    conn = sqlite3.connect(home.database_path, isolation_level=None)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 6
    _fill(conn)
    leaves = [bytes(r[0]).hex() for r in conn.execute(
        "SELECT leaf_hash FROM log_entries ORDER BY idx")]
    bodies = [bytes(r[0]) for r in conn.execute("SELECT body FROM log_entries ORDER BY idx")]
    conn.close()
    searches = ["blob", "dsse", "2", "v3", "17", "f1", "hashedrekord"]
    for i in (0, 3, 7, 20):
        searches += [leaves[i][:8], leaves[i][:13], leaves[i]]
    for n in (0, 5, 29):
        digest = hashlib.sha256(b"file %d" % n).hexdigest()
        searches += [digest[:8], digest[:12].upper(), digest, digest[20:32]]  # mid-digest too
    for body in bodies:
        if b'"payloadHash"' in body:
            import json

            spec = json.loads(body)["spec"]
            searches += [spec["payloadHash"]["value"][:10], spec["envelopeHash"]["value"][:16]]
            break
    return home.root, searches


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return sorted(conn.execute("SELECT name, coalesce(sql, '') FROM sqlite_master"))


def test_a_schema_6_home_gains_the_leaf_hash_index_only_and_lookups_answer_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airseal.appliance.db import open_database
    from airseal.appliance.home import open_home

    root, searches = _schema6_home(tmp_path, monkeypatch)
    old = sqlite3.connect(root / "airseal.db")
    before = {s: _scan_search(old, s) for s in searches}
    old.close()
    assert all(before[s] for s in searches if s not in ("v3",)), before  # they do find things

    database = open_database(open_home(root))  # what every command does first
    conn = database.conn
    assert conn.execute("PRAGMA user_version").fetchone()[0] == appliance_db.SCHEMA_VERSION == 7
    names = {r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'log_entries'"
        " AND sql IS NOT NULL")}
    assert names == set(LOG_INDEX_NAMES) == {"log_entries_by_leaf_hash"}  # appends stay fast
    for search in searches:
        assert [e.index for e in log_overview(conn, search=search).entries] == before[search], \
            search
    # log serve's UUID lookup: same answer, now through the leaf-hash index
    leaf = conn.execute("SELECT leaf_hash FROM log_entries WHERE idx = 12").fetchone()[0]
    plan = " ".join(str(r) for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT idx FROM log_entries WHERE leaf_hash = ?", [leaf]))
    assert "log_entries_by_leaf_hash" in plan
    assert conn.execute("SELECT idx FROM log_entries WHERE leaf_hash = ?", [leaf]).fetchall() == \
        [(12,)]
    TransparencyLog(conn).verify()  # the log itself is untouched
    database.close()


def test_a_failed_migration_leaves_the_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airseal.appliance.db import open_database
    from airseal.appliance.home import open_home

    root, _ = _schema6_home(tmp_path, monkeypatch)
    conn = sqlite3.connect(root / "airseal.db", isolation_level=None)
    # a table named like the index: the step fails, after the version check began the transaction
    conn.execute("CREATE TABLE log_entries_by_leaf_hash (x)")
    schema, rows = _schema(conn), conn.execute("SELECT count(*) FROM log_entries").fetchone()
    conn.close()
    with pytest.raises(sqlite3.OperationalError, match="already a table named"):
        open_database(open_home(root))
    conn = sqlite3.connect(root / "airseal.db", isolation_level=None)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 6
    assert _schema(conn) == schema  # no index half made
    assert conn.execute("SELECT count(*) FROM log_entries").fetchone() == rows
    conn.execute("DROP TABLE log_entries_by_leaf_hash")
    conn.close()
    assert open_database(open_home(root)).conn.execute("PRAGMA user_version").fetchone()[0] == 7
