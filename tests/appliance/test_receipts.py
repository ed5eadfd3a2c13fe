"""Receipts back at the appliance: verified (signed by the key its agent is enrolled with, export
known), stored, listed per action and per agent; anything else refused with its file and check."""

from __future__ import annotations

import json
from datetime import timedelta

from airseal.appliance.cli import main as airseal_main
from airseal.appliance.db import SCHEMA_VERSION, open_database, schema_version
from airseal.appliance.receipts import (
    AgentKeyChanged,
    ReceiptRefused,
    UnknownExport,
    import_receipts,
    list_receipts,
)
from airseal.media.receipt import Refusal
from airseal.trustroot.keys import spki_pem
from tests.appliance.receipt_site import NOW, agent_key, enrolled, put, receipt


def test_schema_has_the_receipts_tables(site):
    home, _ = site
    db = open_database(home)
    assert schema_version(db) == SCHEMA_VERSION >= 3
    assert {"agents", "receipts", "receipt_actions"} <= set(db.table_names())


def test_a_genuine_receipt_is_stored_and_its_agent_key_pinned(site, mount):
    home, facts = site
    signer = enrolled(home)
    put(mount, receipt(facts, signer), facts=facts)
    db = open_database(home)
    report = import_receipts(home, db, mount)
    assert report.ok and report.count("imported") == 1
    (agent,) = db["agents"].rows
    assert agent["id"] == "agent-1" and agent["hostname"] == "ws-042"
    from airseal.trustroot.keys import fingerprint

    assert agent["key_fingerprint"] == fingerprint(signer.public_key)
    stored = {r["action_id"]: r["outcome"] for r in db["receipt_actions"].rows}
    assert stored == dict(zip(facts["actions"], ("succeeded", "failed"), strict=True))
    audit_row = db.execute("SELECT action, details FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    assert audit_row[0] == "receipts.import" and '"imported":1' in audit_row[1]
    # the same file again changes nothing; a newer receipt replaces it; an older one does not
    assert import_receipts(home, db, mount).count("unchanged") == 1
    put(
        mount,
        receipt(
            facts,
            signer,
            outcomes=("succeeded", "succeeded"),
            finished=NOW + timedelta(hours=1),
            status="completed",
        ),
        facts=facts,
    )
    assert import_receipts(home, db, mount).count("updated") == 1
    put(mount, receipt(facts, signer, finished=NOW - timedelta(hours=1)), facts=facts)
    assert import_receipts(home, db, mount).count("unchanged") == 1
    assert {r["outcome"] for r in db["receipt_actions"].rows} == {"succeeded"}


def test_another_key_for_a_known_agent_is_refused(site, mount):
    home, facts = site
    signer = enrolled(home)
    db = open_database(home)
    put(mount, receipt(facts, signer), facts=facts)
    assert import_receipts(home, db, mount).ok
    put(mount, receipt(facts, agent_key(), finished=NOW + timedelta(hours=1)), facts=facts)
    report = import_receipts(home, db, mount)
    (refused,) = report.refused
    assert isinstance(refused.error, AgentKeyChanged)
    assert refused.path == f"airseal/receipts/agent-1/{facts['export_id']}.json"
    assert db.execute("SELECT status FROM receipts").fetchone()[0] == "partial"


def test_receipts_for_unknown_or_mismatched_exports_are_refused(site, mount):
    home, facts = site
    db = open_database(home)
    signer = agent_key()
    put(mount, receipt(facts, signer, export_id="not-ours"), export_id="not-ours")
    put(mount, receipt(facts, signer, agent_id="agent-2", sequence=99), "agent-2", facts=facts)
    put(
        mount,
        receipt(facts, signer, agent_id="agent-3", distributor="0" * 64),
        "agent-3",
        facts=facts,
    )
    report = import_receipts(home, db, mount)
    errors = {r.path.split("/")[2]: r.error for r in report.refused}
    assert isinstance(errors["agent-1"], UnknownExport)
    assert (
        isinstance(errors["agent-2"], ReceiptRefused) and "sequence 99" in errors["agent-2"].detail
    )
    assert errors["agent-3"].check == "export"
    assert db.execute("SELECT COUNT(*) FROM receipts").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM agents").fetchone()[0] == 0


def test_forged_tampered_and_misplaced_receipts_are_refused(site, mount):
    home, facts = site
    db = open_database(home)
    victim, forger = agent_key(), agent_key()
    # signed by one key, carrying another: the signature does not verify with the carried key
    put(mount, receipt(facts, forger, carried_key=victim), facts=facts)
    # a flipped byte
    path = put(mount, receipt(facts, agent_key(), agent_id="agent-2"), "agent-2", facts=facts)
    data = bytearray(path.read_bytes())
    middle = data.index(b'"payload"') + 40
    data[middle] = ord("A") if data[middle] != ord("A") else ord("B")
    path.write_bytes(bytes(data))
    # a genuine receipt moved under another agent's folder
    moved = put(mount, receipt(facts, agent_key(), agent_id="agent-4"), "agent-4", facts=facts)
    target = mount / "airseal/receipts/agent-5"
    target.mkdir()
    moved.rename(target / moved.name)
    moved.parent.rmdir()
    report = import_receipts(home, db, mount)
    assert report.count("refused") == 3 and report.count("imported") == 0
    by_agent = {r.path.split("/")[2]: r.error for r in report.refused}
    assert by_agent["agent-1"].title in ("Wrong key", "Invalid signature")
    assert by_agent["agent-2"].subject == f"airseal/receipts/agent-2/{facts['export_id']}.json"
    assert by_agent["agent-5"].check == "path"


def test_unsafe_entries_are_refused_and_the_rest_imported(site, mount, tmp_path):
    home, facts = site
    signer = enrolled(home)
    db = open_database(home)
    put(mount, receipt(facts, signer), facts=facts)
    folder = mount / "airseal/receipts/agent-9"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    outside = tmp_path / "elsewhere.json"
    outside.write_bytes(receipt(facts, agent_key(), agent_id="agent-9"))
    (folder / f"{facts['export_id']}.json").symlink_to(outside)
    report = import_receipts(home, db, mount)
    assert report.count("imported") == 1
    checks = sorted(r.error.check for r in report.refused)
    assert checks == ["entry-type", "name"]


def test_listing_per_action_and_per_agent(site, mount):
    home, facts = site
    db = open_database(home)
    put(mount, receipt(facts, enrolled(home)), facts=facts)
    put(
        mount,
        receipt(
            facts,
            enrolled(home, "agent-2"),
            agent_id="agent-2",
            outcomes=("succeeded", "skipped"),
            status="completed",
        ),
        "agent-2",
        facts=facts,
    )
    put(
        mount,
        receipt(
            facts,
            enrolled(home, "agent-3"),
            agent_id="agent-3",
            outcomes=("not-run", "not-run"),
            status="refused",
            refusal=Refusal(check="sha256", subject="airseal/x", detail="digest mismatch"),
        ),
        "agent-3",
        facts=facts,
    )
    assert import_receipts(home, db, mount).count("imported") == 3
    listing = list_receipts(db)
    first, second = facts["actions"]
    per_action = {a["id"]: a for a in listing.actions}
    assert per_action[first]["outcomes"] == {"succeeded": 2, "not-run": 1}
    assert per_action[second]["outcomes"] == {"failed": 1, "skipped": 1, "not-run": 1}
    assert per_action[first]["agents"] == 3 and per_action[first]["name"] == "(Config)One"
    per_agent = {a["id"]: a for a in listing.agents}
    assert per_agent["agent-1"]["failed_actions"] == 1
    assert per_agent["agent-3"]["last_status"] == "refused"
    refused = next(r for r in listing.receipts if r["agent_id"] == "agent-3")
    assert refused["refusal"] == {
        "check": "sha256",
        "subject": "airseal/x",
        "detail": "digest mismatch",
    }


def test_cli(site, mount, capsys, tmp_path):
    _home, facts = site
    signer = agent_key()
    (tmp_path / "agent.pub").write_bytes(spki_pem(signer.public_key))
    assert (
        airseal_main(["agents", "enroll", "--id", "agent-1", "--key", str(tmp_path / "agent.pub")])
        == 0
    )
    assert "Enrolled agent agent-1" in capsys.readouterr().out
    put(mount, receipt(facts, signer), facts=facts)
    (mount / "airseal/receipts/agent-1/stray.txt").write_text("x")
    assert airseal_main(["receipts", "import", str(mount)]) == 1
    captured = capsys.readouterr()
    assert "imported  agent-1" in captured.out and "1 refused" in captured.out
    assert "airseal/receipts/agent-1/stray.txt: receipt refused [name]" in captured.err
    assert airseal_main(["receipts", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["agents"][0]["id"] == "agent-1"
    assert airseal_main(["receipts", "list"]) == 0
    out = capsys.readouterr().out
    assert "Actions:" in out and "1 succeeded" in out and "ws-042 (linux)" in out
    assert airseal_main(["receipts", "--help"]) == 0
