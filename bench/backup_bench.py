"""Benchmark: backup, verify and restore of a home holding one large payload, in CPU seconds.

    .venv/bin/python bench/backup_bench.py --size-mib 256 [--dir /path/on/target/fs]

In-process (no interpreter start-up counted). Prints user+sys CPU and wall time of each step and,
as a baseline, ``openssl dgst -sha256`` of the payload (one read at hardware SHA-256 speed). A
backup hashes every file, writes a tar, encrypts it (age: ChaCha20-Poly1305) and hashes the
result; a restore hashes, decrypts, unpacks and hashes again, so several passes over the data are
expected. Wall time on a shared machine is noisy: compare the CPU figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MiB = 1024 * 1024
PASSWORD = "bench backup passphrase"


class Prompter:
    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        return PASSWORD

    def notice(self, message: str) -> None:
        pass


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(label: str, step):  # type: ignore[no-untyped-def]
    start_cpu, start = cpu(), time.perf_counter()
    result = step()
    print(f"{label:<24} cpu {cpu() - start_cpu:7.2f} s   wall {time.perf_counter() - start:7.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    os.environ["COSIGN_PASSWORD"] = PASSWORD
    os.environ["AIRSEAL_BACKUP_PASSWORD"] = PASSWORD

    from airseal.appliance.backup import create_backup, restore_backup, verify_backup
    from airseal.appliance.db import open_database
    from airseal.appliance.home import init_home
    from airseal.appliance.intake import VendorSignature, add_file
    from airseal.appliance.keystore import generate_file_key

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = Path(tmp)
        payload = base / "payload.bin"
        with open(payload, "wb") as handle:
            for _ in range(args.size_mib):
                handle.write(os.urandom(MiB))
        home, _ = init_home(base / "home")
        db = open_database(home)
        key = generate_file_key(home, db, "ops", Prompter())
        add_file(home, db, payload, VendorSignature())
        print(f"home with a {args.size_mib} MiB payload")
        measure("openssl dgst -sha256", lambda: subprocess.run(
            ["openssl", "dgst", "-sha256", str(payload)], check=True, capture_output=True))
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(f"{'':<24} (openssl's own cpu {child.ru_utime + child.ru_stime:.2f} s)")
        measure("backup", lambda: create_backup(home, db, base / "backup", "ops", Prompter()))
        db.close()
        measure("backup verify", lambda: verify_backup(base / "backup", Prompter(),
                                                       expect_key=key.fingerprint))
        measure("restore", lambda: restore_backup(base / "backup", base / "restored", Prompter(),
                                                  expect_key=key.fingerprint, sequence_gap=10))


if __name__ == "__main__":
    main()
