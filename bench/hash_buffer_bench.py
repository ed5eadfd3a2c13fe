"""Why the read buffer's address decides how fast a file hashes (see airseal.trustroot.digest).

Each variant reads and hashes the same file in a fresh process (page cache warm) and prints the
time spent in ``readinto`` and in ``sha256.update`` separately, median of N runs:

- ``bytearray+N``: a 1 MiB buffer starting N bytes past a page boundary (glibc's mmap-served
  ``malloc`` puts a fresh 1 MiB ``bytearray`` at +16);
- ``fresh bytearray`` / ``bytearray after a freed one``: what ``bytearray(1 MiB)`` gives as is;
- ``chunk_buffer``: what Airseal uses (an anonymous map, page-aligned);
- ``file_digest``: ``hashlib.file_digest`` (3.11; its own 256 KiB ``bytearray``);
- ``chunk_buffer+fadvise``: with ``posix_fadvise(SEQUENTIAL)`` (no effect on a warm cache).

    .venv/bin/python bench/hash_buffer_bench.py [--size-mib 1024] [--runs 5] [--file PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import ctypes, hashlib, os, sys, time
variant, path = sys.argv[1], sys.argv[2]
size = 1024 * 1024
digest = hashlib.sha256()
read_s = hash_s = 0.0

def address(view):
    return ctypes.addressof((ctypes.c_char * len(view)).from_buffer(view))

if variant == "file_digest":
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as handle:
        hashlib.file_digest(handle, "sha256")
    print(f"{time.perf_counter() - start} 0 0 -")
    raise SystemExit
if variant.startswith("bytearray+"):
    big = bytearray(size + 8192)
    first = (-address(big)) % 4096 + int(variant.split("+")[1])
    view = memoryview(big)[first : first + size]
elif variant == "fresh bytearray":
    view = memoryview(bytearray(size))
elif variant == "bytearray after a freed one":
    gone = bytearray(size)
    del gone
    view = memoryview(bytearray(size))
else:
    from airseal.trustroot.digest import chunk_buffer
    view = chunk_buffer(size)
with open(path, "rb", buffering=0) as handle:
    if variant.endswith("fadvise"):
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        n = handle.readinto(view)
        t1 = time.perf_counter()
        read_s += t1 - t0
        if not n:
            break
        digest.update(view[:n])
        hash_s += time.perf_counter() - t1
    total = time.perf_counter() - start
print(f"{total} {read_s} {hash_s} {address(view) % 4096}")
"""

VARIANTS = [
    "bytearray+0",
    "bytearray+16",
    "bytearray+64",
    "fresh bytearray",
    "bytearray after a freed one",
    "chunk_buffer",
    "chunk_buffer+fadvise",
    "file_digest",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--file", type=Path, help="hash this file instead of a random one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="airseal-hashbench-") as tmp:
        path = args.file
        if path is None:
            path = Path(tmp) / "blob.bin"
            chunk = os.urandom(1024 * 1024)
            with open(path, "wb") as handle:
                for _ in range(args.size_mib):
                    handle.write(chunk)
        subprocess.run(["openssl", "dgst", "-sha256", str(path)], check=True, capture_output=True)
        print(f"{path.stat().st_size / 2**20:.0f} MiB, median of {args.runs} fresh processes")
        print(f"{'variant':<30} {'total':>7} {'read':>7} {'hash':>7}  page offset")
        for variant in VARIANTS:
            rows = []
            for _ in range(args.runs):
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, variant, str(path)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.split()
                rows.append(out)
            total, read, hashed = (statistics.median(float(r[i]) for r in rows) for i in range(3))
            print(f"{variant:<30} {total:6.3f}s {read:6.3f}s {hashed:6.3f}s  {rows[0][3]}")


if __name__ == "__main__":
    main()
