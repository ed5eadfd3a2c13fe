"""Verifying a copy of the public-good Sigstore TUF repository: our walk against python-tuf's own.

Figures (medians of --runs):

* ``verify_mirror`` in process: the whole repository (root 15, timestamp, snapshot, targets, the
  npm delegation, all 12 target files) from the CDN layout in a folder;
* the peer: python-tuf's ``ngclient.Updater`` bootstrapped from the same root 15, refreshing and
  downloading ``trusted_root.json`` only, from the same folder through a file-reading fetcher
  (what sigstore-python does online);
* ``airseal trustroot import DIR`` as a whole process (start, database, walk, storing, audit).

The copy expired in August 2026, so every run checks expiry at 2026-08-22 (the walk takes the
time as an argument; the peer gets its reference time set after construction; the CLI reads
AIRSEAL_TEST_TRUSTROOT_TIME, which exists for tests and benchmarks only).

    .venv/bin/python bench/trustroot_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from tuf.ngclient import Updater
    from tuf.ngclient.fetcher import FetcherInterface

    from airseal.appliance.sigstore_roots import DirectorySource, packaged_root
    from airseal.trustroot.tuf_mirror import verify_mirror
    from tests.trustroot.sigstore_cdn import INSIDE_VALIDITY, INSIDE_VALIDITY_ENV, lay_out_cdn

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        cdn = lay_out_cdn(base / "cdn")
        pinned = packaged_root()

        ours = []
        for _ in range(args.runs):
            started = time.perf_counter()
            verify_mirror(DirectorySource(cdn), pinned_root=pinned, now=INSIDE_VALIDITY)
            ours.append(time.perf_counter() - started)

        class FolderFetcher(FetcherInterface):
            def _fetch(self, url: str) -> Iterator[bytes]:
                path = cdn / url.removeprefix("file://repo/")
                if not path.is_file():
                    from tuf.api.exceptions import DownloadHTTPError

                    raise DownloadHTTPError("not found", 404)
                yield path.read_bytes()

        peer = []
        for run in range(args.runs):
            cache = base / f"cache{run}"
            (cache / "targets").mkdir(parents=True)
            started = time.perf_counter()
            updater = Updater(
                metadata_dir=str(cache), metadata_base_url="file://repo/",
                target_base_url="file://repo/targets/", target_dir=str(cache / "targets"),
                fetcher=FolderFetcher(), bootstrap=pinned,
            )
            updater._trusted_set.reference_time = INSIDE_VALIDITY
            updater.refresh()
            info = updater.get_targetinfo("trusted_root.json")
            assert info is not None
            updater.download_target(info)
            peer.append(time.perf_counter() - started)

        cli = []
        env = dict(os.environ) | {"AIRSEAL_TEST_TRUSTROOT_TIME": INSIDE_VALIDITY_ENV}
        for run in range(args.runs):
            env["AIRSEAL_HOME"] = str(base / f"home{run}")
            subprocess.run([sys.executable, "-m", "airseal.appliance.cli", "init"], env=env,
                           check=True, capture_output=True)
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "airseal.appliance.cli", "trustroot", "import", str(cdn)],
                env=env, check=True, capture_output=True,
            )
            cli.append(time.perf_counter() - started)

    walk, tuf_peer, whole = _median(ours), _median(peer), _median(cli)
    print(f"verify_mirror, whole repository, in process:        {walk * 1000:8.1f} ms")
    print(f"python-tuf Updater, trusted_root.json only (peer):  {tuf_peer * 1000:8.1f} ms")
    print(f"  ratio ours / peer:                                {walk / tuf_peer:8.2f}")
    print(f"airseal trustroot import, whole process:            {whole * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
