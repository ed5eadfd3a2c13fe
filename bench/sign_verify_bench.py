"""Hash+sign and verify of a large file, against `openssl dgst -sha256` of the same file.

Prints wall-clock times (best of N, page cache warm for all), the ratio to openssl, and the peak
RSS of each `airseal` child process. Targets (issue 2): ratio <= 1.05x for the in-process
hash+sign and verify; peak RSS < 100 MiB for 1 GiB and 4 GiB alike.

    .venv/bin/python bench/sign_verify_bench.py --size-mib 1024 --size-mib 4096
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

PASSWORD = "bench-password"


def make_file(path: Path, size_mib: int) -> None:
    chunk = os.urandom(1024 * 1024)
    with open(path, "wb") as handle:
        for _ in range(size_mib):
            handle.write(chunk)


def best_of(runs: int, argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Best wall time and the largest child peak RSS (KiB) over ``runs`` runs."""
    best, peak = float("inf"), 0
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
        peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
    return best, peak


def in_process(path: Path, runs: int) -> tuple[float, float]:
    """Best hash+sign and hash+verify times inside one process (key already unlocked)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from airseal.appliance.blobs import hash_file
    from airseal.trustroot.bundle import message_signature_bundle
    from airseal.trustroot.signer import PrivateKeySigner
    from airseal.trustroot.verify import verify_blob_bundle

    signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    sign_best = verify_best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        digest, _ = hash_file(path)
        bundle = message_signature_bundle(signer.public_key, digest, signer.sign_digest(digest))
        sign_best = min(sign_best, time.perf_counter() - start)
        start = time.perf_counter()
        verify_blob_bundle(signer.public_key, bundle, hash_file(path)[0])
        verify_best = min(verify_best, time.perf_counter() - start)
    return sign_best, verify_best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, action="append", help="file size (repeatable)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sizes = args.size_mib or [1024]
    with tempfile.TemporaryDirectory(prefix="airseal-bench-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "AIRSEAL_HOME": str(work / "home"), "COSIGN_PASSWORD": PASSWORD}
        airseal = [sys.executable, "-m", "airseal.appliance.cli"]
        subprocess.run([*airseal, "init"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(
            [*airseal, "key", "generate", "bench"], check=True, env=env, stdout=subprocess.DEVNULL
        )
        pub = work / "bench.pub"
        pub.write_bytes(
            subprocess.run(
                [*airseal, "key", "export-public", "bench"],
                check=True,
                env=env,
                capture_output=True,
            ).stdout
        )
        for size in sizes:
            blob = work / f"blob-{size}.bin"
            make_file(blob, size)
            bundle = work / "blob.sigstore.json"
            openssl, _ = best_of(args.runs, ["openssl", "dgst", "-sha256", str(blob)], env)
            cli_sign, sign_rss = best_of(
                args.runs,
                [*airseal, "sign-blob", str(blob), "--key", "bench", "--bundle", str(bundle)],
                env,
            )
            cli_verify, verify_rss = best_of(
                args.runs,
                [*airseal, "verify-blob", str(blob), "--key", str(pub), "--bundle", str(bundle)],
                env,
            )
            lib_sign, lib_verify = in_process(blob, args.runs)
            print(f"== {size} MiB (best of {args.runs}, warm page cache)")
            print(f"openssl dgst -sha256          {openssl:7.3f} s")
            print(
                f"hash+sign   (in process)      {lib_sign:7.3f} s  ratio {lib_sign / openssl:5.2f}x"
            )
            print(
                f"hash+verify (in process)      {lib_verify:7.3f} s  ratio "
                f"{lib_verify / openssl:5.2f}x"
            )
            print(
                f"airseal sign-blob   (CLI)     {cli_sign:7.3f} s  ratio {cli_sign / openssl:5.2f}x"
                f"  (includes start-up and scrypt key unlock)"
            )
            print(
                f"airseal verify-blob (CLI)     {cli_verify:7.3f} s  ratio "
                f"{cli_verify / openssl:5.2f}x  (includes start-up)"
            )
            print(f"peak RSS of CLI children      {max(sign_rss, verify_rss) / 1024:7.1f} MiB")
            blob.unlink()


if __name__ == "__main__":
    main()
