"""`airseal evidence export` end to end: an action imported by three agents, every claim
re-checked by running the commands VERIFY.md lists (openssl, coreutils, sh), tampering caught
by the matching command, and the report read in a real headless Chromium."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from airseal.appliance.actions import ActionSpec
from airseal.appliance.intake import VendorSignature
from airseal.appliance.service import Appliance, UnlockedKeys
from airseal.appliance.unlocked_keys import signing_session
from airseal.media import layout
from tests.appliance.receipt_site import Prompter, enrolled, put, receipt

CLAIM_BLOCK = re.compile(r"^### `([^`]+)`: .*?\n\n```sh\n(.*?)\n```", re.MULTILINE | re.DOTALL)
OUTCOMES = {"agent-a": "succeeded", "agent-b": "failed", "agent-c": "already-done"}


def _site(tmp_path: Path) -> tuple[Path, dict]:
    """An appliance with a log, a site repository, a vendor-signed payload, one action, one
    export, and receipts from three enrolled agents."""
    home = tmp_path / "home"
    # one session of unlocked keys, as the TUI keeps: each key's scrypt runs once, not per use
    with Appliance(home, Prompter()) as app, signing_session(UnlockedKeys()):
        app.init()
        app.generate_file_key("dist")
        app.generate_file_key("logkey")
        app.log_init("logkey", origin="log.site.example")
        app.site_init(root_keys=["dist"], root_threshold=1, targets_keys=["dist"],
                      targets_threshold=1, online_key="dist")
        app.distributor_add("dist", name="Distributor", may_sign=["actions", "exports"])
        vendor = ec.generate_private_key(ec.SECP256R1())
        payload = tmp_path / "tool.conf"
        payload.write_bytes(b"setting = 1\n")
        signature = tmp_path / "tool.conf.sig"
        signature.write_bytes(base64.b64encode(
            vendor.sign(payload.read_bytes(), ec.ECDSA(hashes.SHA256()))))
        app.add_file(payload, VendorSignature(signature=signature, key=vendor.public_key()))
        other = ActionSpec(name="(Config)Other", file=str(payload), os="linux", mode="download",
                           dest="/etc/other.conf")
        app.create_action(other, "dist")  # logged first: the action's proof has a hash
        action = app.create_action(ActionSpec(name="(Config)Tool", file=str(payload),
                                              os="linux", mode="download",
                                              dest="/etc/tool.conf"), "dist")
        media = tmp_path / "media"
        media.mkdir()
        summary = app.export(media, "dist", action_ids=[action.id])
        facts = {"export_id": summary.export_id, "sequence": summary.sequence,
                 "distributor": summary.key_fingerprint, "actions": [action.id]}
        statement = (media / layout.MEDIA_DIR / layout.STATEMENT_NAME).read_bytes()
        home_obj = app.home
    for agent_id, outcome in OUTCOMES.items():
        signer = enrolled(home_obj, agent_id)
        data = receipt(facts, signer, agent_id=agent_id, outcomes=(outcome,),
                       status="completed" if outcome != "failed" else "partial",
                       hostname=f"host-{agent_id}",
                       statement_sha256=hashlib.sha256(statement).hexdigest())
        put(media, data, agent_id, facts=facts)
    with Appliance(home, Prompter()) as app:
        report = app.import_receipts(media)
        assert report.count("imported") == 3, report.lines()
        facts.update(action=action, payload_sha256=action.payload_sha256,
                     signer=app.get_key("dist").fingerprint)
    return home, facts


def _claims(folder: Path) -> dict[str, str]:
    found = dict(CLAIM_BLOCK.findall((folder / "VERIFY.md").read_text()))
    assert found, "VERIFY.md lists no commands"
    return found


def _holds(folder: Path, script: str) -> bool:
    done = subprocess.run(["sh", "-euc", script], cwd=folder, capture_output=True, timeout=60,
                          check=False)
    return done.returncode == 0


def test_evidence_of_an_action_imported_by_three_agents(tmp_path: Path) -> None:
    home, facts = _site(tmp_path)
    out = tmp_path / "evidence"
    made = subprocess.run(
        [sys.executable, "-m", "airseal.appliance.cli", "evidence", "export", "--action",
         facts["action"].id, "--to", str(out), "--json"],
        capture_output=True, text=True, env={**os.environ, "AIRSEAL_HOME": str(home)},
        timeout=120, check=False)
    assert made.returncode == 0, made.stderr
    summary = json.loads(made.stdout)
    assert (summary["schemaVersion"], summary["actions"], summary["exports"],
            summary["receipts"]) == (1, 1, 1, 3)
    assert not list(tmp_path.glob(".evidence.staging-*"))  # the staging folder became `out`

    # Every claim re-verifies with the commands VERIFY.md gives.
    claims = _claims(out)
    failed = [claim for claim, script in claims.items() if not _holds(out, script)]
    assert not failed, failed
    document = json.loads((out / "evidence.json").read_text())
    assert set(claims) == {claim["id"] for claim in document["claims"]}
    ids = set(claims)
    action = facts["action"]
    slug = f"action-{action.id}-v{action.version}"
    for expected in (f"{slug}-signature-1", f"{slug}-vendor", f"{slug}-log-inclusion",
                     f"{slug}-log-set", f"{slug}-log-checkpoint", "site-policy-target",
                     "audit-chain", "manifest", f"key-{facts['signer'][:16]}"):
        assert expected in ids, expected
    signed_policy = [c for c in document["claims"] if c["id"].startswith("site-signed-policy-")]
    assert signed_policy and any(claim.startswith("site-signature-") for claim in ids)
    assert sum(1 for claim in ids if claim.startswith("receipt-") and
               claim.endswith("-answers")) == 3
    assert document["actions"][0]["signers"] == [facts["signer"]]
    assert {r["agentId"]: r["actions"][0]["outcome"] for r in document["receipts"]} == OUTCOMES

    # Tampering with one file makes the commands of the claims that read it fail.
    by_file: dict[str, list[str]] = {}
    for claim in document["claims"]:
        for path in claim["files"]:
            by_file.setdefault(path, []).append(claim["id"])
    export_id = document["exports"][0]["id"]
    targets = [
        f"actions/{action.id}-v1/signature-1.der",
        f"actions/{action.id}-v1/statement.json",
        f"actions/{action.id}-v1/vendor/signature.der",
        f"actions/{action.id}-v1/tlog/proof/00.bin",
        f"receipts/agent-b/{export_id}/statement.json",
        f"audit/entries/{document['audit']['entries'][1]['seq']}.json",
        signed_policy[0]["files"][1],  # the targets' signed part
    ]
    for target in targets:
        copy = tmp_path / "tampered"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(out, copy)
        data = bytearray((copy / target).read_bytes())
        data[len(data) // 2] ^= 0x01
        (copy / target).write_bytes(bytes(data))
        readers = [claim for claim in by_file[target] if claim != "manifest"]
        assert readers, target
        broken = [claim for claim in readers if not _holds(copy, claims[claim])]
        assert broken, f"no command noticed {target} changed"
        assert not _holds(copy, claims["manifest"])

    # The report, as a real browser renders it.
    browser = shutil.which("chromium")
    assert browser, "Chromium is a test dependency (scripts/setup --test installs it)"
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         (out / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    ).stdout
    for fact in ("(Config)Tool", facts["payload_sha256"], facts["signer"],
                 *OUTCOMES, *OUTCOMES.values()):
        assert fact in dom, fact
    assert "<script" not in (out / "report.html").read_text()

    # The other scopes: one export by a prefix of its id, everything since a date.
    with Appliance(home, Prompter()) as app:
        by_export = app.export_evidence("export", export_id[:10], tmp_path / "by-export")
        since = app.export_evidence("since", "2000-01-01", tmp_path / "since")
        audit = app.audit_log(2)
    assert (by_export.actions, by_export.exports, by_export.receipts) == (1, 1, 3)
    assert (since.actions, since.exports, since.receipts) == (2, 1, 3)  # (Config)Other too
    for folder in (tmp_path / "by-export", tmp_path / "since"):
        assert _holds(folder, _claims(folder)["manifest"])
    assert audit[0].action == "evidence.export" and since.manifest_sha256 in audit[0].details


def test_evidence_refuses_an_existing_folder_and_an_unknown_action(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    with Appliance(home, Prompter()) as app:
        app.init()
        busy = tmp_path / "busy"
        busy.mkdir()
        (busy / "x").write_text("keep")
        from airseal.errors import AirsealError

        with pytest.raises(AirsealError, match="not an empty folder"):
            app.export_evidence("action", "nope", busy)
        with pytest.raises(AirsealError, match="no action nope"):
            app.export_evidence("action", "nope", tmp_path / "new")
    assert (busy / "x").read_text() == "keep" and not (tmp_path / "new").exists()
    from airseal.appliance.cli import main

    monkeypatch.setenv("AIRSEAL_HOME", str(home))
    target = str(tmp_path / "new")
    assert main(["evidence", "export", "--to", target]) == 2
    assert main(["evidence", "export", "--action", "a", "--since", "2026-01-01", "--to",
                 target]) == 2
    assert main(["evidence", "export", "--since", "someday", "--to", target]) == 2
    assert not (tmp_path / "new").exists()
