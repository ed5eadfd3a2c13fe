"""The agent's transparency-log check on media: consistency with the checkpoint it stored last,
then every action's and the export's inclusion, before anything runs.

Each refusal must name the file and the check, leave nothing run (no download destination, no
marker file), and leave the stored checkpoint as it was. The media are written by the real
export writer with the appliance's own log store and proof builder (tests/agent/log_media.py).
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from airseal.agent.approval import ApproveAll
from airseal.agent.enrolment import pinned_trust
from airseal.agent.importer import Importer, host_facts
from airseal.agent.journal import Journal
from airseal.agent.lock import StateLock
from airseal.agent.log_state import enroll_log_key, last_checkpoint, store_checkpoint
from airseal.agent.report import ImportReport, error_check
from airseal.agent.runner import ImportOptions
from airseal.agent.state import AgentState, open_state
from airseal.agent.trust import PinnedKeyTrust
from airseal.media.reader import DirectorySource
from airseal.trustroot.keys import spki_pem
from airseal.trustroot.signer import Signer
from airseal.trustroot.tlog.checkpoint import Checkpoint
from airseal.trustroot.tlog.cosignature import WitnessKey, cosign
from airseal.trustroot.tlog.media_proofs import LogTrust

from .helpers import ActionBuild, Distributor, script, sign_action, tar_payload, utcnow
from .log_media import SiteLog, new_site_log, write_logged_media


class Site:
    def __init__(self, base: Path, distributor: Distributor) -> None:
        self.base = base
        self.distributor = distributor
        self.log = new_site_log()
        self.markers = base / "markers"
        self.markers.mkdir(parents=True)
        self.dest = base / "dest" / "tool.conf"
        conf = base / "tool.conf"
        conf.write_bytes(b"setting = 1\n")
        tar = tar_payload(base / "run.tar.gz", {"run.sh": script(f"touch {self.markers}/ran")})
        self.actions = self.log.log_actions([
            sign_action(ActionBuild("dl", conf, dest=str(self.dest)), distributor),
            sign_action(ActionBuild("run", tar, mode="execute", run="run.sh"), distributor),
        ], distributor)

    def media(self, name: str, **kwargs: object) -> Path:
        return write_logged_media(self.base / name, self.log, self.distributor, self.actions,
                                  **kwargs)  # type: ignore[arg-type]

    def nothing_ran(self) -> bool:
        return not self.dest.exists() and not any(self.markers.iterdir())


@pytest.fixture
def site(tmp_path: Path, distributor: Distributor) -> Site:
    return Site(tmp_path / "site", distributor)


def run(state: AgentState, signer: Signer, mount: Path, log: LogTrust | None = None
        ) -> ImportReport:
    state = open_state(state.root)
    with StateLock(state.lock_path), Journal.open(state.journal_path) as journal:
        trust = pinned_trust(journal, state.root)
        if log is not None:
            trust = PinnedKeyTrust(trust.keys("exports") + trust.keys("actions"), None, log)
        return Importer(
            state, journal, trust, DirectorySource(mount), approver=ApproveAll(),
            clock=utcnow, host=host_facts(state), signer=lambda: signer,
            options=ImportOptions(),
        ).run()


def enrol_log(state: AgentState, site_log: SiteLog) -> None:
    enroll_log_key(state.root, spki_pem(site_log.signer.public_key), site_log.origin,
                   subject="log.pub")


def refused(report: ImportReport, check: str, subject: str, site: Site) -> str:
    assert report.status == "refused", report.status
    assert report.error is not None
    assert error_check(report.error) == check, str(report.error)
    assert report.error.subject == subject, str(report.error)
    assert report.error.hint
    assert site.nothing_ran()
    return str(report.error)


def test_logged_media_imports_and_the_endpoint_moves_its_checkpoint_forward(
    enrolled: AgentState, agent_signer: Signer, site: Site
) -> None:
    enrol_log(enrolled, site.log)
    report = run(enrolled, agent_signer, site.media("first"))
    assert report.status == "completed", report.error
    stored = last_checkpoint(enrolled.root)
    assert stored is not None and stored.size == site.log.log.size == 3  # 2 actions + statement
    # more is logged in between (another signature), then a second export: proved consistent
    site.log.logged(site.actions[0].bundle, site.distributor.signer.public_key, "sign-blob")
    site.actions = site.log.log_actions(site.actions, site.distributor)
    second = write_logged_media(site.base / "second", site.log, site.distributor, site.actions,
                                export_id="export-2", sequence=2)
    report = run(enrolled, agent_signer, second)
    assert report.status == "completed", report.error
    after = last_checkpoint(enrolled.root)
    assert after is not None and after.size == site.log.log.size == 7


def test_a_fork_before_the_media_checkpoint_is_refused_by_the_proof(
    enrolled: AgentState, agent_signer: Signer, site: Site
) -> None:
    """The endpoint stored size 3 (an earlier export); the media proves what the first 3
    entries of its log are, and they are not what the endpoint saw: a fork, caught through the
    one proof in log/hashes, naming both checkpoints; nothing runs, the stored one stays."""
    enrol_log(enrolled, site.log)
    assert run(enrolled, agent_signer, site.media("first")).status == "completed"
    seen = last_checkpoint(enrolled.root)
    assert seen is not None and seen.size == 3
    site.dest.unlink()  # what the first import placed and ran, so the refusal is seen to run none
    for marker in site.markers.iterdir():
        marker.unlink()
    site.log.logged(site.actions[0].bundle, site.distributor.signer.public_key, "sign-blob")
    site.actions = site.log.log_actions(site.actions, site.distributor)
    forked = Checkpoint(seen.origin, seen.size, bytes(32))  # what a split view showed it
    store_checkpoint(enrolled.root, forked, "evidence")
    second = write_logged_media(site.base / "second", site.log, site.distributor, site.actions,
                                export_id="export-2", sequence=2)
    assert 3 in json.loads((second / "airseal/log/proofs.json").read_bytes())["earlierSizes"]
    message = refused(run(enrolled, agent_signer, second), "tlog.fork", "airseal/log/hashes",
                      site)
    assert forked.describe() in message and "first 3 entries" in message
    assert last_checkpoint(enrolled.root) == forked


def test_tampered_inclusion_proof_is_refused(enrolled, agent_signer, site) -> None:
    enrol_log(enrolled, site.log)
    # something else logged after the actions: its leaf is the one hash their proof needs
    site.log.logged(site.actions[0].bundle, site.distributor.signer.public_key, "sign-blob")

    def flip(checkpoint: bytes, proofs: bytes, hashes: bytes) -> tuple[bytes, bytes, bytes]:
        assert len(hashes) == 32  # the one subtree the entries' proof needs
        return checkpoint, proofs, bytes([hashes[0] ^ 1]) + hashes[1:]

    message = refused(run(enrolled, agent_signer, site.media("m", edit_files=flip)),
                      "tlog.inclusion", "airseal/log/hashes", site)
    assert "entry" in message
    assert last_checkpoint(enrolled.root) is None


def test_tampered_checkpoint_signature_is_refused(enrolled, agent_signer, site) -> None:
    enrol_log(enrolled, site.log)

    def flip(checkpoint: bytes, proofs: bytes, hashes: bytes) -> tuple[bytes, bytes, bytes]:
        body, _, line = checkpoint.decode().rpartition("\n\u2014 ")
        name, blob = line.rstrip("\n").split(" ")
        raw = bytearray(base64.b64decode(blob))
        raw[10] ^= 1
        note = f"{body}\n\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"
        return note.encode(), proofs, hashes

    refused(run(enrolled, agent_signer, site.media("m", edit_files=flip)),
            "tlog.checkpoint.signature", "airseal/log/checkpoint", site)


def test_a_checkpoint_of_another_log_is_refused(enrolled, agent_signer, site) -> None:
    other = new_site_log()  # same origin, another key: not the site's log
    enrol_log(enrolled, other)
    message = refused(run(enrolled, agent_signer, site.media("m")),
                      "tlog.checkpoint.signature", "airseal/log/checkpoint", site)
    assert "log.site.example" in message
    elsewhere = new_site_log("log.elsewhere.example")
    enroll_log_key(enrolled.root, spki_pem(site.log.signer.public_key), elsewhere.origin,
                   subject="log.pub")  # the right key, another origin
    refused(run(enrolled, agent_signer, site.media("m2")),
            "tlog.checkpoint.origin", "airseal/log/checkpoint", site)


def test_a_forked_log_is_refused_naming_both_checkpoints(enrolled, agent_signer, site) -> None:
    enrol_log(enrolled, site.log)
    mount = site.media("m")
    size = site.log.log.size
    seen = Checkpoint(site.log.origin, size, b"\x07" * 32)  # the same size, another root
    store_checkpoint(enrolled.root, seen, "evidence")
    message = refused(run(enrolled, agent_signer, mount), "tlog.fork",
                      "airseal/log/checkpoint", site)
    assert seen.describe() in message and site.log.log.root().hex()[:16] in message
    assert last_checkpoint(enrolled.root) == seen  # unchanged


def test_a_stored_checkpoint_without_a_proof_on_the_media_is_refused(
    enrolled, agent_signer, site
) -> None:
    """The media proves consistency only from sizes earlier exports ended on: an endpoint whose
    stored size is not among them is refused (fail closed), told which size it needs."""
    enrol_log(enrolled, site.log)
    store_checkpoint(enrolled.root, Checkpoint(site.log.origin, 1, b"\x07" * 32), "x")
    mount = site.media("m")
    message = refused(run(enrolled, agent_signer, mount), "tlog.consistency",
                      "airseal/log/proofs.json", site)
    assert "size 1" in message


def test_a_shrunk_log_is_refused(enrolled, agent_signer, site) -> None:
    enrol_log(enrolled, site.log)
    mount = site.media("m")
    bigger = Checkpoint(site.log.origin, site.log.log.size + 5, b"\x01" * 32)
    store_checkpoint(enrolled.root, bigger, "evidence")
    message = refused(run(enrolled, agent_signer, mount), "tlog.shrink",
                      "airseal/log/checkpoint", site)
    assert bigger.describe() in message


def test_media_without_the_log_is_refused_when_the_log_is_required(
    enrolled, agent_signer, site, tmp_path
) -> None:
    from .helpers import write_media

    enrol_log(enrolled, site.log)
    mount = write_media(tmp_path / "plain", site.distributor, site.actions)
    message = refused(run(enrolled, agent_signer, mount), "tlog.missing",
                      "airseal/export.sigstore.json", site)
    assert "airseal/log" not in message or "log/checkpoint" in message
    # a site whose policy says log.required: false accepts it (and stores nothing)
    lenient = replace(site.log.trust, required=False)
    assert run(enrolled, agent_signer, mount, lenient).status == "completed"
    assert last_checkpoint(enrolled.root) is None


def test_missing_witness_quorum_is_refused(enrolled, agent_signer, site) -> None:
    witness_key = ed25519.Ed25519PrivateKey.generate()
    witness = WitnessKey("witness.site.example/w1", witness_key.public_key().public_bytes_raw())
    trust = replace(site.log.trust, witnesses=(witness,), quorum=1)
    refused(run(enrolled, agent_signer, site.media("m"), trust), "tlog.witness.quorum",
            "airseal/log/checkpoint", site)
    note = site.log.log.latest_checkpoint().note
    cosigned = cosign(note, witness, witness_key.sign, timestamp=1_700_000_000)
    report = run(enrolled, agent_signer, site.media("m2", note=cosigned), trust)
    assert report.status == "completed", report.error


def test_a_yubikey_witness_meets_the_quorum(enrolled, agent_signer, site, tmp_path,
                                           monkeypatch) -> None:
    """A witness station with its key on a (software) YubiKey: its cosignature is what the
    agent's quorum check accepts (tests/appliance/test_witness_yubikey.py covers the station)."""
    from airseal.appliance.witness_station import WitnessStation, YubiKeyWitnessKey
    from airseal.trustroot.tlog.media_proofs import MediaProofs
    from tests.realparts.soft_piv import SoftPivCard, SoftPivConnection, TestAttestationCA

    class Pin:
        def secret(self, prompt: str, *, confirm: bool = False) -> str:
            return "123456"

        def notice(self, message: str) -> None:
            pass

    monkeypatch.delenv("AIRSEAL_PIN", raising=False)
    card = SoftPivCard(TestAttestationCA.generate())
    station = WitnessStation(tmp_path / "w", Pin(),
                             open_yubikey=lambda _serial: lambda: SoftPivConnection(card))
    (tmp_path / "log.pub").write_bytes(spki_pem(site.log.signer.public_key))
    status = station.init("witness.site.example/yk", tmp_path / "log.pub", site.log.origin,
                          yubikey=YubiKeyWitnessKey("9a"))
    witness = WitnessKey.from_vkey(status.vkey)
    trust = replace(site.log.trust, witnesses=(witness,), quorum=1)
    point = site.log.log.latest_checkpoint()
    req = tmp_path / "req"
    req.mkdir()
    (req / "checkpoint").write_text(point.note)
    proofs = MediaProofs(site.log.origin, point.checkpoint.size)
    (req / "proofs.json").write_bytes(proofs.to_bytes())
    (req / "hashes").write_bytes(proofs.hashes_bytes())
    station.cosign(req, req / "cosigned", now=utcnow())
    report = run(enrolled, agent_signer, site.media("yk", note=(req / "cosigned").read_text()),
                 trust)
    assert report.status == "completed", report.error


