"""The embedded transparency log at scale: batched appends, proof times, bytes added to an export.

Prints:
- appends per second, batched (``--batch`` entries per transaction, each entry with its SET,
  each batch with a signed checkpoint; SQLite file in WAL mode with ``synchronous = FULL``), and
  beside it the ECDSA P-256 signatures per second of the same key in the same process, which is
  the ceiling a Rekor-style log (one SET per entry) can reach here;
- inclusion and consistency proof generation time at the final size (mean and p99 over random
  indexes/sizes) and the number of tile reads each takes;
- lookups at the final size, CPU and wall time per lookup: an entry by leaf hash (indexed; what
  `airseal log serve` does for ``GET /api/v1/log/entries/{uuid}``, ``retrieve`` and the duplicate
  check before a ``POST``), and the Log screen's search (:func:`log_overview`, a scan) by an
  artifact digest prefix, by an action id, and by a word every entry's subject holds (the newest
  500 of all). Each entry has its own digest and action id. Run the same script over an older
  tree to compare (``PYTHONPATH=<old tree>``: the schema and queries are the tree's);
- the bytes the log adds to an export of 100 actions: the ``tlogEntries`` of 101 bundles as the
  appliance keeps them (indent 2), at the final size; and, for 100 real DSSE action bundles
  signed one after another or ``--spread-gap`` entries apart, what the media carries instead:
  the bundles without the site log's entries, the export statement's own entry, and
  ``airseal/log/`` (checkpoint; proofs.json: 64 earlier exports' sizes and the entries; hashes:
  one proof of every entry's inclusion and every earlier size's consistency).

On a shared machine the wall-clock rate depends on the other load; the rate per CPU second
(user+sys of this process, every signing thread included) does much less.

Targets (issue 12): >= 10,000 appends/s; proofs < 1 ms; < 64 KiB per 100-action export.

    .venv/bin/python bench/tlog_bench.py --entries 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument("--spread-gap", type=int, default=1000,
                        help="other entries logged between two actions in the worst case")
    args = parser.parse_args()

    from cryptography.hazmat.primitives.asymmetric import ec

    from airseal._internal.migrations import migrate
    from airseal.appliance import tlog_store as ts
    from airseal.appliance.db import MIGRATIONS
    from airseal.trustroot.signer import PrivateKeySigner
    from airseal.trustroot.tlog import entries, merkle, tiles

    signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "log.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        migrate(conn, MIGRATIONS)
        ts.create_log(
            conn,
            origin="log.bench.example",
            key_name="k",
            public_key=signer.public_key,
            signer=signer,
            now=now,
        )
        log = ts.TransparencyLog(conn)

        # A realistic body: a hashedrekord entry is about 700 bytes.
        template = entries.hashedrekord_body(b"\x11" * 32, b"\x22" * 71, signer.public_key)
        placeholder = (b"\x11" * 32).hex().encode()
        assert template.count(placeholder) == 1
        start, cpu_start = time.perf_counter(), time.process_time()
        done = 0
        while done < args.entries:
            n = min(args.batch, args.entries - done)
            batch = [
                ts.NewEntry("hashedrekord", _unique(template, placeholder, done + i),
                            f"action {done + i:012x} v1")
                for i in range(n)
            ]
            log.append(batch, signer, now=now)
            done += n
        append_s = time.perf_counter() - start
        append_cpu = time.process_time() - cpu_start
        sig_start = time.perf_counter()
        for i in range(5000):
            signer.sign_message(b"%d" % i)
        sig_rate = 5000 / (time.perf_counter() - sig_start)
        size = log.size
        db_bytes = sum(p.stat().st_size for p in Path(tmp).iterdir())

        reads = 0

        def counting_read(level: int, index: int) -> tuple[bytes, bytes]:
            nonlocal reads
            reads += 1
            return log.read_tile_and_inner(level, index)

        rng = random.Random(12)
        inc_times, inc_reads = [], []
        for _ in range(args.proofs):
            index = rng.randrange(size)
            reads = 0
            t = time.perf_counter()
            merkle.inclusion_proof(index, size, tiles.stored_node_reader(counting_read))
            inc_times.append(time.perf_counter() - t)
            inc_reads.append(reads)
        con_times, con_reads = [], []
        for _ in range(args.proofs):
            old = rng.randrange(1, size)
            reads = 0
            t = time.perf_counter()
            merkle.consistency_proof(old, size, tiles.stored_node_reader(counting_read))
            con_times.append(time.perf_counter() - t)
            con_reads.append(reads)

        lookups = _lookups(conn, size, rng)
        schema = conn.execute("PRAGMA user_version").fetchone()[0]
        upgrade = _upgrade_seconds(conn)

        added = 0
        parts = {"canonicalizedBody": 0, "inclusionProof.hashes": 0, "checkpoint": 0, "SET": 0}
        for index in rng.sample(range(size), 101):
            item = log.entry(index).to_json()
            added += len(json.dumps(item, indent=2)) + 2 * 6
            parts["canonicalizedBody"] += len(item["canonicalizedBody"])
            parts["inclusionProof.hashes"] += sum(
                len(h) + 3 for h in item["inclusionProof"]["hashes"]
            )
            parts["checkpoint"] += len(item["inclusionProof"]["checkpoint"]["envelope"])
            parts["SET"] += len(item["inclusionPromise"]["signedEntryTimestamp"])
        media = _media_log_bytes(log, signer, now, template, rng, args.spread_gap)
        conn.close()

    def ms(values: list[float]) -> str:
        p99 = sorted(values)[int(len(values) * 0.99) - 1]
        return f"mean {statistics.mean(values) * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms"

    print(f"entries: {size:,} in batches of {args.batch:,}; database {db_bytes / 2**20:.0f} MiB")
    print(
        f"appends: {size / append_s:,.0f}/s ({append_s:.1f} s wall); "
        f"{size / append_cpu:,.0f} per CPU second ({append_cpu:.1f} s user+sys, all threads); "
        f"ECDSA P-256 signatures alone: {sig_rate:,.0f}/s (one SET per entry)"
    )
    print(f"inclusion proof at {size:,}: {ms(inc_times)}; tile reads max {max(inc_reads)}")
    print(f"consistency proof to {size:,}: {ms(con_times)}; tile reads max {max(con_reads)}")
    print(f"lookups at {size:,} (schema {schema}; CPU = user+sys of this process, per lookup):")
    for label, (cpu, wall, count) in lookups.items():
        print(f"  {label}: {cpu * 1000:.3f} ms CPU, {wall * 1000:.3f} ms wall (mean of {count})")
    if upgrade is not None:
        print(f"upgrading a home at {size:,} entries to schema {schema} (the leaf-hash index): "
              f"{upgrade[0]:.2f} s CPU, {upgrade[1]:.2f} s wall")
    print(
        f"log bytes in 101 bundles as the appliance keeps them (their tlogEntries; before "
        f"issue 12 the media carried all of it, plus log/): "
        f"{added:,} bytes ({added / 1024:.1f} KiB), of which "
        + ", ".join(f"{k} {v / 1024:.1f} KiB" for k, v in parts.items())
    )

    print("log bytes an export of 100 actions carries (issue 12 target: < 64 KiB on the media):")
    for k, v in media.items():
        print(f"  {k}: {v:,} bytes ({v / 1024:.1f} KiB)")


def _unique(template: bytes, placeholder: bytes, n: int) -> bytes:
    """The template body with its own artifact digest (SHA-256 of ``n``), still canonical JSON."""
    return template.replace(placeholder, hashlib.sha256(b"%d" % n).hexdigest().encode())


def _lookups(conn: sqlite3.Connection, size: int, rng: random.Random
             ) -> dict[str, tuple[float, float, int]]:
    from airseal.appliance.log_view import log_overview

    def timed(items: list[int], one) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
        cpu, wall = time.process_time(), time.perf_counter()
        for item in items:
            one(item)
        return ((time.process_time() - cpu) / len(items),
                (time.perf_counter() - wall) / len(items), len(items))

    def by_leaf(index: int) -> None:
        leaf = conn.execute("SELECT leaf_hash FROM log_entries WHERE idx = ?", [index]).fetchone()
        row = conn.execute("SELECT idx FROM log_entries WHERE leaf_hash = ?", [leaf[0]]).fetchone()
        assert row[0] == index

    def by_digest(index: int) -> None:
        found = log_overview(conn, search=hashlib.sha256(b"%d" % index).hexdigest()[:16])
        assert [e.index for e in found.entries] == [index]

    def by_action(index: int) -> None:
        found = log_overview(conn, search=f"{index:012x}")
        assert index in [e.index for e in found.entries]

    def broad(_index: int) -> None:
        assert len(log_overview(conn, search="action").entries) == min(size, 500)

    picks = rng.sample(range(size), 200)
    return {
        "entry by leaf hash (log serve's UUID lookup, the schema 7 index)": timed(picks, by_leaf),
        "Log screen search by a 16-digit digest prefix (a scan of bodies)":
            timed(picks[:10], by_digest),
        "Log screen search by an action id (a scan of subjects)": timed(picks[10:20], by_action),
        "Log screen search matching every entry (newest 500, a scan)": timed(picks[20:25], broad),
    }


def _upgrade_seconds(conn: sqlite3.Connection) -> tuple[float, float] | None:
    """How long an existing home's database takes to gain the leaf-hash index (the last migration,
    undone here and run again), or None in a tree without them."""
    from airseal._internal.migrations import migrate
    from airseal.appliance import tlog_schema
    from airseal.appliance.db import MIGRATIONS

    indexes = getattr(tlog_schema, "LOG_INDEX_NAMES", None)
    if not indexes:
        return None
    version = len(MIGRATIONS)
    for name in indexes:
        conn.execute(f"DROP INDEX {name}")
    conn.execute(f"PRAGMA user_version = {version - 1}")
    cpu, wall = time.process_time(), time.perf_counter()
    migrate(conn, MIGRATIONS)
    return time.process_time() - cpu, time.perf_counter() - wall


def _media_log_bytes(log, signer, now, template, rng, gap: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """What the log adds to an export of 100 real DSSE action bundles on the media (their
    entries moved into ``airseal/log/proofs.json``): the media bundles' remaining bytes over the
    same bundles without any entry, the export statement's own entry, and the ``airseal/log/``
    files (64 earlier exports 50 entries apart, then the 100 actions signed one after another,
    the usual case; or ``gap`` other entries between each two, the worst case)."""
    import hashlib

    from airseal.appliance import tlog_store as ts
    from airseal.media.layout import action_bundle_path
    from airseal.trustroot.bundle import bundle_to_json, sign_statement
    from airseal.trustroot.dsse import Statement, Subject

    counter = iter(range(10**12))

    def others(n: int) -> list[ts.NewEntry]:  # distinct bodies: no leaf or subtree repeats
        return [ts.NewEntry("hashedrekord", template[:-2] + b"x%d}}" % next(counter), "b")
                for _ in range(n)]

    for i in range(64):
        log.append([*others(50), ts.NewEntry("dsse", template, f"{ts.EXPORT_SUBJECT} {i}")],
                   signer, now=now)

    def action(i: int, label: str) -> tuple[str, str, bytes]:
        statement = Statement(
            subject=(Subject(name=f"payload-{i}.tar.gz",
                             digest={"sha256": hashlib.sha256(b"%d" % i).hexdigest()}),),
            predicateType="https://airseal.example/action/v1",
            predicate={"id": f"{label}-{i:03d}", "version": 1, "name": f"action {i}"})
        bare = bundle_to_json(sign_statement(signer, statement))
        new = ts.entry_for_bundle(bare, signer.public_key, f"action {i}")
        (index,), _ = log.append([new], signer, now=now)
        logged = ts.with_tlog_entry(bare, log.entry(index))
        return f"action {i}", action_bundle_path(f"{label}-{i:03d}"), logged

    out: dict[str, int] = {}
    export_entry = len(json.dumps(log.entry(log.size - 1).to_json(), indent=2)) + 2 * 6
    for label in ("consecutive", "spread"):
        bundles = []
        for i in range(100):
            if label == "spread":
                log.append(others(gap), signer, now=now)
            bundles.append(action(i, label))
        files = ts.media_log_files(log, bundles)
        kept_full = sum(len(b) for _, _, b in bundles)
        bare = sum(len(_without_entries(b)) for _, _, b in bundles)
        on_media = sum(len(b) for b in files.bundles)
        log_files = len(files.checkpoint) + len(files.proofs) + len(files.hashes)
        out[f"100 {label}: bundles as kept (full tlogEntries) + export entry"] = (
            kept_full - bare + export_entry)
        out[f"100 {label}: on the media (bundles + export entry + log/ files)"] = (
            on_media - bare + export_entry + log_files)
        out[f"100 {label}: of which log/proofs.json"] = len(files.proofs)
        out[f"100 {label}: of which log/hashes (the one proof)"] = len(files.hashes)
    return out


def _without_entries(bundle: bytes) -> bytes:
    data = json.loads(bundle)
    data["verificationMaterial"]["tlogEntries"] = []
    return (json.dumps(data, indent=2) + "\n").encode()


if __name__ == "__main__":
    main()
