"""Check 2 as a pure step: media source, trust, what the agent remembers and ``now`` in;
VerifiedMedia or a typed refusal out. No journal, no staging, nothing written."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from airseal.agent.approval import ApproveAll
from airseal.agent.enrolment import pinned_trust
from airseal.agent.errors import ExpiredMedia, ReplayedMedia
from airseal.agent.importer import Importer, host_facts
from airseal.agent.journal import Journal
from airseal.agent.lock import StateLock
from airseal.agent.state import open_state
from airseal.agent.trust import PinnedKeyTrust, TrustedKey
from airseal.agent.verification import (
    DistributorHistory,
    MediaVerifier,
    SequenceRecord,
    verify_media,
)
from airseal.media.errors import MediaDigestMismatch
from airseal.media.reader import DirectorySource, MediaSource
from airseal.media.rules import MediaEntry

from .helpers import ActionBuild, sign_action, utcnow, write_media


class RecordingSource(MediaSource):
    """A DirectorySource that notes every call made to it."""

    def __init__(self, root: Path) -> None:
        self.inner = DirectorySource(root)
        self.calls: list[tuple[str, str]] = []

    def list_dir(self, path: str = "") -> list[MediaEntry]:
        self.calls.append(("list_dir", path))
        return self.inner.list_dir(path)

    def walk(self, top: str) -> Iterator[MediaEntry]:
        self.calls.append(("walk", top))
        return self.inner.walk(top)

    def stat(self, path: str) -> MediaEntry | None:
        self.calls.append(("stat", path))
        return self.inner.stat(path)

    def open(self, path: str, *, max_size: int) -> BinaryIO:
        self.calls.append(("open", path))
        return self.inner.open(path, max_size=max_size)

    @property
    def label(self) -> str:
        return "recorded media"

    def write_receipt(self, agent_id: str, export_id: str, data: bytes) -> str:
        self.calls.append(("write_receipt", f"{agent_id}/{export_id}"))
        return self.inner.write_receipt(agent_id, export_id, data)


@pytest.fixture
def mount(tmp_path, distributor) -> Path:
    payload = tmp_path / "tool.conf"
    payload.write_bytes(b"setting=1\n" * 100)
    actions = [
        sign_action(ActionBuild(name, payload, dest=str(tmp_path / "dest" / name)), distributor)
        for name in ("first", "second")
    ]
    return write_media(tmp_path / "usb", distributor, actions, sequence=5)


@pytest.fixture
def trust(distributor) -> PinnedKeyTrust:
    return PinnedKeyTrust(
        [
            TrustedKey(
                distributor.fingerprint,
                "Test distributor",
                distributor.signer.public_key,
                frozenset({"exports", "actions"}),
                "test",
            )
        ]
    )


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_verified_media_carries_everything_the_runner_needs(mount, trust, distributor):
    before = snapshot(mount)
    source = RecordingSource(mount)
    media = verify_media(source, trust, {}, now=utcnow())
    assert media.distributor.fingerprint == distributor.fingerprint
    assert media.export.export_id == "export-1" and media.export.sequence == 5
    assert [a.id for a in media.actions] == ["first", "second"]
    assert [a.listed.id for a in media.actions] == ["first", "second"]
    assert media.files.ok and media.files.files_checked == 4  # two bundles, two payloads
    assert media.repeat is False and media.approved is False
    assert snapshot(mount) == before  # nothing written
    assert {call for call, _ in source.calls} == {"open", "walk"}
    assert all(path.startswith("airseal") for _, path in source.calls)


def test_what_the_agent_remembers_decides_repeat_replay_and_approval(mount, trust, distributor):
    sha = hashlib.sha256((mount / "airseal/export.sigstore.json").read_bytes()).hexdigest()
    source = DirectorySource(mount)
    same = {
        distributor.fingerprint: DistributorHistory(SequenceRecord(5, "export-1", sha), True)
    }
    media = verify_media(source, trust, same, now=utcnow())
    assert media.repeat is True and media.approved is True
    newer = {
        distributor.fingerprint: DistributorHistory(SequenceRecord(6, "export-9", "0" * 64), True)
    }
    with pytest.raises(ReplayedMedia):
        verify_media(source, trust, newer, now=utcnow())


def test_now_is_an_input(mount, trust):
    later = utcnow().replace(year=utcnow().year + 5)
    with pytest.raises(ExpiredMedia):
        verify_media(DirectorySource(mount), trust, {}, now=later)


def test_steps_run_in_order_and_each_refuses_on_its_own(mount, trust):
    verifier = MediaVerifier(DirectorySource(mount), trust, {}, now=utcnow())
    with pytest.raises(RuntimeError, match="authenticate_export"):
        verifier.verify_files()
    export = verifier.authenticate_export()
    assert verifier.verify_sequence() is False
    with pytest.raises(RuntimeError, match="verify_files"):
        verifier.verify_actions()
    payload = mount / "airseal/actions/second/payload/tool.conf"
    payload.write_bytes(payload.read_bytes().replace(b"1", b"2", 1))
    with pytest.raises(MediaDigestMismatch):
        verifier.verify_files()
    assert verifier.export is export and verifier.files is None
    with pytest.raises(RuntimeError, match="verify_actions"):
        verifier.verified()


def test_the_import_enters_the_media_once(mount, enrolled, agent_signer):
    """Verification, staging copies and the receipt all go through the one source given."""
    source = RecordingSource(mount)
    state = open_state(enrolled.root)
    with StateLock(state.lock_path), Journal.open(state.journal_path) as journal:
        report = Importer(
            state,
            journal,
            pinned_trust(journal),
            source,
            approver=ApproveAll(),
            clock=utcnow,
            host=host_facts(state),
            signer=lambda: agent_signer,
        ).run()
    assert report.status == "completed", report.error
    assert report.media == "recorded media"
    assert report.receipt_path == f"airseal/receipts/{state.agent_id}/export-1.json"
    assert (mount / report.receipt_path).is_file()
    assert source.calls[-1] == ("write_receipt", f"{state.agent_id}/export-1")
    payload_opens = [p for call, p in source.calls if call == "open" and "/payload/" in p]
    assert len(payload_opens) == 4  # hashed in check 2, copied to staging in check 3
