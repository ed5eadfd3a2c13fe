"""`airseal log serve` at scale: request latency over loopback for a log of ``--entries`` leaves.

Prints mean and p99 wall time and the CPU time (user+sys) of the process, client and server
together, per request for:
``GET /api/v1/log``, ``GET /api/v1/log/entries?logIndex=N`` (entry, SET, inclusion proof),
``GET /api/v1/log/entries/{uuid}`` (the leaf-hash index of schema 7), ``GET /api/v1/log/proof``,
a full tile, and ``POST /api/v1/log/entries`` (signature check, append with SET, checkpoint).
Client and server share the process (one keep-alive-less connection per request, as curl).

    .venv/bin/python bench/log_serve_bench.py --entries 100000
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from airseal._internal.migrations import migrate
from airseal.appliance import tlog_store as ts
from airseal.appliance.db import MIGRATIONS
from airseal.appliance.log_server import LogHttpServer, LogService
from airseal.trustroot.signer import PrivateKeySigner
from airseal.trustroot.tlog import entries, merkle, rekor_api

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def build(path: Path, size: int, signer: PrivateKeySigner) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn, MIGRATIONS)
    ts.create_log(conn, origin="log.bench.example", key_name="k", public_key=signer.public_key,
                  signer=signer, now=NOW)
    log = ts.TransparencyLog(conn)
    for start in range(0, size, 50_000):
        count = min(50_000, size - start)
        log.append([ts.NewEntry("hashedrekord",
                                f'{{"apiVersion":"0.0.1","kind":"hashedrekord","n":{i}}}'.encode(),
                                "bench") for i in range(start, start + count)], signer, now=NOW)
    conn.close()


def measure(name: str, n: int, call: Callable[[int], None]) -> None:
    times = []
    cpu0 = os.times()
    for i in range(n):
        t = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - t)
    cpu1 = os.times()
    cpu = (cpu1.user - cpu0.user + cpu1.system - cpu0.system) / n
    times.sort()
    print(f"{name:<34} mean {statistics.mean(times) * 1000:7.2f} ms  "
          f"p99 {times[int(n * 0.99) - 1] * 1000:7.2f} ms  cpu {cpu * 1000:6.2f} ms/request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.db"
        build(path, args.entries, signer)
        server = LogHttpServer(("127.0.0.1", 0),
                               LogService(path, signer=signer, clock=lambda: NOW), quiet=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        port = server.server_address[1]

        def request(method: str, target: str, body: bytes | None = None) -> bytes:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request(method, target, body=body)
            response = conn.getresponse()
            data = response.read()
            conn.close()
            assert response.status in (200, 201), (response.status, data[:200])
            return data

        rng = random.Random(1)
        size = args.entries
        uuids = [merkle.leaf_hash(
            f'{{"apiVersion":"0.0.1","kind":"hashedrekord","n":{rng.randrange(size)}}}'.encode()
        ).hex() for _ in range(args.requests)]
        print(f"log of {size} entries, {args.requests} requests each")
        measure("GET /api/v1/log", args.requests, lambda i: request("GET", "/api/v1/log"))
        measure("GET entries?logIndex=N", args.requests, lambda i: request(
            "GET", f"/api/v1/log/entries?logIndex={rng.randrange(size)}"))
        measure("GET entries/{uuid} (leaf-hash index)", min(args.requests, 50),
                lambda i: request("GET", f"/api/v1/log/entries/{uuids[i]}"))
        measure("GET proof?firstSize&lastSize", args.requests, lambda i: request(
            "GET", f"/api/v1/log/proof?firstSize={rng.randrange(1, size)}&lastSize={size}"))
        measure("GET /tile/0/<N>", args.requests, lambda i: request(
            "GET", f"/tile/0/{rekor_tile(rng.randrange(size // 256))}"))

        def post(i: int) -> None:
            digest = hashlib.sha256(f"post {i}".encode()).digest()
            proposed = rekor_api.proposed_hashedrekord(digest, signer.sign_digest(digest),
                                                       signer.public_key)
            data = request("POST", "/api/v1/log/entries", json.dumps(proposed).encode())
            assert next(iter(json.loads(data).values()))["logIndex"] >= size

        measure("POST /api/v1/log/entries", args.requests, post)
        server.shutdown()
        server.server_close()
        print(f"(appends: one transaction each, {entries.HASHEDREKORD} entries)")


def rekor_tile(index: int) -> str:
    from airseal.trustroot.tlog.tiles import index_path

    return index_path(index)


if __name__ == "__main__":
    main()
