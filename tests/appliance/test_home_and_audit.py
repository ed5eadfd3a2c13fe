"""The appliance home, its migrated database and the hash-chained audit log."""

from __future__ import annotations

import sqlite3
import stat

import pytest

from airseal.appliance import audit
from airseal.appliance.db import SCHEMA_VERSION, migrate, open_database, schema_version
from airseal.appliance.errors import HomeError
from airseal.appliance.home import init_home, open_home


@pytest.fixture
def home(tmp_path):
    created_home, created = init_home(tmp_path / "home")
    assert created
    return created_home


@pytest.fixture
def db(home):
    database = open_database(home)
    yield database
    database.close()


def test_init_creates_a_private_home_with_a_wal_database(home, db):
    assert stat.S_IMODE(home.root.stat().st_mode) == 0o700
    assert stat.S_IMODE((home.root / "config.json").stat().st_mode) == 0o600
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert schema_version(db) == SCHEMA_VERSION
    assert {"keys", "audit"} <= set(db.table_names())


def test_init_again_keeps_the_identity(home):
    again, created = init_home(home.root)
    assert not created and again.appliance_id == home.appliance_id


def test_open_home_that_does_not_exist_says_what_to_do(tmp_path):
    with pytest.raises(HomeError, match="no appliance home") as caught:
        open_home(tmp_path / "nowhere")
    assert "airseal init" in caught.value.diagnostics()


def test_migrations_are_idempotent_and_refuse_a_newer_schema(db):
    assert migrate(db) == SCHEMA_VERSION
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(HomeError, match="newer than this airseal"):
        migrate(db)


def _fill(home, db, n=5):
    for i in range(n):
        audit.record(home, db, "test.action", f"subject-{i}", {"i": i})


def test_a_clean_chain_verifies(home, db):
    _fill(home, db)
    report = audit.verify_chain(home, db)
    assert report.ok and report.entries == 5


def test_triggers_keep_the_log_append_only(home, db):
    _fill(home, db, 2)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit SET subject = 'x' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit WHERE seq = 1")


def _drop_triggers(db):
    """What someone editing the database by hand would do first."""
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")


def _problems(home, db):
    report = audit.verify_chain(home, db)
    assert not report.ok
    return [p.problem for p in report.problems]


def test_an_edited_row_is_named(home, db):
    _fill(home, db)
    _drop_triggers(db)
    db.execute("UPDATE audit SET details = '{\"i\":99}' WHERE seq = 3")
    assert _problems(home, db) == ["row 3 (test.action subject-2) was edited"]


def test_a_deleted_row_is_named(home, db):
    _fill(home, db)
    _drop_triggers(db)
    db.execute("DELETE FROM audit WHERE seq = 2")
    problems = _problems(home, db)
    assert "row(s) 2 deleted before row 3" in problems[0]


def test_reordered_rows_are_named(home, db):
    _fill(home, db)
    _drop_triggers(db)
    columns = "ts, actor, action, subject, details, prev_hash, hash"
    two, three = (
        db.execute(f"SELECT {columns} FROM audit WHERE seq = ?", [seq]).fetchone() for seq in (2, 3)
    )
    assignment = ", ".join(f"{c.strip()} = ?" for c in columns.split(","))
    db.execute(f"UPDATE audit SET {assignment} WHERE seq = 2", three)  # swap entries 2 and 3
    db.execute(f"UPDATE audit SET {assignment} WHERE seq = 3", two)
    assert _problems(home, db) == [
        "row 2 holds the entry written as row 3 (rows reordered)",
        "row 3 holds the entry written as row 2 (rows reordered)",
        "row 4 does not follow the row before it (reordered or a row was removed)",
    ]


def test_a_truncated_tail_is_caught_by_the_head(home, db):
    _fill(home, db)
    _drop_triggers(db)
    db.execute("DELETE FROM audit WHERE seq = 5")
    assert any("recorded head is row 5" in p for p in _problems(home, db))


def test_a_rewritten_chain_without_the_head_is_caught(home, db):
    _fill(home, db)
    home.audit_head_path.unlink()
    assert _problems(home, db) == ["audit.head is missing"]
