"""One SQLite schema migration runner, for the appliance's database and the agent's journal.

The schema version is SQLite's ``user_version``. Migration *i* (0-based) moves the schema from
version *i* to *i + 1*; each runs in one ``BEGIN IMMEDIATE`` transaction together with the
version bump, so a crash leaves the previous version intact and a concurrent opener waits
instead of migrating twice. Migrations only ever append: a released entry is never edited.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from airseal.errors import AirsealError


class SchemaTooNew(AirsealError):
    """The database was written by a newer release: this one must not touch it."""

    title = "Schema too new"
    check = "schema"
    hint = "upgrade airseal"

    def __init__(self, found: int, supported: int, *, subject: str | None = None) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"schema {found} is newer than this release ({supported})", subject=subject
        )


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, migrations: Sequence[str]) -> int:
    """Apply the migrations this database has not had yet, in order; returns its new version.

    ``conn`` must be in autocommit mode (``isolation_level=None``) and outside a transaction.
    Raises :class:`SchemaTooNew` when the database is ahead of ``migrations``.
    """
    current = schema_version(conn)
    if current > len(migrations):
        raise SchemaTooNew(current, len(migrations))
    for version in range(current, len(migrations)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in split_statements(migrations[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return schema_version(conn)


def split_statements(script: str) -> list[str]:
    """Split a migration into statements, keeping a trigger's inner semicolons in its body.

    (``sqlite3.Connection.executescript`` would split it too, but commits first and cannot run
    inside our transaction.)
    """
    statements, buffer = [], ""
    for line in script.strip().splitlines():
        buffer += line + "\n"
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
