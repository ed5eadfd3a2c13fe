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

# --- lookups by leaf hash, digest and subject name (a later migration step) -------------------
#
# The expressions below are indexed and queried by the very same text (SQLite matches an
# expression index only to an identical expression). ``json_valid`` first, so a body that is not
# JSON (none is: bodies are canonical Rekor JSON) indexes as NULL instead of failing an append or
# the upgrade of a home.

ARTIFACT_DIGEST_SQL = (
    "(CASE WHEN json_valid(CAST(body AS TEXT)) THEN coalesce("
    "json_extract(CAST(body AS TEXT), '$.spec.data.hash.value'), "
    "json_extract(CAST(body AS TEXT), '$.spec.payloadHash.value')) END)"
)
"""The entry's artifact digest (hex): a ``hashedrekord``'s data hash, a ``dsse``'s payload hash."""
ENVELOPE_HASH_SQL = (
    "(CASE WHEN json_valid(CAST(body AS TEXT)) THEN "
    "json_extract(CAST(body AS TEXT), '$.spec.envelopeHash.value') END)"
)
"""A ``dsse`` entry's envelope hash (hex)."""
SUBJECT_NAME_SQL = "(lower(substr(subject, instr(subject, ' ') + 1)))"
"""The subject after its first word, lower case: the action id of ``action ID vN``, the file of
``blob NAME``, the number of ``export statement N``."""

LOG_INDEX_NAMES = (
    "log_entries_by_leaf_hash",
    "log_entries_by_digest",
    "log_entries_by_envelope_hash",
    "log_entries_by_subject_name",
)
LOG_INDEX_MIGRATION = f"""
CREATE INDEX log_entries_by_leaf_hash ON log_entries (leaf_hash);
CREATE INDEX log_entries_by_digest ON log_entries {ARTIFACT_DIGEST_SQL};
CREATE INDEX log_entries_by_envelope_hash ON log_entries {ENVELOPE_HASH_SQL};
CREATE INDEX log_entries_by_subject_name ON log_entries {SUBJECT_NAME_SQL};
"""
"""Indexes for lookups by leaf hash (Rekor UUIDs: `airseal log serve`), by artifact digest or
envelope hash, and by the subject's name (the Log screen's search); an existing home builds
them when it is opened (one transaction: a failure leaves the database as it was)."""
