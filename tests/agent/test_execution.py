"""Running programs: bounded output, timeouts that stop the whole tree, accounts, receipts' size."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from airseal.agent.execution import BoundedOutput, resolve_account, run_program
from airseal.agent.receipts import sign_receipt
from airseal.agent.report import ActionReport, ImportReport
from airseal.media.limits import MAX_ACTIONS, MAX_RECEIPT_BYTES
from airseal.media.receipt import ReceiptPredicate
from airseal.trustroot.bundle import parse_bundle
from airseal.trustroot.dsse import Statement
from airseal.trustroot.keys import spki_pem
from airseal.trustroot.signer import PrivateKeySigner

ENV = {"PATH": "/usr/bin:/bin"}


def test_bounded_output_keeps_head_and_tail():
    out = BoundedOutput(head=10, tail=10)
    for i in range(1000):
        out.feed(f"{i:04d}\n".encode())
    text = out.text()
    assert text.startswith("0000\n0001\n") and text.endswith("0998\n0999\n")
    assert "[... 4980 bytes omitted ...]" in text and out.total == 5000
    small = BoundedOutput()
    small.feed(b"hello \xff\n")
    assert small.text() == "hello \ufffd\n"


def test_a_flood_of_output_stays_bounded(tmp_path: Path):
    result = run_program(
        ["/bin/sh", "-c", "head -c 5000000 /dev/zero | tr '\\0' x; echo; echo tail-end"],
        cwd=tmp_path,
        env=ENV,
        account=None,
        timeout=60,
    )
    assert result.exit_code == 0 and result.output_bytes == 5_000_000 + 10
    assert len(result.output) < 70_000 and result.output.endswith("tail-end\n")


def test_timeout_stops_the_whole_process_tree(tmp_path: Path):
    started = time.monotonic()
    result = run_program(
        ["/bin/sh", "-c", "sleep 300 & echo $! > child.pid; echo waiting; wait"],
        cwd=tmp_path,
        env=ENV,
        account=None,
        timeout=1,
    )
    assert result.timed_out and result.exit_code is None and "waiting" in result.output
    assert time.monotonic() - started < 15
    child = int((tmp_path / "child.pid").read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text()


def test_background_children_holding_the_pipe_do_not_hang_the_agent(tmp_path: Path):
    started = time.monotonic()
    result = run_program(
        ["/bin/sh", "-c", "(sleep 20 & echo $! > bg.pid) ; echo done"],
        cwd=tmp_path,
        env=ENV,
        account=None,
        timeout=60,
    )
    os.kill(int((tmp_path / "bg.pid").read_text()), signal.SIGKILL)
    assert result.exit_code == 0 and result.output.startswith("done")
    assert time.monotonic() - started < 15


def test_runs_as_another_account_with_its_groups_only(tmp_path: Path):
    nobody = resolve_account("nobody")
    result = run_program(
        ["/bin/sh", "-c", "id -u; id -G"],
        cwd=tmp_path,
        env=ENV,
        account=nobody,
        timeout=30,
    )
    uid, groups = result.output.split("\n")[:2]
    assert int(uid) == nobody.uid
    assert {int(g) for g in groups.split()} == set(nobody.groups) | {nobody.gid}
    assert "0" not in groups.split()


def test_a_receipt_for_the_largest_export_fits_the_media_bound():
    signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    now = datetime.now(UTC)
    report = ImportReport(1, "/media", now, status="partial", finished=now)
    report.export_id, report.sequence, report.distributor = "e" * 64, 7, "a" * 64
    report.actions = [
        ActionReport(f"{i:012x}{'x' * 52}", 1, "(P)n", "execute", "failed", "r" * 400, 255)
        for i in range(MAX_ACTIONS)
    ]
    data = sign_receipt(
        report,
        signer,
        agent_id="a" * 64,
        agent_key_pem=spki_pem(signer.public_key).decode(),
        hostname="h" * 255,
        os_name="linux",
        export_bundle_sha256="0" * 64,
    )
    assert len(data) <= MAX_RECEIPT_BYTES
    envelope = parse_bundle(data).dsse_envelope
    predicate = ReceiptPredicate.model_validate(Statement.from_payload(envelope.payload).predicate)
    assert len(predicate.actions) == MAX_ACTIONS and predicate.actions[0].exit_code == 255