def test_the_couriers_check_reads_the_log_files_without_keys(site: Site) -> None:
    from airseal.media.check import check_media

    assert check_media(site.media("good")).ok

    def other_size(checkpoint: bytes, proofs: bytes, hashes: bytes) -> tuple[bytes, bytes, bytes]:
        doc = json.loads(proofs)
        doc["treeSize"] += 1
        return checkpoint, json.dumps(doc).encode(), hashes

    report = check_media(site.media("bad", edit_files=other_size))
    assert report.status == "damaged"
    assert [(f.path, f.check) for f in report.damaged] == [
        ("airseal/log/proofs.json", "tlog.proofs")]
    stray = _edit_entries(lambda e: e[0].update(bundle="actions/zz/action.sigstore.json"))
    report = check_media(site.media("stray", edit_files=stray))
    assert [(f.path, f.check) for f in report.damaged] == [
        ("airseal/log/proofs.json", "tlog.proofs")]
    assert "actions/zz" in report.damaged[0].reason


def test_status_shows_the_pinned_log_and_the_last_proved_checkpoint(
    enrolled, agent_signer, site, agent_cli
) -> None:
    from airseal.agent.log_state import status_json

    assert status_json(enrolled.root) is None
    enrol_log(enrolled, site.log)
    assert status_json(enrolled.root) == {"pinnedOrigin": site.log.origin, "checkpoint": None}
    assert run(enrolled, agent_signer, site.media("first")).status == "completed"
    shown = status_json(enrolled.root)
    assert shown is not None and shown["checkpoint"] == {
        "origin": site.log.origin, "size": site.log.log.size,
        "rootHash": base64.b64encode(site.log.log.root()).decode(),
    }
    result = agent_cli("status", "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["log"] == shown
    text = agent_cli("status")
    assert (f"Transparency log: last checkpoint {site.log.origin} size {site.log.log.size}"
            in text.stdout)


def _edit_entries(edit):  # type: ignore[no-untyped-def]
    def apply(checkpoint: bytes, proofs: bytes, hashes: bytes) -> tuple[bytes, bytes, bytes]:
        doc = json.loads(proofs)
        edit(doc["entries"])
        return checkpoint, json.dumps(doc).encode(), hashes
    return apply


def test_media_bundles_carry_no_log_entries_and_the_appliance_keeps_them(site: Site) -> None:
    mount = site.media("m")
    for action in site.actions:
        on_media = json.loads((mount / "airseal/actions" / action.id /
                               "action.sigstore.json").read_bytes())
        assert on_media["verificationMaterial"]["tlogEntries"] == []
        assert json.loads(action.bundle)["verificationMaterial"]["tlogEntries"]  # kept full
    entries = json.loads((mount / "airseal/log/proofs.json").read_bytes())["entries"]
    assert [e["bundle"] for e in entries] == [
        f"actions/{a.id}/action.sigstore.json" for a in site.actions]
    assert all("body" not in e for e in entries)  # our log's bodies are rebuilt


def test_a_bundle_whose_entry_was_removed_is_refused(enrolled, agent_signer, site) -> None:
    enrol_log(enrolled, site.log)
    mount = site.media("m", edit_files=_edit_entries(lambda e: e.pop(1)))
    message = refused(run(enrolled, agent_signer, mount), "tlog.entry",
                      "airseal/actions/run/action.sigstore.json", site)
    assert "no entry" in message
    assert last_checkpoint(enrolled.root) is None


def test_a_tampered_carried_body_is_refused(enrolled, agent_signer, site) -> None:
    enrol_log(enrolled, site.log)
    body = site.log.log.entry(0).body
    # a body recording another signature is refused, naming the bundle
    other = json.loads(body)
    other["spec"]["signatures"][0]["signature"] = base64.b64encode(b"\x30" * 70).decode()
    bad = site.media("bad", edit_files=_edit_entries(
        lambda e: e[0].update(body=base64.b64encode(json.dumps(other).encode()).decode())))
    refused(run(enrolled, agent_signer, bad), "tlog.body.signature",
            "airseal/actions/dl/action.sigstore.json", site)
    assert last_checkpoint(enrolled.root) is None
    # the body carried as logged verifies (what media with another Rekor's bodies look like)
    same = site.media("same", edit_files=_edit_entries(
        lambda e: e[0].update(body=base64.b64encode(body).decode())))
    assert run(enrolled, agent_signer, same).status == "completed"


def test_a_wrong_log_index_is_refused(enrolled, agent_signer, site) -> None:
    enrol_log(enrolled, site.log)
    site.log.logged(site.actions[0].bundle, site.distributor.signer.public_key, "sign-blob")
    mount = site.media("m", edit_files=_edit_entries(lambda e: e[1].update(logIndex=2)))
    refused(run(enrolled, agent_signer, mount), "tlog.inclusion", "airseal/log/hashes", site)


def test_entries_swapped_between_bundles_are_refused(enrolled, agent_signer, site) -> None:
    """Each bundle is pointed at the other's entry (index and proof valid for the other): the
    leaves rebuilt from the bundles are not at those indexes."""
    enrol_log(enrolled, site.log)

    def swap(entries: list[dict[str, object]]) -> None:
        entries[0]["bundle"], entries[1]["bundle"] = entries[1]["bundle"], entries[0]["bundle"]

    refused(run(enrolled, agent_signer, site.media("m", edit_files=_edit_entries(swap))),
            "tlog.inclusion", "airseal/log/hashes", site)
    assert last_checkpoint(enrolled.root) is None
