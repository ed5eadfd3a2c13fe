"""The embedded log's store: batches, proofs, the static tile export, tamper and crash safety."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from airseal._internal.migrations import migrate
from airseal.appliance import tlog_store as ts
from airseal.appliance.db import MIGRATIONS
from airseal.trustroot.errors import LogProofError
from airseal.trustroot.signer import PrivateKeySigner
from airseal.trustroot.tlog import entries, merkle, tiles
from airseal.trustroot.tlog.checkpoint import verify_checkpoint

ORIGIN = "log.test.example"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
# A fixed key derived in memory (never written anywhere), so a child process signs as the parent.
KEY_SECRET = 0x5EED_0F_A1_25EA1


def _signer() -> PrivateKeySigner:
    return PrivateKeySigner(ec.derive_private_key(KEY_SECRET, ec.SECP256R1()))


def _open(path: Path | str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    migrate(conn, MIGRATIONS)
    return conn


def _new_log(path: Path | str = ":memory:") -> tuple[sqlite3.Connection, ts.TransparencyLog]:
    conn = _open(path)
    signer = _signer()
    ts.create_log(
        conn, origin=ORIGIN, key_name="k", public_key=signer.public_key, signer=signer, now=NOW
    )
    return conn, ts.TransparencyLog(conn)


def _batch(start: int, n: int) -> list[ts.NewEntry]:
    return [
        ts.NewEntry("hashedrekord", f'{{"n":{i}}}'.encode(), f"e{i}")
        for i in range(start, start + n)
    ]


def test_batches_build_the_rfc6962_tree_and_every_proof_verifies() -> None:
    _, log = _new_log()
    signer = _signer()
    sizes = [0]
    for n in (1, 255, 1, 300, 70_000 // 100):
        indexes, point = log.append(_batch(sizes[-1], n), signer, now=NOW)
        assert indexes == list(range(sizes[-1], sizes[-1] + n))
        sizes.append(point.checkpoint.size)
    size = sizes[-1]
    leaves = [merkle.leaf_hash(f'{{"n":{i}}}'.encode()) for i in range(size)]
    assert log.root() == merkle.root_of_leaf_hashes(leaves)
    log.verify()
    for index in (0, 1, 255, 256, 511, 557, size - 1):
        entries.verify_tlog_entry(
            log.entry(index), log_key=signer.public_key, name=ORIGIN, origin=ORIGIN, signed=None
        )
    for old in sizes:
        proof = log.consistency(old)
        merkle.verify_consistency(
            old, size, proof, log.checkpoint_at(old).checkpoint.root_hash, log.root()
        )


def test_static_export_is_c2sp_tiles_that_rebuild_the_root(tmp_path) -> None:
    _, log = _new_log()
    log.append(_batch(0, 256 * 2 + 5), _signer(), now=NOW)
    written = log.export_tiles(tmp_path)
    names = {p.relative_to(tmp_path).as_posix() for p in written}
    assert {
        "checkpoint",
        "tile/0/000",
        "tile/0/001",
        "tile/0/002.p/5",
        "tile/1/000.p/2",
        "tile/entries/000",
        "tile/entries/002.p/5",
    } <= names
    note = (tmp_path / "checkpoint").read_text()
    point = verify_checkpoint(note, key=_signer().public_key, name=ORIGIN, origin=ORIGIN)

    def read(level: int, index: int) -> bytes:
        for level_, index_, width in tiles.tiles_for_size(point.size):
            if (level_, index_) == (level, index):
                return (tmp_path / tiles.tile_path(level, index, width)).read_bytes()
        raise AssertionError((level, index))

    assert merkle.root_hash(point.size, tiles.node_reader(read)) == point.root_hash
    bundle = (tmp_path / "tile/entries/002.p/5").read_bytes()
    assert bundle[2 : 2 + int.from_bytes(bundle[:2], "big")] == b'{"n":512}'


def test_entries_and_checkpoints_cannot_be_rewritten_and_damage_is_found() -> None:
    conn, log = _new_log()
    log.append(_batch(0, 300), _signer(), now=NOW)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE log_entries SET body = x'00' WHERE idx = 3")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM log_checkpoints")
    blob = bytearray(log.read_tile(0, 0))
    blob[40] ^= 1
    conn.execute("UPDATE log_tiles SET hashes = ? WHERE level = 0 AND idx = 0", [bytes(blob)])
    with pytest.raises(ts.LogInconsistent, match="tile/0/000"):
        log.verify()
    with pytest.raises(LogProofError):
        entries.verify_tlog_entry(
            log.entry(0), log_key=_signer().public_key, name=ORIGIN, origin=ORIGIN, signed=None
        )


def test_only_the_log_key_may_append() -> None:
    _, log = _new_log()
    stranger = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ts.LogError, match="not the log key"):
        log.append(_batch(0, 1), stranger, now=NOW)
    assert log.size == 0


CHILD = textwrap.dedent(
    """
    import sys
    from tests.appliance.test_tlog_store import _batch, _open, _signer, NOW
    from airseal.appliance import tlog_store as ts
    conn = _open(sys.argv[1])
    log = ts.TransparencyLog(conn)
    signer = _signer()
    while True:
        start = log.size
        indexes, point = log.append(_batch(start, 37), signer, now=NOW)
        print(f"ack {point.checkpoint.size}", flush=True)
    """
)


@pytest.mark.slow
def test_kill_9_during_appends_never_loses_an_acknowledged_entry(tmp_path) -> None:
    """24 kill points spread through appends; after each the log reopens consistent, holds every
    acknowledged entry, and appends on from where it stopped."""
    path = tmp_path / "log.db"
    conn, _ = _new_log(path)
    conn.close()
    rng = random.Random(1234)
    acknowledged = 0
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    for point in range(24):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env
        )
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first.startswith("ack "), first
        acknowledged = max(acknowledged, int(first.split()[1]))
        time.sleep(rng.uniform(0, 0.08) + point * 0.001)
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate()
        for line in rest.splitlines():
            if line.startswith("ack "):
                acknowledged = max(acknowledged, int(line.split()[1]))
        conn = _open(path)
        log = ts.TransparencyLog(conn)
        latest = log.verify()  # entries, tiles and the signed checkpoint agree
        assert log.size >= acknowledged, f"kill point {point}: acknowledged entries were lost"
        assert latest.checkpoint.size == log.size
        conn.close()
    assert acknowledged > 24 * 37
