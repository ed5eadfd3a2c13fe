"""The disaster: an appliance with keys, a site repository, a transparency log and several exports
is backed up, its home destroyed, and the backup restored on a new home. The restored appliance
continues the export sequence (no reuse), its log is consistent with the checkpoint endpoints saw
before (:func:`airseal.trustroot.tlog.witness_state.advance_checkpoint`), its audit chain verifies
end to end over the old entries, and an agent that imported the old media accepts the new."""

from __future__ import annotations

import base64
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airseal.agent.approval import ApproveAll
from airseal.agent.importer import Importer, ImportOptions, host_facts
from airseal.agent.journal import Journal
from airseal.agent.lock import StateLock
from airseal.agent.report import ImportReport
from airseal.agent.site_trust import enroll_site_root, site_trust
from airseal.agent.state import AgentState, open_state
from airseal.appliance.actions import ActionSpec
from airseal.appliance.intake import VendorSignature
from airseal.appliance.service import Appliance, ApplianceOptions, UnlockedKeys
from airseal.media.reader import DirectorySource
from airseal.trustroot.keys import load_public_key
from airseal.trustroot.signer import Signer
from airseal.trustroot.tlog.checkpoint import verify_checkpoint
from airseal.trustroot.tlog.witness_state import advance_checkpoint

pytestmark = pytest.mark.slow

KEY_PASSWORD = "site key password"
BACKUP_PASSWORD = "disaster recovery passphrase"
START = datetime.now(UTC).replace(microsecond=0)


class Prompter:
    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        return BACKUP_PASSWORD if prompt.startswith("Backup") else KEY_PASSWORD

    def notice(self, message: str) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = START

    def tick(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def _import(state: AgentState, signer: Signer, media: Path, now: datetime) -> ImportReport:
    state = open_state(state.root)
    source = DirectorySource(media)
    with StateLock(state.lock_path), Journal.open(state.journal_path) as journal:
        return Importer(
            state, journal, lambda: site_trust(state.root, source, journal, now=now),
            source, approver=ApproveAll(), clock=lambda: now, host=host_facts(state),
            signer=lambda: signer, options=ImportOptions(),
        ).run()


def _statement_checkpoint(media: Path) -> str:
    bundle = json.loads((media / "airseal/export.sigstore.json").read_bytes())
    return str(bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]
               ["envelope"])


def _export(appliance: Appliance, base: Path, name: str, conf: Path, dest: Path) -> Path:
    appliance.add_file(conf, VendorSignature())
    action = appliance.create_action(
        ActionSpec(name=f"(Config){name}", os="linux", mode="download", file=str(conf),
                   dest=str(dest), file_mode="0600"), "dist")
    media = base / name
    media.mkdir()
    appliance.export(media, "dist", action_ids=[action.id], allow_unknown_capacity=True)
    return media


def test_an_appliance_restored_after_a_disaster_carries_on_without_a_gap(
    tmp_path: Path, agent_state: AgentState, agent_signer: Signer
) -> None:
    clock = Clock()
    # one session of unlocked keys: each key's password is stretched once, not at every use
    options = ApplianceOptions(clock=lambda: clock.now, unlocked_keys=UnlockedKeys())
    old = Appliance(tmp_path / "old-home", Prompter(), options)
    old.init()
    for name in ("K1", "dist"):
        old.generate_file_key(name)
    assert all(o.published for o in old.site_init(
        root_keys=["K1"], root_threshold=1, targets_keys=["K1"], targets_threshold=1,
        online_key="K1"))
    assert old.distributor_add("dist", name="Distributor", may_sign=["exports", "actions"]
                               ).published
    old.log_init("K1", origin="log.disaster.example")
    root_json = tmp_path / "root.json"
    old.write_site_root(root_json)
    enroll_site_root(agent_state.root, root_json.read_bytes(), now=START, subject="root.json")

    media = []
    for n in (1, 2, 3):
        clock.tick()
        conf = tmp_path / f"tool{n}.conf"
        conf.write_bytes(f"setting = {n}\n".encode())
        dest = tmp_path / "endpoint" / f"tool{n}.conf"
        media.append(_export(old, tmp_path, f"media{n}", conf, dest))
        report = _import(agent_state, agent_signer, media[-1], clock.now)
        assert report.status == "completed", report.error and report.error.diagnostics()
        assert dest.read_bytes() == conf.read_bytes()
    seen_checkpoint = _statement_checkpoint(media[-1])  # what endpoints last saw
    old_entries = old.db.execute("SELECT seq, hash FROM audit ORDER BY seq").fetchall()
    dist_fingerprint = old.get_key("dist").fingerprint

    clock.tick()
    backup = old.backup(tmp_path / "backup", "K1")
    signer_fingerprint = backup.manifest.signer_fingerprint
    old.close()
    shutil.rmtree(tmp_path / "old-home")  # the disaster

    clock.tick()
    new = Appliance(tmp_path / "new-site" / "home", Prompter(), options)
    restored = new.restore(tmp_path / "backup", expect_key=signer_fingerprint,
                           media=[media[-1]], sequence_gap=1000)
    next_sequence = {s["keyFingerprint"]: s["nextSequence"] for s in restored.plan.to_json()}
    assert next_sequence[dist_fingerprint] == 4

    clock.tick()
    conf = tmp_path / "tool4.conf"
    conf.write_bytes(b"setting = 4\n")
    dest = tmp_path / "endpoint" / "tool4.conf"
    after = _export(new, tmp_path, "media4", conf, dest)
    statement = json.loads(base64.b64decode(json.loads(
        (after / "airseal/export.sigstore.json").read_bytes())["dsseEnvelope"]["payload"]))
    assert statement["predicate"]["sequence"] == 4  # follows media3's 3: no reuse, no gap

    # the log: consistent with the checkpoint endpoints saw before the disaster
    status = new.log_status()
    log_key = load_public_key(_log_key_pem(new))
    previous = verify_checkpoint(seen_checkpoint, key=log_key, name=status.origin,
                                 origin=status.origin)
    proof = new.log_prove(old_size=previous.size).to_json()
    # the statement's checkpoint; the export's TUF timestamp and audit anchor follow it
    assert int(_statement_checkpoint(after).split("\n")[1]) == status.size - 2
    advanced = advance_checkpoint(
        previous, status.checkpoint, [base64.b64decode(h) for h in proof["hashes"]],
        key=log_key, name=status.origin, origin=status.origin)
    assert advanced.size > previous.size

    # the audit chain: the old entries, then the restore, then the new work, verified end to end
    report = new.verify_audit()
    assert report.ok, report.problems
    rows = new.db.execute("SELECT seq, hash, action FROM audit ORDER BY seq").fetchall()
    backup_head = backup.manifest.audit_entries
    assert [(s, h) for s, h, _ in rows[:backup_head]] == old_entries[:backup_head]
    assert rows[backup_head][2] == "restore"

    # the agent that imported the old appliance's media accepts the restored one's
    report = _import(agent_state, agent_signer, after, clock.now)
    assert report.status == "completed", report.error and report.error.diagnostics()
    assert dest.read_bytes() == conf.read_bytes()
    # and still refuses the old media: its sequence is behind
    replay = _import(agent_state, agent_signer, media[1], clock.now)
    assert replay.status == "refused"
    new.close()


def _log_key_pem(appliance: Appliance) -> bytes:
    return str(appliance.db.execute("SELECT public_key_pem FROM log").fetchone()[0]).encode()
