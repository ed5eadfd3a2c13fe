"""Receipts back at the appliance: verified (signed by the key its agent is enrolled with, export
known), stored, listed per action and per agent; anything else refused with its file and check."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from airseal.agent.receipts import write_receipt
from airseal.appliance import actions, intake
from airseal.appliance.cli import main as airseal_main
from airseal.appliance.db import SCHEMA_VERSION, open_database, schema_version
from airseal.appliance.export import export_to_media
from airseal.appliance.enrolment import enroll_agent
from airseal.appliance.home import Home, init_home, open_home
from airseal.appliance.keystore import generate_file_key
from airseal.appliance.receipts import (
    AgentKeyChanged,
    ReceiptRefused,
    UnknownExport,
    import_receipts,
    list_receipts,
)
from airseal.media import layout
from airseal.media.reader import DirectorySource
from airseal.media.receipt import (
    ActionResult,
    ReceiptPredicate,
    Refusal,
    receipt_media_path,
    receipt_statement,
)
from airseal.trustroot.bundle import bundle_to_json, sign_statement
from airseal.trustroot.keys import spki_pem
from airseal.trustroot.signer import PrivateKeySigner

NOW = datetime.now(UTC).replace(microsecond=0)


class Prompter:
    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        return "appliance key password"

    def notice(self, message: str) -> None:
        pass


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, dict]:
    """An appliance home with one real export of two actions (made once, copied per test)."""
    base = tmp_path_factory.mktemp("appliance-template")
    home, _ = init_home(base / "home")
    db = open_database(home)
    generate_file_key(home, db, "site", Prompter())
    payload = base / "tool.conf"
    payload.write_bytes(b"x=1\n")
    intake.add_file(home, db, payload, intake.VendorSignature())
    ids = []
    for name in ("(Config)One", "(Config)Two"):
        spec = actions.ActionSpec(
            name=name, file=str(payload), os="linux", mode="download", dest="/opt/x.conf"
        )
        ids.append(actions.create_action(home, db, spec, "site", Prompter()).id)
    media = base / "media"
    media.mkdir()
    summary = export_to_media(home, db, media, "site", Prompter())
    db.close()
    return base, {
        "export_id": summary.export_id,
        "sequence": summary.sequence,
        "distributor": summary.key_fingerprint,
        "actions": ids,
    }


@pytest.fixture
def site(template, tmp_path, monkeypatch) -> tuple[Home, dict]:
    base, facts = template
    shutil.copytree(base / "home", tmp_path / "home")
    home = open_home(tmp_path / "home")
    monkeypatch.setenv("AIRSEAL_HOME", str(home.root))
    return home, facts


def agent_key() -> PrivateKeySigner:
    return PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))


def enrolled(home: Home, agent_id: str = "agent-1") -> PrivateKeySigner:
    """A new agent key, enrolled at the appliance under ``agent_id`` by an administrator."""
    signer = agent_key()
    db = open_database(home)
    enroll_agent(
        home, db, agent_id, spki_pem(signer.public_key), name=None, basis="administrator", now=NOW
    )
    db.close()
    return signer


def receipt(
    facts: dict,
    signer: PrivateKeySigner,
    *,
    agent_id: str = "agent-1",
    export_id: str | None = None,
    outcomes: tuple[str, str] = ("succeeded", "failed"),
    finished: datetime = NOW,
    carried_key: PrivateKeySigner | None = None,
    **fields,
) -> bytes:
    predicate = ReceiptPredicate(
        agent_id=agent_id,
        agent_key=spki_pem((carried_key or signer).public_key).decode(),
        hostname="ws-042",
        os="linux",
        export_id=export_id or facts["export_id"],
        sequence=fields.pop("sequence", facts["sequence"]),
        distributor=fields.pop("distributor", facts["distributor"]),
        status=fields.pop("status", "partial"),
        started=finished - timedelta(minutes=1),
        finished=finished,
        actions=tuple(
            ActionResult(
                id=action_id,
                version=1,
                outcome=outcome,
                exit_code=None if outcome != "failed" else 2,
                reason="exited with code 2" if outcome == "failed" else None,
            )
            for action_id, outcome in zip(facts["actions"], outcomes, strict=True)
        ),
        **fields,
    )
    return bundle_to_json(sign_statement(signer, receipt_statement(predicate, "ab" * 32)))


def put(
    mount: Path,
    data: bytes,
    agent_id: str = "agent-1",
    export_id: str | None = None,
    facts: dict | None = None,
) -> Path:
    export = export_id or (facts or {}).get("export_id")
    write_receipt(DirectorySource(mount), agent_id, export, data)
    return mount / layout.MEDIA_DIR / receipt_media_path(agent_id, export)


@pytest.fixture
def mount(tmp_path) -> Path:
    (tmp_path / "usb" / "airseal").mkdir(parents=True)
    return tmp_path / "usb"


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
