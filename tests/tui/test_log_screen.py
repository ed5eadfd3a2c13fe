"""The Log screen: size, latest checkpoint, witnesses, entries searchable by digest or action, at
80x24 and 120x40; letters typed in the search stay there, Enter searches at once and goes to the
results, every visit starts on the table; one picture at 80x24.

The log is written straight into the :func:`build_site` appliance with a fixed key that signs
deterministically (RFC 6979), so bodies, SETs, the root and the anchor are the same every run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from textual.widgets import DataTable, Input

from airseal.appliance import audit_anchor
from airseal.appliance.db import open_database
from airseal.appliance.home import open_home
from airseal.appliance.tlog_store import NewEntry, TransparencyLog, create_log
from airseal.trustroot.keys import KeyAlgorithm, PublicKey
from airseal.trustroot.tlog import entries
from airseal.tui.screens.audit import AuditScreen
from airseal.tui.screens.log import LogScreen
from tests.tui.conftest import NOW, PAYLOAD, make_app, settle, type_text, wait_for, wait_for_screen
from tests.tui.test_snapshots import go, snap

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
ORIGIN = "log.tui.example"


class DeterministicSigner:
    """A fixed P-256 key signing with RFC 6979 nonces: the same bytes every run."""

    def __init__(self) -> None:
        self._key = ec.derive_private_key(0x10C5_EED, ec.SECP256R1())

    @property
    def public_key(self) -> PublicKey:
        return self._key.public_key()

    @property
    def algorithm(self) -> KeyAlgorithm:
        return KeyAlgorithm.ECDSA_P256

    def sign_digest(self, sha256_digest: bytes) -> bytes:
        algorithm = ec.ECDSA(Prehashed(hashes.SHA256()), deterministic_signing=True)
        return self._key.sign(sha256_digest, algorithm)

    def sign_message(self, message: bytes) -> bytes:
        return self.sign_digest(hashlib.sha256(message).digest())


def add_log(root: Path, actions: list[str]) -> None:
    """A log holding a sign-blob entry, one statement per action and an export statement, then
    the audit chain's anchor (as an export leaves it)."""
    home = open_home(root)
    db = open_database(home)
    signer = DeterministicSigner()
    create_log(db.conn, origin=ORIGIN, key_name="site-ops", public_key=signer.public_key,
               signer=signer, now=NOW)
    log = TransparencyLog(db.conn)
    digest = hashlib.sha256(PAYLOAD).digest()
    new = [NewEntry(entries.HASHEDREKORD, entries.hashedrekord_body(
        digest, signer.sign_digest(digest), signer.public_key), "blob agent-installer.sh")]
    for n, subject in enumerate([*(f"action {a} v1" for a in actions), "export statement 1"]):
        payload = f'{{"statement":{n}}}'.encode()
        envelope = b'{"payload":"%d"}' % n
        new.append(NewEntry(entries.DSSE, entries.dsse_body(
            envelope, payload, signer.sign_message(payload), signer.public_key), subject))
    log.append(new, signer, now=NOW)
    head = audit_anchor.current_head(db.conn)
    assert head is not None
    body, subject = audit_anchor.anchor_entry(signer, home.appliance_id, head)
    log.append([NewEntry(entries.HASHEDREKORD, body, subject)], signer, now=NOW)
    db.close()


def _rows(screen: LogScreen) -> list[list[str]]:
    table = screen.query_one(DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


@pytest.mark.parametrize("size", SIZES)
async def test_log_screen_search_keys_and_focus(snapshot_site: dict, size: tuple[int, int]) -> None:
    actions = [snapshot_site["download"].id, snapshot_site["execute"].id]
    add_log(snapshot_site["root"], actions)
    app = make_app(snapshot_site["root"])
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("9")
        screen = await wait_for_screen(pilot, LogScreen)
        await settle(pilot)
        table = screen.query_one(DataTable)
        assert app.focused is table
        summary = str(screen.query_one("#log-summary").render())
        assert f"Log {ORIGIN} (key site-ops): 5 entries" in summary
        assert "Latest checkpoint: size 5, signed 2026-03-02T09:30:00Z" in summary
        assert "Witnesses: none configured" in summary
        rows = _rows(screen)
        assert [r[0] for r in rows] == ["4", "3", "2", "1", "0"]  # newest first
        assert rows[0][2].startswith("audit head ") and rows[4][3] == "hashedrekord"
        assert rows[4][1] == hashlib.sha256(PAYLOAD).hexdigest()[:16] + "…"

        # "/" goes to the search; the screen's letters are text there, and none acts
        await pilot.press("slash")
        search = screen.query_one("#log-search", Input)
        assert app.focused is search
        offered = {b.binding.key for b in screen.active_bindings.values() if b.enabled}
        assert not offered & {"v", "r", "q"}
        await pilot.press("v", "r", "9", "q")
        await settle(pilot)
        assert search.value == "vr9q" and app.screen is screen and app.is_running
        assert screen.query_one("#log-summary").border_title == "Transparency log"

        # Enter searches at once and goes to the results: by digest prefix ...
        search.value = ""
        await type_text(pilot, hashlib.sha256(PAYLOAD).hexdigest()[:12].upper())
        await pilot.press("enter")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert app.focused is table and _rows(screen)[0][2] == "blob agent-installer.sh"
        # ... and by action id
        await pilot.press("slash")
        search.value = ""
        await type_text(pilot, actions[1])
        await pilot.press("enter")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert _rows(screen)[0][2] == f"action {actions[1]} v1"

        # every visit starts on the table, wherever the last one ended
        await pilot.press("slash")
        await pilot.press("escape", "8")
        await wait_for_screen(pilot, AuditScreen)
        await pilot.press("9")
        await wait_for_screen(pilot, LogScreen)
        await settle(pilot)
        assert app.focused is table

        # v runs the full check, anchors included
        await pilot.press("v")
        box = screen.query_one("#log-summary")
        await wait_for(pilot, lambda: box.border_title == "Log verified")
        assert "audit chain anchors: 1, all match the chain" in str(box.render())
        assert not app.internal_errors


async def test_log_screen_without_a_log(empty_home: Path) -> None:
    app = make_app(empty_home)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("9")
        screen = await wait_for_screen(pilot, LogScreen)
        await settle(pilot)
        box = screen.query_one("#log-summary")
        assert box.border_title == "No log" and "airseal log init" in str(box.render())
        assert screen.query_one(DataTable).row_count == 0


def test_log_screen_80x24(snap_compare: Any, snapshot_site: dict) -> None:
    add_log(snapshot_site["root"],
            [snapshot_site["download"].id, snapshot_site["execute"].id])
    assert snap(snap_compare, make_app(snapshot_site["root"]), go("9"), size=(80, 24))
