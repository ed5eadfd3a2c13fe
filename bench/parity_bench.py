"""Benchmark: what PAR2 repair data (``export.parity-percent``) adds to a 1 GiB export.

    .venv/bin/python bench/parity_bench.py [--size-mib 1024] [--percent 10] [--runs 1] [--dir D]
                                           [--fat32] [--par2 PATH] [--repair]
                                           [--split-mib N [--parts-after-commit]]

Each export runs in a child process (as in ``bench/export_bench.py``): once without repair
data and once with it. Printed per run and as medians: the export's wall time (measured around
:func:`airseal.media.writer.write_export`, so with fsync and read-back of every byte, and with
par2 writing its set after the commit), the time par2 took, and the whole child's wall and CPU
time (user+sys from ``wait4``, par2's included; on a shared machine CPU time is the steadier
figure). The ratio ``with / without`` is the overhead the issue asks to keep under 1.30.
``bgStart``/``bgEnd`` say when the background par2 (``payloads.par2``) ran, in seconds from the
export's start (it overlaps the export when ``bgEnd`` is under ``exportSecondsWithout``),
``bgOnMedia`` when its set was on the media and read back, ``bgCpu`` par2's CPU time.
``--par2`` measures another PAR2 creator (par2cmdline-turbo);
``--repair`` times Debian's par2 repairing 3 MiB of damage in three places (local only).
``--split-mib`` splits the payload into parts (as FAT32's 4 GiB limit does, smaller);
``--parts-after-commit`` then covers the parts after the commit from the media, as exports did
before the parts were copied out for the background set.

``--fat32`` exports to a FAT32 image mounted with fusefat (as root; about 35 MB/s here, like a
USB stick), the appliance's real target: there par2 on the second core runs beside the slow
media instead of beside a fast disk.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import export_bench  # the payload and the signed action are made the same way

MiB = 1024 * 1024


def child(payload: Path, sha256: str, out: Path, percent: int, tool: str, split: str) -> None:
    from airseal.media import parity as parity_module
    from airseal.media import writer

    parity_module.PAR2_TOOL = tool
    if split.endswith("-late"):  # as before: parts covered by airseal.par2 after the commit

        def no_scratch(*_: object) -> None:
            raise OSError("no scratch space")

        parity_module._copy_slice = no_scratch  # type: ignore[assignment]
    original = writer.write_export
    parity: dict[str, float] = {}

    def with_parity(*args: object, **kwargs: object) -> writer.ExportResult:
        kwargs["allow_unknown_capacity"] = True  # fusefat reports no size
        if split != "0":
            kwargs["split_threshold"] = int(split.removesuffix("-late")) * MiB
        started = time.monotonic()
        result = original(*args, parity_percent=percent, **kwargs)  # type: ignore[arg-type]
        parity["seconds"] = result.parity.seconds if result.parity else 0.0
        parity["bytes"] = result.parity.bytes if result.parity else 0
        background = result.parity.background if result.parity else None
        if background is not None:
            # the background par2's run, in seconds from the export's start, and its CPU time
            parity["bgStart"] = background.started - started
            parity["bgEnd"] = background.finished - started
            parity["bgOnMedia"] = background.on_media - started
            parity["bgCpu"] = background.cpu_seconds
        return result

    writer.write_export = with_parity  # type: ignore[assignment]  # child_export imports it late
    export_bench.child_export(payload, sha256, out)
    print(json.dumps(parity))


def run(
    payload: Path, sha256: str, out: Path, percent: int, tool: str, split: str
) -> dict[str, float]:
    argv = [
        sys.executable, __file__, "--child", str(payload), sha256, str(out), str(percent), tool,
        split,
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines = proc.stdout.read().splitlines()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("export child failed")
    export = json.loads(lines[-2])
    parity = json.loads(lines[-1])
    return {
        "export": export["seconds"], "parity": parity.get("seconds", 0.0),
        "parityBytes": parity.get("bytes", 0), "processWall": wall,
        "processCpu": usage.ru_utime + usage.ru_stime,
        **{k: v for k, v in parity.items() if k.startswith("bg")},
    }


def time_repair(mount: Path) -> dict[str, float]:
    """Overwrite 1 MiB in three places of the exported payload, then time Debian's par2
    repairing it (as a courier would: ``par2 repair -B MOUNT INDEX`` per set)."""
    payload = max((p for p in (mount / "airseal").rglob("*") if p.is_file()),
                  key=lambda p: p.stat().st_size)
    size = payload.stat().st_size
    with open(payload, "r+b") as handle:
        for where in (size // 7, size // 2, size - MiB):
            handle.seek(where)
            handle.write(os.urandom(MiB))
    started = time.perf_counter()
    cpu = 0.0
    for index in sorted((mount / "airseal-repair").glob("*.par2")):
        if ".vol" in index.name:
            continue
        proc = subprocess.Popen(["par2", "r", "-q", "-q", "-B", str(mount), str(index)],
                                stdout=subprocess.DEVNULL)
        _pid, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"par2 repair of {index.name} failed")
        cpu += usage.ru_utime + usage.ru_stime
    return {"repairWall": time.perf_counter() - started, "repairCpu": cpu}


@contextlib.contextmanager
def fat32(workdir: Path, size_mib: int) -> Iterator[Path]:
    """A FAT32 image of ``size_mib`` mounted with fusefat (the test helper caps images at
    64 MiB); always unmounted."""
    image, mount = workdir / "usb.img", workdir / "usb.mnt"
    subprocess.run(["truncate", "-s", f"{size_mib}M", str(image)], check=True)
    subprocess.run(["mkfs.vfat", "-F", "32", str(image)], check=True, capture_output=True)
    mount.mkdir()
    subprocess.run(["fusefat", "-o", "rw+", str(image), str(mount)], check=True,
                   stdout=subprocess.DEVNULL)
    try:
        while not os.path.ismount(mount):
            time.sleep(0.05)
        yield mount
    finally:
        subprocess.run(["fusermount", "-u", str(mount)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--percent", type=int, default=10)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: /tmp)")
    parser.add_argument("--fat32", action="store_true", help="export to a fusefat image")
    parser.add_argument("--par2", default="par2", help="the PAR2 creator (default: par2)")
    parser.add_argument("--repair", action="store_true",
                        help="also time Debian's par2 repairing a damaged copy of the payload")
    parser.add_argument("--split-mib", type=int, default=0,
                        help="split the payload into parts of this size")
    parser.add_argument("--parts-after-commit", action="store_true",
                        help="with --split-mib: cover the parts after the commit, as before")
    parser.add_argument("--child", nargs=6,
                        metavar=("PAYLOAD", "SHA256", "OUT", "PERCENT", "PAR2", "SPLIT"))
    args = parser.parse_args()
    if args.child:
        payload, sha256, out, percent, tool, split = args.child
        child(Path(payload), sha256, Path(out), int(percent), tool, split)
        return
    split = f"{args.split_mib}{'-late' if args.parts_after_commit else ''}"
    if shutil.which("par2") is None or shutil.which(args.par2) is None:
        raise SystemExit("par2 (Debian package par2) is needed")
    with tempfile.TemporaryDirectory(prefix="airseal-parity-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        payload = work / "payload.bin"
        print(f"generating a {args.size_mib} MiB payload in {work} ...", flush=True)
        sha256 = export_bench.generate_payload(payload, args.size_mib * MiB)
        results: dict[int, list[dict[str, float]]] = {0: [], args.percent: []}
        for number in range(args.runs):
            for percent in (0, args.percent):
                out = work / f"export-{number}-{percent}"
                out.mkdir()
                os.sync()
                time.sleep(0.5)
                if args.fat32:
                    image_mib = args.size_mib * (100 + args.percent) // 100 + 64
                    with fat32(out, image_mib) as mount:
                        figures = run(payload, sha256, mount, percent, args.par2, split)
                else:
                    figures = run(payload, sha256, out, percent, args.par2, split)
                    if args.repair and percent:
                        figures.update(time_repair(out))
                results[percent].append(figures)
                shutil.rmtree(out)
                print(f"run {number + 1}, parity {percent}%: " + ", ".join(
                    f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in figures.items()), flush=True)

        def median(percent: int, key: str) -> float:
            return statistics.median(r[key] for r in results[percent])

        p = args.percent
        summary = {
            "sizeMiB": args.size_mib, "percent": p, "runs": args.runs,
            "exportSecondsWithout": round(median(0, "export"), 2),
            "exportSecondsWith": round(median(p, "export"), 2),
            "exportRatio": round(median(p, "export") / median(0, "export"), 2),
            "par2Seconds": round(median(p, "parity"), 2),
            "repairBytes": int(median(p, "parityBytes")),
            "processWallRatio": round(median(p, "processWall") / median(0, "processWall"), 2),
            "processCpuSecondsWithout": round(median(0, "processCpu"), 2),
            "processCpuSecondsWith": round(median(p, "processCpu"), 2),
            "processCpuRatio": round(median(p, "processCpu") / median(0, "processCpu"), 2),
            "loadAverage": os.getloadavg()[0],
        }
        for key in ("bgStart", "bgEnd", "bgOnMedia", "bgCpu", "repairWall", "repairCpu"):
            if all(key in r for r in results[p]):
                summary[key] = round(median(p, key), 2)
        print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
