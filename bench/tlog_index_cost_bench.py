"""What log indexes cost appends: four logs grown side by side in one process.

The logs differ only in their indexes (none, as schema 6; the leaf-hash index, as schema 7; with the
digest index; all four tried for schema 7, three dropped for what they cost appends). Each round
appends one batch of ``--batch`` entries (each with its own artifact digest and a random action id,
as real actions have) to each log in turn, so the machine's other load falls on all four alike; the
rate printed is per CPU second (user+sys of this process) over the last ``--measure`` entries, when
the indexes are largest.

    .venv/bin/python bench/tlog_index_cost_bench.py --entries 300000
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

# The indexes tried for schema 7 beside the leaf-hash one, kept here only to show their cost.
_BODY_JSON = "CASE WHEN json_valid(CAST(body AS TEXT)) THEN json_extract(CAST(body AS TEXT), "
_DROPPED = f"""
CREATE INDEX by_digest ON log_entries (coalesce(({_BODY_JSON}'$.spec.data.hash.value') END),
    ({_BODY_JSON}'$.spec.payloadHash.value') END)));
CREATE INDEX by_envelope_hash ON log_entries (({_BODY_JSON}'$.spec.envelopeHash.value') END));
CREATE INDEX by_subject_name ON log_entries ((lower(substr(subject, instr(subject, ' ') + 1))));
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--measure", type=int, default=50_000)
    args = parser.parse_args()

    from cryptography.hazmat.primitives.asymmetric import ec

    from airseal._internal.migrations import migrate, split_statements
    from airseal.appliance import tlog_store as ts
    from airseal.appliance.db import MIGRATIONS
    from airseal.appliance.tlog_schema import LOG_INDEX_MIGRATION
    from airseal.trustroot.signer import PrivateKeySigner
    from airseal.trustroot.tlog import entries

    signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    now = datetime.now(UTC)
    template = entries.hashedrekord_body(b"\x11" * 32, b"\x22" * 71, signer.public_key)
    placeholder = (b"\x11" * 32).hex().encode()
    base = MIGRATIONS[: MIGRATIONS.index(LOG_INDEX_MIGRATION)]
    indexes = [*split_statements(LOG_INDEX_MIGRATION), *split_statements(_DROPPED)]
    variants = {
        "no index (schema 6)": [],
        "leaf hash (schema 7)": indexes[:1],
        "leaf hash, digest": indexes[:2],
        "all four": indexes,
    }
    with tempfile.TemporaryDirectory() as tmp:
        logs = {}
        for number, (label, statements) in enumerate(variants.items()):
            conn = sqlite3.connect(Path(tmp) / f"{number}.db", isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            migrate(conn, base)
            for statement in statements:
                conn.execute(statement)
            ts.create_log(conn, origin="log.bench.example", key_name="k",
                          public_key=signer.public_key, signer=signer, now=now)
            logs[label] = ts.TransparencyLog(conn)
        cpu = dict.fromkeys(logs, 0.0)
        done = 0
        while done < args.entries:
            n = min(args.batch, args.entries - done)
            batch = [
                ts.NewEntry(
                    "hashedrekord",
                    template.replace(placeholder,
                                     hashlib.sha256(b"%d" % (done + i)).hexdigest().encode()),
                    f"action {hashlib.sha256(b'a%d' % (done + i)).hexdigest()[:12]} v1",
                )
                for i in range(n)
            ]
            for label, log in logs.items():
                start = time.process_time()
                log.append(batch, signer, now=now)
                if done >= args.entries - args.measure:
                    cpu[label] += time.process_time() - start
            done += n
    measured = min(args.measure, args.entries)
    print(f"appends per CPU second over the last {measured:,} of {done:,} entries "
          f"(batches of {args.batch:,}):")
    for label, seconds in cpu.items():
        print(f"  {label}: {measured / seconds:,.0f}")


if __name__ == "__main__":
    main()
