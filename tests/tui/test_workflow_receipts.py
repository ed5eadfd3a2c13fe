"""Receipts through the UI: written by real agents (the agent's own import pipeline, state,
key and receipt writer) after importing the appliance's export, then imported from the media
through the Receipts screen, verified, stored and charted; a receipt under a false agent name
refused with its file and check; receipts of an agent not enrolled shown apart, never counted."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from textual.widgets import DataTable, Input, Static

from airseal.agent.approval import ApproveAll
from airseal.agent.conditions import HostFacts
from airseal.agent.enrolment import enroll, pinned_trust
from airseal.agent.identity import load_signer
from airseal.agent.importer import Importer
from airseal.agent.journal import Journal
from airseal.agent.lock import StateLock
from airseal.agent.report import ImportReport
from airseal.agent.state import init_state
from airseal.appliance import keystore
from airseal.appliance.db import open_database
from airseal.appliance.home import open_home
from airseal.media.check import check_media
from airseal.media.reader import DirectorySource
from airseal.trustroot.keys import spki_pem
from airseal.tui.screens.receipts import ReceiptsScreen
from tests.tui.conftest import (
    AGENTS,
    NOW,
    PAYLOAD,
    enrol_agents,
    make_app,
    wait_for,
    wait_for_screen,
)

AGENT_PASSWORD = "endpoint key password"


@dataclass
class Endpoint:
    agent_id: str
    hostname: str
    report: ImportReport


def run_agent(state_root: Path, hostname: str, media: Path, distributor_pem: bytes) -> Endpoint:
    """One endpoint: initialise the agent, enrol the site's key, import the media (approving
    the distributor, as the endpoint user would), which writes its signed receipt back."""
    state, _ = init_state(state_root, lambda: AGENT_PASSWORD.encode(), env={})
    signer = load_signer(state_root, AGENT_PASSWORD.encode())
    host = HostFacts(os="linux", hostname=hostname, groups=frozenset(),
                     path_exists=lambda path: Path(path).exists())
    with StateLock(state.lock_path), Journal.open(state.journal_path) as journal:
        enroll(journal, distributor_pem, name="Site operations", purposes=("exports", "actions"),
               now=NOW)
        report = Importer(
            state, journal, pinned_trust(journal), DirectorySource(media),
            approver=ApproveAll(), clock=lambda: NOW, host=host, signer=lambda: signer,
        ).run()
    assert not report.refused, report.error
    return Endpoint(state.agent_id, hostname, report)


def outcomes_of(endpoint: Endpoint) -> dict[str, str]:
    return {action.id: action.outcome for action in endpoint.report.actions}


async def test_receipts_from_real_agents_imported_through_the_ui(
    snapshot_site: dict, tmp_path: Path
) -> None:
    root, media = snapshot_site["root"], snapshot_site["media"]
    download, execute = snapshot_site["download"], snapshot_site["execute"]
    shutil.rmtree(media / "airseal" / "receipts")  # this media goes to real agents instead
    db = open_database(open_home(root))
    site_key = keystore.get_key(db, "site-ops")
    db.close()
    distributor = spki_pem(site_key.public_key)
    placed = Path(download.predicate.to_json_dict()["download"]["dest"])
    assert placed.is_relative_to(root.parent)  # the test site places files in its own folder

    first = run_agent(tmp_path / "agent-1", "ws-101", media, distributor)
    second = run_agent(tmp_path / "agent-2", "lab-7", media, distributor)
    assert placed.read_bytes() == PAYLOAD and placed.stat().st_mode & 0o777 == 0o755
    placed.unlink()
    placed.mkdir()  # on the third endpoint a folder is in the way: the download fails there
    third = run_agent(tmp_path / "agent-3", "ws-102", media, distributor)
    endpoints = [first, second, third]
    assert outcomes_of(first) == {download.id: "succeeded", execute.id: "succeeded"}
    assert outcomes_of(second) == {download.id: "succeeded", execute.id: "skipped"}
    assert outcomes_of(third) == {download.id: "failed", execute.id: "succeeded"}
    assert all(e.report.receipt_path for e in endpoints)
    assert check_media(media, now=NOW).receipts == 3  # the courier's view of what came back
    # the administrator brought each endpoint's agent.pub to the appliance once
    enrol_agents(
        root,
        [(e.agent_id, (tmp_path / f"agent-{i}" / "agent.pub").read_bytes())
         for i, e in enumerate(endpoints, start=1)],
    )

    app = make_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("7")
        screen = await wait_for_screen(pilot, ReceiptsScreen)
        screen.query_one("#media-path", Input).value = str(media)
        await pilot.press("escape", "i")
        result = screen.query_one("#import-result", Static)
        await wait_for(pilot, lambda: "receipt(s):" in str(result.render()))
        text = str(result.render())
        assert "3 receipt(s): 3 imported, 0 updated, 0 unchanged, 0 refused" in text
        assert "Imported" in str(result.border_title)
        actions = screen.query_one("#receipt-actions", DataTable)
        await wait_for(pilot, lambda: actions.row_count == 2)
        # agents, succeeded, failed, skipped; then the bar
        assert actions.get_row(f"{download.id}:1")[3:7] == ["3", "2", "1", "0"]
        assert actions.get_row(f"{execute.id}:1")[3:7] == ["3", "2", "0", "1"]
        bar = actions.get_row(f"{download.id}:1")[7].plain
        assert bar == "█" * 16 + "✗" * 8  # 2 succeeded, 1 failed: told apart by symbol too
        agents = screen.query_one("#receipt-agents", DataTable)
        assert agents.row_count == 3
        row = agents.get_row(third.agent_id)
        assert row[1] == "ws-102" and row[6:9] == ["partial", "1", "1"]
        assert row[3] == "2026-03-02 09:30"  # when it ran (the agents' clock is NOW here)
        assert agents.get_row(first.agent_id)[6:9] == ["completed", "1", "0"]

        # the same media again: nothing new
        await pilot.press("i")
        await wait_for(pilot, lambda: "3 unchanged" in str(result.render()))
        assert not app.internal_errors

    db = open_database(open_home(root))
    stored = db.execute("SELECT agent_id, export_id, status FROM receipts").fetchall()
    export_id = snapshot_site["export"].export_id
    assert sorted(stored) == sorted(
        (e.agent_id, export_id, e.report.status) for e in endpoints
    )
    hosts = dict(db.execute("SELECT id, hostname FROM agents").fetchall())
    assert hosts == {e.agent_id: e.hostname for e in endpoints}
    for endpoint in endpoints:
        rows = db.execute(
            "SELECT action_id, outcome FROM receipt_actions WHERE agent_id = ?",
            [endpoint.agent_id],
        ).fetchall()
        assert dict(rows) == outcomes_of(endpoint)
    imports = db.execute("SELECT details FROM audit WHERE action = 'receipts.import'").fetchall()
    assert len(imports) == 2 and json.loads(imports[0][0])["refused"] == []


async def test_receipt_under_a_false_agent_name_is_refused(snapshot_site: dict) -> None:
    root, media = snapshot_site["root"], snapshot_site["media"]
    download, execute = snapshot_site["download"], snapshot_site["execute"]
    enrol_agents(root)
    forged = snapshot_site["receipts"][0]
    # a receipt moved under another agent's name: its path no longer matches what was signed
    impostor = forged.parent.parent / "agent-intruder" / forged.name
    impostor.parent.mkdir()
    impostor.write_bytes(forged.read_bytes())
    app = make_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("7")
        screen = await wait_for_screen(pilot, ReceiptsScreen)
        screen.query_one("#media-path", Input).value = str(media)
        await pilot.press("escape", "i")
        result = screen.query_one("#import-result", Static)
        await wait_for(pilot, lambda: "receipt(s):" in str(result.render()))
        text = str(result.render())
        assert "3 imported" in text and "1 refused" in text
        assert "airseal/receipts/agent-intruder" in text and "receipt refused [path]" in text
        assert "refused" in str(result.border_title)
        actions = screen.query_one("#receipt-actions", DataTable)
        await wait_for(pilot, lambda: actions.row_count == 2)
        row = actions.get_row(f"{execute.id}:1")
        assert row[3:7] == ["3", "1", "1", "1"]  # agents, succeeded, failed, skipped
        bar = row[7]
        assert "█" in bar.plain and "░" in bar.plain
        assert actions.get_row(f"{download.id}:1")[3:7] == ["3", "3", "0", "0"]
        agents = screen.query_one("#receipt-agents", DataTable)
        assert agents.row_count == 3
        row = agents.get_row("agent-ws-043")
        assert row[3:5] == ["2026-03-02 04:30", "2026-03-02 09:30"]  # ran, heard from
        assert row[5:9] == ["a1e500000004…", "partial", "1", "1"]
    db = open_database(open_home(root))
    assert db.execute("SELECT COUNT(*) FROM receipts").fetchone() == (3,)
    outcomes = dict(db.execute(
        "SELECT agent_id, outcome FROM receipt_actions WHERE action_id = ?", [execute.id]
    ).fetchall())
    assert outcomes == {"agent-ws-042": "succeeded", "agent-ws-043": "failed",
                        "agent-lab-007": "skipped"}
    details = db.execute(
        "SELECT details FROM audit WHERE action = 'receipts.import'"
    ).fetchone()[0]
    assert json.loads(details)["refused"] == [str(impostor.relative_to(media))]
    assert "agent-intruder" not in {r[0] for r in db.execute("SELECT id FROM agents")}


async def test_receipts_of_an_agent_not_enrolled_are_shown_apart_and_not_counted(
    snapshot_site: dict,
) -> None:
    root, media = snapshot_site["root"], snapshot_site["media"]
    download = snapshot_site["download"]
    from cryptography.hazmat.primitives.asymmetric import ec

    from airseal.trustroot.keys import fingerprint

    counted, (stranger_id, stranger_host, scalar, _outcomes) = AGENTS[:2], AGENTS[2]
    enrol_agents(
        root,
        [
            (agent_id, spki_pem(ec.derive_private_key(s, ec.SECP256R1()).public_key()))
            for agent_id, _host, s, _o in counted
        ],
    )
    stranger_fp = fingerprint(ec.derive_private_key(scalar, ec.SECP256R1()).public_key())
    app = make_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("7")
        screen = await wait_for_screen(pilot, ReceiptsScreen)
        screen.query_one("#media-path", Input).value = str(media)
        await pilot.press("escape", "i")
        result = screen.query_one("#import-result", Static)
        await wait_for(pilot, lambda: "receipt(s):" in str(result.render()))
        text = str(result.render())
        assert "2 imported" in text and "1 unenrolled (kept aside)" in text
        assert f"unenrolled {stranger_id}" in text and stranger_fp in text
        pending = screen.query_one("#receipt-unenrolled", DataTable)
        await wait_for(pilot, lambda: pending.row_count == 1)
        assert pending.display and screen.query_one("#unenrolled-title").display
        row = pending.get_row(f"{stranger_id}:{stranger_fp}")
        assert row[:4] == [stranger_id, stranger_host, "linux", stranger_fp[:16] + "…"]
        agents = screen.query_one("#receipt-agents", DataTable)
        assert agents.row_count == 2  # fleet status: enrolled agents only
        actions = screen.query_one("#receipt-actions", DataTable)
        assert actions.get_row(f"{download.id}:1")[3] == "2"
        assert not app.internal_errors
