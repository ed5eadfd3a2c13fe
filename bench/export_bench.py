"""Benchmark: exporting one large payload against ``cp`` + ``openssl dgst -sha256`` of the copy.

    .venv/bin/python bench/export_bench.py --size-mib 1024 [--runs 3] [--dir /path/on/target/fs]

The payload is generated once into a temporary folder. Each export runs in a child process, so
its peak RSS is the child's ``ru_maxrss`` (from ``wait4``; ``RUSAGE_CHILDREN`` is printed too).
The export's time is measured around :func:`airseal.media.writer.write_export` inside the child, so
interpreter start-up is not counted; it includes fsync of every file and the read-back of every
byte from the device (page cache dropped), which ``cp`` + ``openssl`` do not do. A durable
baseline (``cp``, ``sync`` of the copy, ``O_DIRECT`` re-read piped to ``openssl``) is printed
for a like-for-like comparison. Timings are the median of ``--runs``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024


def generate_payload(path: Path, size: int) -> str:
    """Random payload of ``size`` bytes; returns its sha256 (hex)."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        remaining = size
        while remaining:
            chunk = os.urandom(min(4 * MiB, remaining))
            f.write(chunk)
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


def child_export(payload: Path, sha256: str, out: Path) -> None:
    """Runs in the child: sign an action for the payload and export it to ``out``."""
    sys.path.insert(0, str(ROOT))
    from cryptography.hazmat.primitives.asymmetric import ec

    from airseal.media.statement import (
        ActionPayload,
        ActionPredicate,
        DownloadOptions,
        Intake,
        action_statement,
    )
    from airseal.media.writer import ActionToExport, ExportHeader, write_export
    from airseal.trustroot.bundle import bundle_to_json, sign_statement
    from airseal.trustroot.keys import fingerprint
    from airseal.trustroot.signer import PrivateKeySigner

    signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    now = datetime.now(UTC)
    size = payload.stat().st_size
    predicate = ActionPredicate(
        id="bench",
        version=1,
        name="(Bench)Payload",
        os="linux",
        mode="download",
        download=DownloadOptions(dest="/opt/bench/payload.bin"),
        valid_from=now,
        valid_until=now + timedelta(days=1),
        payload=ActionPayload(name="payload.bin", sha256=sha256, size=size),
        intake=Intake(verified=False, method="none"),
    )
    action = ActionToExport(
        id="bench",
        version=1,
        name=predicate.name,
        bundle=bundle_to_json(sign_statement(signer, action_statement(predicate))),
        payload=payload,
        payload_name="payload.bin",
    )
    header = ExportHeader(
        export_id="bench-export",
        sequence=1,
        created=now,
        expires=now + timedelta(days=1),
        appliance_id="bench",
        distributor=fingerprint(signer.public_key),
    )
    started = time.perf_counter()
    result = write_export(
        out,
        [action],
        header,
        lambda statement: bundle_to_json(sign_statement(signer, statement)),
    )
    elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "bytes": result.bytes_written}))


def run_child(payload: Path, sha256: str, out: Path) -> tuple[float, int]:
    """One export in a child; returns (export seconds, child peak RSS in KiB)."""
    argv = [sys.executable, __file__, "--child", str(payload), sha256, str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"export child failed with {proc.returncode}")
    return float(json.loads(output)["seconds"]), usage.ru_maxrss


def timed(argvs: list[list[str]], *, shell_pipe: str | None = None) -> float:
    started = time.perf_counter()
    for argv in argvs:
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    if shell_pipe is not None:
        subprocess.run(shell_pipe, shell=True, check=True, stdout=subprocess.DEVNULL)  # noqa: S602
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: /tmp)")
    parser.add_argument("--child", nargs=3, metavar=("PAYLOAD", "SHA256", "OUT"))
    args = parser.parse_args()
    if args.child:
        child_export(Path(args.child[0]), args.child[1], Path(args.child[2]))
        return
    for tool in ("cp", "openssl", "dd", "sync"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed for the baseline")

    with tempfile.TemporaryDirectory(prefix="airseal-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        payload = work / "payload.bin"
        size = args.size_mib * MiB
        print(f"generating a {args.size_mib} MiB payload in {work} ...", flush=True)
        sha256 = generate_payload(payload, size)
        exports, rss, plain, durable = [], [], [], []

        def settle() -> None:
            os.sync()
            time.sleep(0.5)

        for run in range(args.runs):
            out = work / f"export-{run}"
            out.mkdir()
            settle()
            seconds, peak = run_child(payload, sha256, out)
            exports.append(seconds)
            rss.append(peak)
            shutil.rmtree(out)

            copy = work / "copy.bin"
            settle()
            plain.append(
                timed([["cp", str(payload), str(copy)], ["openssl", "dgst", "-sha256", str(copy)]])
            )
            copy.unlink()
            settle()
            durable.append(
                timed(
                    [["cp", str(payload), str(copy)], ["sync", str(copy)]],
                    shell_pipe=f"dd if={copy} iflag=direct bs=4M status=none "
                    "| openssl dgst -sha256",
                )
            )
            copy.unlink()
            print(
                f"run {run + 1}: export {seconds:.2f} s, cp+openssl {plain[-1]:.2f} s, "
                f"durable baseline {durable[-1]:.2f} s, export peak RSS {peak / 1024:.1f} MiB",
                flush=True,
            )
        export_s = statistics.median(exports)
        plain_s = statistics.median(plain)
        durable_s = statistics.median(durable)
        summary = {
            "sizeMiB": args.size_mib,
            "runs": args.runs,
            "exportSeconds": round(export_s, 3),
            "exportMiBps": round(args.size_mib / export_s, 1),
            "cpOpensslSeconds": round(plain_s, 3),
            "ratioVsCpOpenssl": round(export_s / plain_s, 2),
            "durableBaselineSeconds": round(durable_s, 3),
            "ratioVsDurableBaseline": round(export_s / durable_s, 2),
            "exportPeakRssMiB": round(max(rss) / 1024, 1),
            "rusageChildrenMaxRssMiB": round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
            ),
        }
        print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
