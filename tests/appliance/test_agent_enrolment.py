"""Agent enrolment (issue 13, item 6): a receipt counts only when its agent id is enrolled with the
key that signed it. Forged receipts under an enrolled id are refused and never replace the key;
self-signed receipts of unknown ids are kept aside, never counted, until the operator enrols them;
keys pinned on first use before enrolment existed are kept, marked as never checked."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from airseal._internal import migrations
from airseal.appliance.db import MIGRATIONS, open_database
from airseal.appliance.home import Home
from airseal.trustroot.keys import fingerprint, spki_pem
from tests.appliance.receipt_site import NOW, agent_key, enrolled, put, receipt

ROOT = Path(__file__).resolve().parents[2]


def airseal(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `airseal` CLI, in its own process, on this site's home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRSEAL", "COSIGN"))}
    env["AIRSEAL_HOME"] = str(home.root)
    return subprocess.run(
        [sys.executable, "-m", "airseal", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def state(home: Home) -> dict[str, object]:
    """What fleet status and enrolment hold, to compare before and after an attack."""
    db = open_database(home)
    try:
        return {
            "enrolled": db.execute(
                "SELECT id, key_fingerprint, basis FROM enrolled_agents ORDER BY id"
            ).fetchall(),
            "receipts": db.execute(
                "SELECT agent_id, export_id, sha256 FROM receipts ORDER BY agent_id"
            ).fetchall(),
            "agents": db.execute("SELECT id, key_fingerprint FROM agents ORDER BY id").fetchall(),
        }
    finally:
        db.close()


def test_a_forged_receipt_under_an_enrolled_id_is_refused_and_the_genuine_one_still_counts(
    site, mount
):
    home, facts = site
    genuine = enrolled(home, "agent-1")
    before = state(home)
    forger = agent_key()  # anyone can name a folder after a real agent id and sign with any key
    path = put(
        mount,
        receipt(facts, forger, status="completed", outcomes=("succeeded", "succeeded")),
        facts=facts,
    )
    result = airseal(home, "receipts", "import", str(mount))
    assert result.returncode == 1, result.stderr
    name = f"airseal/receipts/agent-1/{facts['export_id']}.json"
    assert f"{name}: receipt identity refused [receipt identity]" in result.stderr
    assert fingerprint(forger.public_key) in result.stderr
    assert state(home) == before  # the enrolled key stays, nothing was stored

    path.unlink()
    put(mount, receipt(facts, genuine, finished=NOW + timedelta(minutes=5)), facts=facts)
    result = airseal(home, "receipts", "import", str(mount))
    assert result.returncode == 0, result.stderr
    assert "imported  agent-1" in result.stdout
    listing = json.loads(airseal(home, "receipts", "list", "--json").stdout)
    assert [a["id"] for a in listing["agents"]] == ["agent-1"]
    assert listing["agents"][0]["keyFingerprint"] == fingerprint(genuine.public_key)
    assert listing["agents"][0]["basis"] == "administrator"


def test_a_self_signed_receipt_of_an_unknown_agent_is_kept_aside_not_counted(site, mount):
    home, facts = site
    enrolled(home, "agent-1")
    before = state(home)
    stranger = agent_key()
    put(mount, receipt(facts, stranger, agent_id="agent-x"), "agent-x", facts=facts)
    result = airseal(home, "receipts", "import", str(mount))
    assert result.returncode == 0, result.stderr
    assert "unenrolled agent-x" in result.stdout and "1 unenrolled (kept aside)" in result.stdout
    assert state(home) == before  # fleet status untouched
    listing = json.loads(airseal(home, "receipts", "list", "--json").stdout)
    assert listing["agents"] == [] and listing["actions"] == [] and listing["receipts"] == []
    (aside,) = listing["unenrolled"]
    assert aside["agentId"] == "agent-x"
    assert aside["keyFingerprint"] == fingerprint(stranger.public_key)
    text = airseal(home, "receipts", "list", "--unenrolled").stdout
    assert "agent-x" in text and fingerprint(stranger.public_key) in text
    # the dashboard still waits for a receipt of this export
    db = open_database(home)
    from airseal.appliance.dashboard import summarize

    assert summarize(home, db, now=NOW).receipts_waiting == 1
    db.close()


def test_the_operator_enrols_an_agent_from_its_receipt_after_seeing_its_fingerprint(site, mount):
    home, facts = site
    signer = agent_key()
    path = put(mount, receipt(facts, signer, agent_id="agent-7"), "agent-7", facts=facts)
    assert airseal(home, "receipts", "import", str(mount)).returncode == 0
    # not on a terminal and no --yes: nobody approved, nothing changes
    result = airseal(home, "agents", "enroll", "--from-receipt", str(path))
    assert result.returncode == 2 and "--yes" in result.stderr
    assert state(home)["enrolled"] == []
    result = airseal(home, "agents", "enroll", "--from-receipt", str(path), "--yes", "--json")
    assert result.returncode == 0, result.stderr
    enrolment = json.loads(result.stdout)
    assert enrolment["id"] == "agent-7" and enrolment["basis"] == "operator-approved"
    assert enrolment["keyFingerprint"] == fingerprint(signer.public_key)
    assert enrolment["admitted"] == 1  # the receipt kept aside now counts
    listing = json.loads(airseal(home, "receipts", "list", "--json").stdout)
    assert [a["id"] for a in listing["agents"]] == ["agent-7"] and listing["unenrolled"] == []
    audit = airseal(home, "audit", "list", "--limit", "1").stdout
    assert "agent.enroll" in audit and "operator-approved" in audit


def test_a_tampered_receipt_cannot_be_enrolled_from(site, mount):
    home, facts = site
    victim, forger = agent_key(), agent_key()
    path = put(mount, receipt(facts, forger, carried_key=victim), facts=facts)
    result = airseal(home, "agents", "enroll", "--from-receipt", str(path), "--yes")
    assert result.returncode == 1
    assert str(path) in result.stderr and "[receipt identity]" in result.stderr
    assert state(home)["enrolled"] == []


def test_two_keys_claiming_one_unenrolled_id_are_shown_and_only_the_enrolled_key_counts(
    site, mount, tmp_path
):
    home, facts = site
    genuine, forger = agent_key(), agent_key()
    put(mount, receipt(facts, forger), facts=facts)
    assert airseal(home, "receipts", "import", str(mount)).returncode == 0
    put(mount, receipt(facts, genuine, finished=NOW + timedelta(minutes=1)), facts=facts)
    assert airseal(home, "receipts", "import", str(mount)).returncode == 0
    text = airseal(home, "agents", "list").stdout
    assert "WARNING: 2 keys claim this id" in text
    pub = tmp_path / "agent.pub"
    pub.write_bytes(spki_pem(genuine.public_key))
    result = airseal(
        home, "agents", "enroll", "--id", "agent-1", "--key", str(pub), "--name", "ws-042"
    )
    assert result.returncode == 0, result.stderr
    assert "1 receipt(s) kept aside now count" in result.stdout
    after = state(home)
    assert after["agents"] == [("agent-1", fingerprint(genuine.public_key))]
    assert json.loads(airseal(home, "receipts", "list", "--json").stdout)["unenrolled"] == []


def test_an_enrolled_key_is_never_replaced_and_removal_stops_counting(site, mount, tmp_path):
    home, facts = site
    signer = enrolled(home, "agent-1")
    put(mount, receipt(facts, signer), facts=facts)
    assert airseal(home, "receipts", "import", str(mount)).returncode == 0
    before = state(home)
    other = tmp_path / "other.pub"
    other.write_bytes(spki_pem(agent_key().public_key))
    result = airseal(home, "agents", "enroll", "--id", "agent-1", "--key", str(other))
    assert result.returncode == 3 and "agent already enrolled" in result.stderr
    assert state(home) == before
    result = airseal(home, "agents", "remove", "agent-1")
    assert result.returncode == 0 and "Removed agent agent-1" in result.stdout
    listing = json.loads(airseal(home, "receipts", "list", "--json").stdout)
    assert listing["agents"] == [] and listing["actions"] == []
    assert airseal(home, "agents", "remove", "agent-1").returncode == 3
    audit = airseal(home, "audit", "list", "--json").stdout
    actions = [e["action"] for e in json.loads(audit)["items"]]
    assert actions[0] == "agent.remove" and "agent.enroll" in actions
    assert airseal(home, "audit", "verify").returncode == 0


def test_keys_pinned_on_first_use_become_enrolments_marked_unverified(tmp_path, monkeypatch):
    """An appliance at schema 3 had pinned an agent's key from its first receipt: after the
    upgrade it still counts (existing sites keep their view) and says it was never checked."""
    from airseal.appliance.home import init_home

    monkeypatch.setenv("AIRSEAL_HOME", str(tmp_path / "home"))
    home, _ = init_home(tmp_path / "home")
    (home.database_path).unlink(missing_ok=True)
    conn = sqlite3.connect(home.database_path, isolation_level=None)
    migrations.migrate(conn, MIGRATIONS[:3])
    key = agent_key()
    conn.execute(
        "INSERT INTO agents VALUES ('agent-old', ?, ?, 'ws-001', 'linux', '2026-01-01', "
        "'2026-01-02')",
        [fingerprint(key.public_key), spki_pem(key.public_key).decode()],
    )
    conn.close()
    listed = json.loads(airseal(home, "agents", "list", "--json").stdout)["enrolled"]
    assert [(a["id"], a["basis"]) for a in listed] == [("agent-old", "first-use")]
    assert listed[0]["basisText"] == "pinned on first use, not verified by an administrator"
    assert listed[0]["keyFingerprint"] == fingerprint(key.public_key)
    # an administrator confirms it by enrolling the same key
    pub = tmp_path / "agent.pub"
    pub.write_bytes(spki_pem(key.public_key))
    result = airseal(home, "agents", "enroll", "--id", "agent-old", "--key", str(pub))
    assert result.returncode == 0 and "Confirmed agent agent-old" in result.stdout
    listed = json.loads(airseal(home, "agents", "list", "--json").stdout)["enrolled"]
    assert listed[0]["basis"] == "administrator"


def test_receipts_kept_aside_are_bounded_and_can_be_discarded(site, mount, monkeypatch):
    from airseal.appliance import receipts as receipts_module
    from airseal.appliance.receipts import import_receipts

    home, facts = site
    monkeypatch.setattr(receipts_module, "MAX_UNENROLLED_RECEIPTS", 2)
    for n in range(3):
        put(
            mount, receipt(facts, agent_key(), agent_id=f"made-up-{n}"), f"made-up-{n}", facts=facts
        )
    db = open_database(home)
    report = import_receipts(home, db, mount)
    assert report.count("unenrolled") == 2
    (refused,) = report.refused
    assert refused.error is not None and refused.error.check == "unenrolled limit"
    assert refused.path.startswith("airseal/receipts/made-up-")
    db.close()
    kept = next(r.agent_id for r in report.results if r.status == "unenrolled")
    result = airseal(home, "agents", "remove", kept)
    assert result.returncode == 0 and "Discarded 1 receipt(s)" in result.stdout
    listing = json.loads(airseal(home, "receipts", "list", "--json").stdout)
    assert len(listing["unenrolled"]) == 1 and kept not in str(listing["unenrolled"])
    # the bound counted what was kept: after the discard there is room for one more
    db = open_database(home)
    assert import_receipts(home, db, mount).count("unenrolled") == 1
    db.close()


def test_enrolling_from_a_fifo_on_hostile_media_is_refused_not_hung(site, tmp_path):
    home, _facts = site
    fifo = tmp_path / "receipt.json"
    os.mkfifo(fifo)
    result = airseal(home, "agents", "enroll", "--from-receipt", str(fifo), "--yes")
    assert result.returncode == 1 and str(fifo) in result.stderr
    assert "[receipt identity]" in result.stderr
    assert state(home)["enrolled"] == []


def test_host_names_from_receipts_are_shown_escaped(site, mount):
    home, facts = site
    put(
        mount,
        receipt(facts, agent_key(), agent_id="agent-rtl", hostname="ws\u202egpj.exe\x1b[2J"),
        "agent-rtl",
        facts=facts,
    )
    assert airseal(home, "receipts", "import", str(mount)).returncode == 0
    text = airseal(home, "agents", "list").stdout
    assert "ws\\u202egpj.exe\\u001b[2J" in text and "\u202e" not in text and "\x1b" not in text


def test_on_a_terminal_the_operator_sees_the_identity_before_approving(site, mount):
    import pty
    import select

    home, facts = site
    signer = agent_key()
    path = put(mount, receipt(facts, signer, agent_id="agent-9"), "agent-9", facts=facts)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRSEAL", "COSIGN"))}
    env["AIRSEAL_HOME"] = str(home.root)

    def enrol(answer: bytes) -> tuple[int, str]:
        leader, follower = pty.openpty()
        child = subprocess.Popen(
            [sys.executable, "-m", "airseal", "agents", "enroll", "--from-receipt", str(path)],
            cwd=ROOT,
            env=env,
            stdin=follower,
            stdout=follower,
            stderr=follower,
        )
        os.close(follower)
        seen = b""
        while b"[y/N]" not in seen:
            ready, _, _ = select.select([leader], [], [], 60)
            assert ready, seen
            seen += os.read(leader, 4096)
        os.write(leader, answer)
        code = child.wait(timeout=60)
        with contextlib.suppress(OSError):
            while select.select([leader], [], [], 0.2)[0]:
                seen += os.read(leader, 4096)
        os.close(leader)
        return code, seen.decode(errors="replace")

    code, text = enrol(b"n\n")
    assert code == 1 and "agent-9" in text and fingerprint(signer.public_key) in text
    assert state(home)["enrolled"] == []  # refused at the prompt: nothing changed
    code, text = enrol(b"y\n")
    assert code == 0 and "Enrolled agent agent-9" in text, text
    assert state(home)["enrolled"] == [
        ("agent-9", fingerprint(signer.public_key), "operator-approved")
    ]
