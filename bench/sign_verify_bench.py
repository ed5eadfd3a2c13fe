"""`airseal sign-blob` / `verify-blob` of a large file against `openssl dgst -sha256 -sign/-verify`.

Whole process, as installed: the `airseal` console script beside this interpreter (the venv's
`.venv/bin/airseal`), or the one given with ``--airseal`` (for instance from a fresh venv with the
wheel installed). Every figure is the median of ``--runs`` runs with the page cache warm. Targets
(issue 15): `verify-blob` of 1 GiB at most 1.10x `openssl dgst -sha256 -verify` of the same file
(ECDSA P-256 key, detached signature); a small `verify-blob` starts and finishes under 0.2 s.
Issue 2: peak RSS under 100 MiB for any size.

`sign-blob` includes decrypting the cosign key (scrypt, N=65536: about 0.2 s here); openssl signs
with a PEM key encrypted the way `openssl genpkey -aes256` does it (PBKDF2, fast).

    .venv/bin/python bench/sign_verify_bench.py [--size-mib 1024] [--runs 5] [--airseal PATH]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
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


CPU: dict[str, float] = {}
"""Median CPU time (user+sys) of each command label, printed beside the wall clock: on a shared
machine the load moves the wall clock by several times, the CPU time far less."""


def median_of(runs: int, argv: list[str], env: dict[str, str], label: str) -> tuple[float, int]:
    """Median wall time and the largest peak RSS (KiB) of this command over ``runs`` runs."""
    times, cpus, peak = [], [], 0
    for _ in range(runs):
        start = time.perf_counter()
        child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert child.stderr is not None
        errors = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
        times.append(time.perf_counter() - start)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{errors.decode(errors='replace')}")
        peak = max(peak, usage.ru_maxrss)
        cpus.append(usage.ru_utime + usage.ru_stime)
    CPU[label] = statistics.median(cpus)
    return statistics.median(times), peak


def in_process(path: Path, runs: int) -> tuple[float, float]:
    """Median hash+sign and hash+verify times inside one process (key already unlocked)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from airseal.appliance.blobs import hash_file
    from airseal.trustroot.bundle import message_signature_bundle
    from airseal.trustroot.signer import PrivateKeySigner
    from airseal.trustroot.verify import verify_blob_bundle

    signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    signs, verifies = [], []
    for _ in range(runs):
        start = time.perf_counter()
        digest, _ = hash_file(path)
        bundle = message_signature_bundle(signer.public_key, digest, signer.sign_digest(digest))
        signs.append(time.perf_counter() - start)
        start = time.perf_counter()
        verify_blob_bundle(signer.public_key, bundle, hash_file(path)[0])
        verifies.append(time.perf_counter() - start)
    return statistics.median(signs), statistics.median(verifies)


