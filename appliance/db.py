"""The appliance database: SQLite through sqlite-utils, WAL, schema versioned by migrations.

The schema version is SQLite's ``user_version``; each migration runs in one transaction with the
version bump, so a crash leaves the previous version intact (:mod:`airseal._internal.migrations`
runs them). Migrations only ever append.
"""

from __future__ import annotations

import sqlite3

import sqlite_utils

from airseal._internal import migrations
from airseal.appliance.home import Home
from airseal.appliance.tlog_schema import LOG_INDEX_MIGRATION, LOG_MIGRATION

# Each entry moves the schema from version i to i+1. Never edit a released entry: add one.
MIGRATIONS: tuple[str, ...] = (
    # 1: keys and the audit log
    """
    CREATE TABLE keys (
        name TEXT PRIMARY KEY,
        backend TEXT NOT NULL CHECK (backend IN ('file', 'pkcs11', 'piv')),
        algorithm TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        hint TEXT NOT NULL,
        public_key_pem TEXT NOT NULL,
        reference TEXT NOT NULL,      -- backend-specific JSON, never a secret
        created TEXT NOT NULL
    );
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        ts TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        details TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
    # 2: intake store, site settings, signed actions, exports and their sequence numbers
    """
    CREATE TABLE files (
        sha256 TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        added TEXT NOT NULL,
        method TEXT NOT NULL,          -- cosign-signature | bundle-key | keyless | none
        verified INTEGER NOT NULL,
        signer TEXT                    -- key fingerprint, or identity (issuer) for keyless
    );
    CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE actions (
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        name TEXT NOT NULL,
        os TEXT NOT NULL,
        mode TEXT NOT NULL,
        payload_sha256 TEXT NOT NULL REFERENCES files (sha256),
        key_name TEXT NOT NULL,
        created TEXT NOT NULL,
        valid_until TEXT NOT NULL,
        revoked TEXT,                  -- when revoked, else NULL
        predicate TEXT NOT NULL,       -- the signed ActionPredicate, JSON
        bundle TEXT NOT NULL,          -- the DSSE Sigstore bundle, JSON
        PRIMARY KEY (id, version)
    );
    CREATE TABLE export_sequences (
        key_fingerprint TEXT PRIMARY KEY,
        last_sequence INTEGER NOT NULL
    );
    CREATE TABLE exports (
        id TEXT PRIMARY KEY,
        sequence INTEGER NOT NULL,
        key_name TEXT NOT NULL,
        key_fingerprint TEXT NOT NULL,
        created TEXT NOT NULL,
        expires TEXT NOT NULL,
        target TEXT NOT NULL,
        actions TEXT NOT NULL,         -- JSON list of {id, version}
        files INTEGER NOT NULL,
        bytes INTEGER NOT NULL
    );
    """,
    # 3: receipts brought back from endpoints, and each agent's pinned key (trust on first use)
    """
    CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        key_fingerprint TEXT NOT NULL, -- pinned the first time a receipt from this agent arrived
        public_key_pem TEXT NOT NULL,
        hostname TEXT NOT NULL,
        os TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL
    );
    CREATE TABLE receipts (
        agent_id TEXT NOT NULL REFERENCES agents (id),
        export_id TEXT NOT NULL REFERENCES exports (id),
        status TEXT NOT NULL,          -- completed | partial | refused
        refusal TEXT,                  -- JSON {check, subject, detail} when refused
        reboot TEXT NOT NULL,
        started TEXT NOT NULL,
        finished TEXT NOT NULL,
        imported TEXT NOT NULL,
        sha256 TEXT NOT NULL,          -- of the receipt file as imported
        predicate TEXT NOT NULL,       -- the verified ReceiptPredicate, JSON
        bundle TEXT NOT NULL,          -- the receipt (DSSE Sigstore bundle), JSON
        PRIMARY KEY (agent_id, export_id)
    );
    CREATE TABLE receipt_actions (
        agent_id TEXT NOT NULL,
        export_id TEXT NOT NULL,
        action_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT,
        exit_code INTEGER,
        reboot_requested INTEGER NOT NULL,
        PRIMARY KEY (agent_id, export_id, action_id),
        FOREIGN KEY (agent_id, export_id) REFERENCES receipts (agent_id, export_id)
            ON DELETE CASCADE
    );
    CREATE INDEX receipt_actions_by_action ON receipt_actions (action_id, version);
    """,
    # 4: agent enrolment. A receipt counts only when its agent id is enrolled here with the key
    # that signed it; receipts from agents not enrolled are kept aside until the operator
    # enrols them. Keys pinned on first use before enrolment existed become enrolments marked
    # 'first-use' (never checked by an administrator), so existing sites keep their fleet view
    # and their protection against a second key, and see which agents still need checking.
    """
    CREATE TABLE enrolled_agents (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        key_fingerprint TEXT NOT NULL,
        public_key_pem TEXT NOT NULL,
        basis TEXT NOT NULL CHECK (basis IN ('administrator', 'operator-approved', 'first-use')),
        enrolled TEXT NOT NULL
    );
    INSERT INTO enrolled_agents (id, name, key_fingerprint, public_key_pem, basis, enrolled)
        SELECT id, hostname, key_fingerprint, public_key_pem, 'first-use', first_seen FROM agents;
    CREATE TABLE unenrolled_receipts (
        agent_id TEXT NOT NULL,
        export_id TEXT NOT NULL REFERENCES exports (id),
        key_fingerprint TEXT NOT NULL,
        public_key_pem TEXT NOT NULL,
        hostname TEXT NOT NULL,
        os TEXT NOT NULL,
        status TEXT NOT NULL,
        finished TEXT NOT NULL,
        received TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        bundle TEXT NOT NULL,          -- the receipt as it came, verified but for its identity
        PRIMARY KEY (agent_id, export_id, key_fingerprint)
    );
    """,
    # 5: Sigstore trust roots imported from a verified mirror of the public-good TUF repository
    # (`airseal trustroot import`). The files live in the home under sigstore-roots/<id>/; the
    # hash recorded here is checked each time keyless verification reads trusted_root.json.
    """
    CREATE TABLE sigstore_roots (
        id TEXT PRIMARY KEY,           -- also the folder name under sigstore-roots/
        imported TEXT NOT NULL,
        source TEXT NOT NULL,          -- the folder imported from
        pinned_root_version INTEGER NOT NULL,
        root_version INTEGER NOT NULL,
        root_expires TEXT NOT NULL,
        timestamp_version INTEGER NOT NULL,
        timestamp_expires TEXT NOT NULL,
        snapshot_version INTEGER NOT NULL,
        targets_version INTEGER NOT NULL,
        delegations TEXT NOT NULL,     -- JSON {role: version}
        trusted_root_sha256 TEXT NOT NULL,
        signing_config_sha256 TEXT,
        checked_at TEXT NOT NULL,      -- the time expiry was checked at
        test_reference_time INTEGER NOT NULL  -- 1 when AIRSEAL_TEST_TRUSTROOT_TIME set it
    );
    """,
    # 6: the embedded transparency log (its own module, so the step can be renumbered)
    LOG_MIGRATION,
    # 7: an index on the log's entries by leaf hash (Rekor UUID lookups)
    LOG_INDEX_MIGRATION,
)

SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: sqlite_utils.Database) -> int:
    return migrations.schema_version(db.conn)


def migrate(db: sqlite_utils.Database) -> int:
    """Apply pending migrations; returns the resulting version."""
    try:
        return migrations.migrate(db.conn, MIGRATIONS)
    except migrations.SchemaTooNew as exc:
        from airseal.appliance.errors import HomeError

        raise HomeError(
            f"database schema {exc.found} is newer than this airseal ({exc.supported})",
            hint="upgrade airseal",
        ) from None


def open_database(home: Home) -> sqlite_utils.Database:
    conn = sqlite3.connect(home.database_path, isolation_level=None, timeout=30)
    db = sqlite_utils.Database(conn)
    db.enable_wal()
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")
    migrate(db)
    return db
