"""The embedded transparency log's tables: one migration step, kept apart so it can be renumbered.

``log`` holds the one log this appliance keeps (origin, key, size); ``log_entries`` every entry
(body, leaf hash, SET) in index order; ``log_tiles`` the Merkle tree as C2SP tlog-tiles (one row
per tile, partial tiles grown in place, which is append-only at the byte level);
``log_checkpoints`` every signed checkpoint. Each tile row also keeps the seven node levels
inside the tile, so any subtree hash is one slice of one row (proofs in well under a millisecond)
while the exported tiles stay exactly C2SP. Updates and deletes of entries and checkpoints are
refused by triggers, as for the audit log.
"""

from __future__ import annotations

LOG_MIGRATION = """
CREATE TABLE log (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    origin TEXT NOT NULL,
    key_name TEXT NOT NULL,
    log_id TEXT NOT NULL,           -- hex SHA-256 of the log key's DER SPKI
    public_key_pem TEXT NOT NULL,
    created TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE log_entries (
    idx INTEGER PRIMARY KEY,
    integrated_time INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body BLOB NOT NULL,             -- canonicalized Rekor v1 body
    leaf_hash BLOB NOT NULL,
    set_signature BLOB NOT NULL,
    subject TEXT NOT NULL           -- what was signed, for people (file, action, export)
);
CREATE TABLE log_tiles (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hashes BLOB NOT NULL,           -- the C2SP tile: up to 256 hashes of tree level 8 * level
    inner BLOB NOT NULL,            -- levels 8*level+1 .. +7 inside it (fixed slots, zero-filled)
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE log_checkpoints (
    size INTEGER PRIMARY KEY,
    root_hash BLOB NOT NULL,
    note TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TRIGGER log_entries_no_update BEFORE UPDATE ON log_entries
    BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
CREATE TRIGGER log_entries_no_delete BEFORE DELETE ON log_entries
    BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
CREATE TRIGGER log_checkpoints_no_update BEFORE UPDATE ON log_checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER log_checkpoints_no_delete BEFORE DELETE ON log_checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
"""

# --- lookup by leaf hash (a later migration step) ---------------------------------------------
#
# Only the leaf hash is indexed: a digest, envelope or subject index cost appends too much
# (bench/tlog_index_cost_bench.py at 3 x 10^5 entries: 14,900 appends per CPU second with no
# index, 10,200 with the leaf-hash one, 6,500 with all four; issue 12's floor is 10,000), so the
# Log screen's searches scan, as they did before.

LOG_INDEX_NAMES = ("log_entries_by_leaf_hash",)
LOG_INDEX_MIGRATION = """
CREATE INDEX log_entries_by_leaf_hash ON log_entries (leaf_hash);
"""
"""The index for lookups by leaf hash (Rekor UUIDs: `airseal log get UUID`, `airseal log serve`,
the duplicate check before an append); an existing home builds it when it is opened (one
transaction: a failure leaves the database as it was)."""
