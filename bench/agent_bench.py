"""Agent import of a media with 1,000 small actions, and agent cold start.

Targets (issue 4): `airseal-agent import` of 1,000 small actions under 3 s (wall clock, the
whole command: start, key decryption, check 2 of every file and statement, staging and check 3,
placing every file, the journal, the signed receipt); `airseal-agent --version` under 0.5 s.

The media is written once by the real export writer; each measured run starts from a fresh copy
of an initialised, enrolled agent state (so every action really runs) and an empty destination.
A second, in-process run reports where the time goes, stage by stage.

    .venv/bin/python bench/agent_bench.py [--actions 1000] [--mode download|execute] [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench agent key password"
AGENT = [sys.executable, "-m", "airseal.agent"]


def build_media(
    base: Path, count: int, mode: str, signer: Any = None, extra_files: Any = ()
) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives.asymmetric import ec

    from airseal.media.statement import (
        ActionPayload,
        ActionPredicate,
        DownloadOptions,
        ExecuteOptions,
        Intake,
        action_statement,
    )
    from airseal.media.writer import ActionToExport, ExportHeader, write_export
    from airseal.trustroot.bundle import bundle_to_json, sign_statement
    from airseal.trustroot.keys import fingerprint, spki_pem
    from airseal.trustroot.signer import PrivateKeySigner

    signer = signer or PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    pub = base / "distributor.pub"
    pub.write_bytes(spki_pem(signer.public_key))
    payloads = base / "payloads"
    payloads.mkdir()
    now = datetime.now(UTC)
    actions = []
    for i in range(count):
        action_id = f"bench{i:05d}"
        if mode == "execute":
            name = f"{action_id}.sh"
            data = f"#!/bin/sh\necho {action_id}\n".encode()
        else:
            name = f"{action_id}.conf"
            data = f"setting-{i}=value\n".encode() * 4
        path = payloads / name
        path.write_bytes(data)
        predicate = ActionPredicate(
            id=action_id,
            version=1,
            name=f"(Bench){action_id}",
            os="linux",
            mode=mode,  # type: ignore[arg-type]
            download=DownloadOptions(dest=str(base / "dest" / name), file_mode="0644")
            if mode == "download"
            else None,
            execute=ExecuteOptions() if mode == "execute" else None,
            valid_from=now - timedelta(hours=1),
            valid_until=now + timedelta(days=30),
            payload=ActionPayload(
                name=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data)
            ),
            intake=Intake(verified=False, method="none"),
        )
        bundle = bundle_to_json(sign_statement(signer, action_statement(predicate)))
        actions.append(ActionToExport(action_id, 1, predicate.name, bundle, path, name))
    media = base / "media"
    media.mkdir()
    header = ExportHeader(
        export_id="bench-export",
        sequence=1,
        created=now - timedelta(minutes=1),
        expires=now + timedelta(days=14),
        appliance_id="bench-appliance",
        distributor=fingerprint(signer.public_key),
    )
    write_export(media, actions, header, lambda s: bundle_to_json(sign_statement(signer, s)),
                 extra_files=extra_files)
    return media, pub


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 4):
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return done


def fresh(base: Path, template: Path, media: Path) -> Path:
    state = base / "agent"
    shutil.rmtree(state, ignore_errors=True)
    shutil.copytree(template, state)
    shutil.rmtree(base / "dest", ignore_errors=True)
    shutil.rmtree(media / "airseal" / "receipts", ignore_errors=True)
    return state


def stage_breakdown(base: Path, template: Path, media: Path) -> dict[str, float]:
    from airseal.agent.approval import RefuseUnapproved
    from airseal.agent.enrolment import pinned_trust
    from airseal.agent.identity import load_signer
    from airseal.agent.importer import Importer, host_facts
    from airseal.agent.journal import Journal
    from airseal.agent.lock import StateLock
    from airseal.agent.state import open_state
    from airseal.media.reader import DirectorySource

    state = open_state(fresh(base, template, media))
    marks: list[tuple[str, float]] = [("start", time.perf_counter())]

    def hook(stage: str, _importer: object) -> None:
        if not stage.startswith(("before-run:", "after-run:")):
            marks.append((stage, time.perf_counter()))

    signer = load_signer(state.root, PASSWORD.encode())
    with StateLock(state.lock_path), Journal.open(state.journal_path) as journal:
        report = Importer(
            state,
            journal,
            pinned_trust(journal),
            DirectorySource(media),
            approver=RefuseUnapproved(),
            clock=lambda: datetime.now(UTC),
            host=host_facts(state),
            signer=lambda: signer,
            hook=hook,
        ).run()
        marks.append(("done (run, receipt, journal)", time.perf_counter()))
    assert report.status == "completed", report.error
    return {name: later - earlier for (_, earlier), (name, later) in itertools.pairwise(marks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=1000)
    parser.add_argument("--mode", choices=["download", "execute"], default="download")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold-runs", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp:
        base = Path(tmp)
        started = time.perf_counter()
        media, pub = build_media(base, args.actions, args.mode)
        built = time.perf_counter() - started
        files = sum(len(f) for _, _, f in os.walk(media / "airseal"))
        env = {
            **os.environ,
            "AIRSEAL_AGENT_HOME": str(base / "template"),
            "AIRSEAL_AGENT_KEY_PASSWORD": PASSWORD,
            "AIRSEAL_AGENT_REBOOT_COMMAND": "true",
        }
        run([*AGENT, "init"], env)
        run([*AGENT, "enroll", "--key", str(pub), "--name", "Bench", "--approved"], env)
        template = base / "template"

        times = []
        env["AIRSEAL_AGENT_HOME"] = str(base / "agent")
        for _ in range(args.runs):
            fresh(base, template, media)
            start = time.perf_counter()
            done = run([*AGENT, "import", str(media), "--non-interactive", "--json"], env)
            times.append(time.perf_counter() - start)
            report = json.loads(done.stdout)
            outcomes = {a["outcome"] for a in report["actions"]}
            assert report["status"] == "completed" and outcomes == {"succeeded"}, outcomes
            assert len(report["actions"]) == args.actions and report["receipt"]
        receipt_bytes = (media / report["receipt"]).stat().st_size
        breakdown = stage_breakdown(base, template, media)

        cold = []
        for _ in range(args.cold_runs):
            start = time.perf_counter()
            subprocess.run(
                [str(Path(sys.executable).parent / "airseal-agent"), "--version"],
                check=True,
                capture_output=True,
            )
            cold.append(time.perf_counter() - start)

    print(f"media: {args.actions} {args.mode} actions, {files} files, written in {built:.1f} s")
    verdict = (
        f"target < 3 s: {'OK' if min(times) < 3 else 'MISSED'}"
        if args.mode == "download"
        else "informational: one process, two durable journal commits per action"
    )
    print(
        f"import (airseal-agent import, whole command): best {min(times):.2f} s, "
        f"median {statistics.median(times):.2f} s over {args.runs} runs ({verdict})"
    )
    print(f"  receipt: {receipt_bytes} bytes")
    print("  in-process stages (key already decrypted):")
    for stage, seconds in breakdown.items():
        print(f"    {stage:<30} {seconds * 1000:8.1f} ms")
    print(
        f"cold start (airseal-agent --version): best {min(cold) * 1000:.0f} ms, median "
        f"{statistics.median(cold) * 1000:.0f} ms over {args.cold_runs} runs "
        f"(target < 500 ms: {'OK' if min(cold) < 0.5 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