def openssl_key(work: Path) -> Path:
    """An encrypted P-256 PEM key for `openssl dgst -sign`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = work / "openssl.key"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSWORD.encode()),
        )
    )
    return private


def ratio(value: float, base: float) -> str:
    return f"{value:7.3f} s  {value / base:5.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, action="append", help="file size (repeatable)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--startup-runs", type=int, default=11)
    parser.add_argument(
        "--airseal",
        type=Path,
        default=Path(sys.executable).parent / "airseal",
        help="the installed console script to time (default: the one beside this Python)",
    )
    parser.add_argument("--no-in-process", action="store_true")
    args = parser.parse_args()
    sizes = args.size_mib or [1024]
    airseal = [str(args.airseal)]
    with tempfile.TemporaryDirectory(prefix="airseal-bench-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "AIRSEAL_HOME": str(work / "home"), "COSIGN_PASSWORD": PASSWORD}

        def call(argv: list[str]) -> None:
            subprocess.run(
                argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

        call([*airseal, "init"])
        call([*airseal, "key", "generate", "bench"])
        pub = work / "bench.pub"
        pub.write_bytes(
            subprocess.run(
                [*airseal, "key", "export-public", "bench"],
                check=True,
                env=env,
                capture_output=True,
            ).stdout
        )
        ossl_key = openssl_key(work)
        print(
            f"airseal: {args.airseal}  (median of {args.runs}, page cache warm; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
        )

        small = work / "small.txt"
        small.write_bytes(b"a small file\n" * 80)
        small_sig = work / "small.sig"
        call(
            [
                *airseal,
                "sign-blob",
                str(small),
                "--key",
                "bench",
                "--output-signature",
                str(small_sig),
            ]
        )
        (work / "small.der").write_bytes(base64.b64decode(small_sig.read_bytes()))
        n = args.startup_runs
        python, _ = median_of(n, [sys.executable, "-I", "-c", "pass"], env, "python -I -c pass")
        openssl_small, _ = median_of(
            n,
            [
                "openssl",
                "dgst",
                "-sha256",
                "-verify",
                str(pub),
                "-signature",
                str(work / "small.der"),
                str(small),
            ],
            env,
            "openssl -verify (small)",
        )
        small_verify, _ = median_of(
            n,
            [*airseal, "verify-blob", str(small), "--key", str(pub), "--signature", str(small_sig)],
            env,
            "verify-blob (small)",
        )
        print(f"== start-up: verify-blob of a {small.stat().st_size}-byte file (median of {n})")
        print(f"python -I -c pass                      {python:7.3f} s")
        print(f"openssl dgst -sha256 -verify           {openssl_small:7.3f} s")
        print(
            f"airseal verify-blob --signature        {small_verify:7.3f} s  "
            f"(target < 0.2 s: {'OK' if small_verify < 0.2 else 'MISSED'})"
        )

        for size in sizes:
            blob = work / f"blob-{size}.bin"
            make_file(blob, size)
            sig, der, ossl_sig = work / "blob.sig", work / "blob.der", work / "blob.ossl.sig"
            call(["openssl", "dgst", "-sha256", str(blob)])  # into the page cache
            openssl_sign, _ = median_of(
                args.runs,
                [
                    "openssl",
                    "dgst",
                    "-sha256",
                    "-sign",
                    str(ossl_key),
                    "-passin",
                    f"pass:{PASSWORD}",
                    "-out",
                    str(ossl_sig),
                    str(blob),
                ],
                env,
                f"openssl -sign ({size} MiB)",
            )
            cli_sign, sign_rss = median_of(
                args.runs,
                [
                    *airseal,
                    "sign-blob",
                    str(blob),
                    "--key",
                    "bench",
                    "--output-signature",
                    str(sig),
                ],
                env,
                f"sign-blob ({size} MiB)",
            )
            der.write_bytes(base64.b64decode(sig.read_bytes()))
            openssl_verify, _ = median_of(
                args.runs,
                [
                    "openssl",
                    "dgst",
                    "-sha256",
                    "-verify",
                    str(pub),
                    "-signature",
                    str(der),
                    str(blob),
                ],
                env,
                f"openssl -verify ({size} MiB)",
            )
            cli_verify, verify_rss = median_of(
                args.runs,
                [*airseal, "verify-blob", str(blob), "--key", str(pub), "--signature", str(sig)],
                env,
                f"verify-blob ({size} MiB)",
            )
            print(f"== {size} MiB, ECDSA P-256, whole process (median of {args.runs})")
            print(f"openssl dgst -sha256 -verify           {openssl_verify:7.3f} s")
            print(
                f"airseal verify-blob --signature        {ratio(cli_verify, openssl_verify)}"
                f"  (target <= 1.10x: {'OK' if cli_verify <= 1.10 * openssl_verify else 'MISSED'})"
            )
            print(f"openssl dgst -sha256 -sign             {openssl_sign:7.3f} s")
            print(
                f"airseal sign-blob                      {ratio(cli_sign, openssl_sign)}"
                "  (includes the scrypt key unlock)"
            )
            if not args.no_in_process:
                lib_sign, lib_verify = in_process(blob, args.runs)
                print(f"hash+sign   (in process)               {ratio(lib_sign, openssl_verify)}")
                print(f"hash+verify (in process)               {ratio(lib_verify, openssl_verify)}")
            print(
                f"peak RSS: verify-blob {verify_rss / 1024:.1f} MiB, sign-blob "
                f"{sign_rss / 1024:.1f} MiB (scrypt's 64 MiB included)"
            )
            blob.unlink()
        print("== CPU time (user+sys), median: the figure the load disturbs least")
        for label, seconds in CPU.items():
            print(f"{label:<38} {seconds:7.3f} s")


if __name__ == "__main__":
    main()
