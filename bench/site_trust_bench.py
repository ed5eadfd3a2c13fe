"""Agent import of one medium with 1,000 actions: TUF site mode against pinned-key mode.

Target (issue 10): the site mode (python-tuf ngclient update from the media's ``airseal/tuf/``,
policy target verified, distributors chosen from it) adds at most 0.3 s to the whole
`airseal-agent import` command. The same medium (1,000 small download actions, carrying the site
repository of a real appliance) is imported by an agent enrolled with the distributor's key and by
one enrolled only with the site root; each run starts from a fresh copy of its enrolled state.
Also printed: the in-process time of the TUF update alone.

    .venv/bin/python bench/site_trust_bench.py [--actions 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.agent_bench import AGENT, PASSWORD, build_media, run  # noqa: E402

SITE_PASSWORD = "bench site key password"


class _Prompter:
    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        return SITE_PASSWORD

    def notice(self, message: str) -> None:
        pass


def build_site(base: Path, distributor_pub: Path) -> tuple[Path, list[tuple[str, Path]]]:
    """A real appliance site (root 2 of 3, targets 1, online key) naming the distributor."""
    from airseal.appliance.service import Appliance
    from airseal.appliance.site import SiteRepository

    os.environ["COSIGN_PASSWORD"] = SITE_PASSWORD
    appliance = Appliance(base / "appliance", _Prompter())
    appliance.init()
    for name in ("K1", "K2", "K3", "K4"):
        appliance.generate_file_key(name)
    appliance.site_init(root_keys=["K1", "K2", "K3"], root_threshold=2, targets_keys=["K1"],
                        targets_threshold=1, online_key="K4")
    appliance.distributor_add(str(distributor_pub), name="Bench", may_sign=["exports",
                                                                           "actions"])
    root = base / "root.json"
    appliance.write_site_root(root)
    site = SiteRepository(appliance.home, appliance.db, appliance.prompter)
    site.refresh_timestamp(now=datetime.now(UTC))
    files = site.media_files()
    return root, files


def timed_imports(base: Path, template: Path, media: Path, runs: int, env: dict[str, str]
                  ) -> list[float]:
    times = []
    for _ in range(runs):
        state = base / "agent"
        shutil.rmtree(state, ignore_errors=True)
        shutil.copytree(template, state, symlinks=True)
        shutil.rmtree(base / "dest", ignore_errors=True)
        shutil.rmtree(media / "airseal" / "receipts", ignore_errors=True)
        start = time.perf_counter()
        done = run([*AGENT, "import", str(media), "--yes", "--json"],
                   {**env, "AIRSEAL_AGENT_HOME": str(state)})
        times.append(time.perf_counter() - start)
        report = json.loads(done.stdout)
        assert report["status"] == "completed", report.get("error")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from cryptography.hazmat.primitives.asymmetric import ec

    from airseal.media.writer import ExtraFile
    from airseal.trustroot.keys import spki_pem
    from airseal.trustroot.signer import PrivateKeySigner

    with tempfile.TemporaryDirectory(prefix="site-bench-") as tmp:
        base = Path(tmp)
        signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
        pub = base / "bench.pub"
        pub.write_bytes(spki_pem(signer.public_key))
        root, files = build_site(base, pub)
        media, _ = build_media(base, args.actions, "download", signer=signer,
                               extra_files=[ExtraFile(p, s) for p, s in files])
        env = {**os.environ, "AIRSEAL_AGENT_KEY_PASSWORD": PASSWORD,
               "AIRSEAL_AGENT_REBOOT_COMMAND": "true"}
        templates = {}
        for mode, enroll in (("pinned", ["--key", str(pub), "--approved"]),
                             ("site", ["--site-root", str(root)])):
            template = base / f"template-{mode}"
            menv = {**env, "AIRSEAL_AGENT_HOME": str(template)}
            run([*AGENT, "init"], menv)
            run([*AGENT, "enroll", *enroll], menv)
            templates[mode] = template
        results = {mode: timed_imports(base, t, media, args.runs, env)
                   for mode, t in templates.items()}

        from airseal.agent.site_trust import update_from_media
        from airseal.media.reader import DirectorySource

        update_times = []
        for _ in range(5):
            state = base / "tuf-only"
            shutil.rmtree(state, ignore_errors=True)
            shutil.copytree(templates["site"], state, symlinks=True)
            start = time.perf_counter()
            update_from_media(state, DirectorySource(media), now=datetime.now(UTC))
            update_times.append(time.perf_counter() - start)

    pinned, site = min(results["pinned"]), min(results["site"])
    print(f"medium: {args.actions} download actions + {len(files)} site TUF files")
    for mode in ("pinned", "site"):
        times = results[mode]
        print(f"import, {mode:<6} mode (whole command): best {min(times):.2f} s, median "
              f"{statistics.median(times):.2f} s over {args.runs} runs")
    added = site - pinned
    print(f"TUF site mode adds {added:+.3f} s (best against best; target <= 0.3 s: "
          f"{'OK' if added <= 0.3 else 'MISSED'})")
    print(f"in-process TUF update alone (ngclient refresh + policy target): best "
          f"{min(update_times) * 1000:.1f} ms over {len(update_times)} runs")


if __name__ == "__main__":
    main()
