"""airseal._internal.migrations: each migration once, in order, all or nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from airseal._internal.migrations import SchemaTooNew, migrate, schema_version, split_statements

MIGRATIONS = (
    """
    CREATE TABLE log (n INTEGER);
    CREATE TRIGGER log_no_delete BEFORE DELETE ON log
        BEGIN SELECT RAISE(ABORT, 'append-only'); END;
    INSERT INTO log VALUES (1);
    """,
    "INSERT INTO log VALUES (2);",
)


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_migrations_run_once_and_in_order(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db")
    assert schema_version(conn) == 0
    assert migrate(conn, MIGRATIONS[:1]) == 1
    assert migrate(conn, MIGRATIONS) == 2
    assert migrate(conn, MIGRATIONS) == 2  # nothing runs twice
    assert [n for (n,) in conn.execute("SELECT n FROM log")] == [1, 2]
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM log")  # the trigger's body survived the split


def test_a_failed_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db")
    broken = (*MIGRATIONS, "INSERT INTO log VALUES (3);\nINSERT INTO no_such_table VALUES (4);")
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, broken)
    assert schema_version(conn) == 2
    assert [n for (n,) in conn.execute("SELECT n FROM log")] == [1, 2]  # row 3 rolled back
    assert not conn.in_transaction


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db")
    conn.execute("PRAGMA user_version = 5")
    with pytest.raises(SchemaTooNew) as refused:
        migrate(conn, MIGRATIONS)
    assert (refused.value.found, refused.value.supported) == (5, 2)


def test_statements_split_outside_trigger_bodies() -> None:
    statements = split_statements(MIGRATIONS[0])
    assert len(statements) == 3
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
