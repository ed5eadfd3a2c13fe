"""The agent key decrypted on a second thread while check 2 runs (unattended imports): the same
outcomes as unlocking it first, a wrong password included."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pytest

from airseal.agent.approval import ApproveAll
from airseal.agent.enrolment import pinned_trust
from airseal.agent.importer import Importer, ImportOptions, host_facts
from airseal.agent.journal import Journal
from airseal.agent.lock import StateLock
from airseal.agent.state import AgentState, open_state
from airseal.media.reader import DirectorySource
from airseal.trustroot.errors import WrongPassword
from airseal.trustroot.signer import Signer

from .helpers import ActionBuild, sign_action, utcnow, write_media


def _media(tmp_path: Path, distributor) -> tuple[Path, Path]:
    payload = tmp_path / "tool.conf"
    payload.write_bytes(b"setting=1\n")
    dest = tmp_path / "dest" / "tool.conf"
    action = sign_action(ActionBuild("dl1", payload, dest=str(dest)), distributor)
    return write_media(tmp_path / "usb", distributor, [action]), dest


def _wrong_password() -> Signer:
    raise WrongPassword("the password does not decrypt the key", subject="agent.key")


def _import(state: AgentState, mount: Path, signer, now: datetime | None = None):
    state = open_state(state.root)
    with StateLock(state.lock_path), Journal.open(state.journal_path) as journal:
        return Importer(
            state,
            journal,
            pinned_trust(journal),
            DirectorySource(mount),
            approver=ApproveAll(),
            clock=lambda: now or utcnow(),
            host=host_facts(state),
            signer=signer,
            options=ImportOptions(unlock_in_background=True),
        ).run()


def test_a_key_unlocked_in_background_signs_the_receipt(
    tmp_path: Path, enrolled: AgentState, distributor, agent_signer: Signer
) -> None:
    mount, dest = _media(tmp_path, distributor)
    threads: list[str] = []

    def unlock() -> Signer:
        threads.append(threading.current_thread().name)
        return agent_signer

    report = _import(enrolled, mount, unlock)
    assert threads == ["airseal-agent-unlock"]  # decrypted beside check 2, once
    assert report.status == "completed" and dest.read_bytes() == b"setting=1\n"
    assert report.receipt_path is not None and (mount / report.receipt_path).is_file()


def test_a_wrong_password_still_wins_and_decides_nothing(
    tmp_path: Path, enrolled: AgentState, distributor, agent_signer: Signer
) -> None:
    mount, dest = _media(tmp_path, distributor)
    with pytest.raises(WrongPassword):  # genuine media: nothing placed, no sequence accepted
        _import(enrolled, mount, _wrong_password)
    assert not dest.exists()
    # tampered media too: the key's error, not check 2's, as when the key was unlocked first
    tampered = next((mount / "airseal" / "actions").glob("*/payload/*"))
    tampered.write_bytes(b"setting=2\n")
    with pytest.raises(WrongPassword):
        _import(enrolled, mount, _wrong_password)
    tampered.write_bytes(b"setting=1\n")
    report = _import(enrolled, mount, lambda: agent_signer)
    assert report.status == "completed" and not report.repeat  # still the first import
    assert dest.read_bytes() == b"setting=1\n"
