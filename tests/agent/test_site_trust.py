"""Site trust on TUF, end to end: a real appliance site repository (python-tuf Metadata API,
keys from the keystore), real exports carrying ``airseal/tuf/``, and the agent's real import
pipeline updating through ``tuf.ngclient.Updater`` from the media. One test per TUF attack class:
each is refused naming the file and the check, and nothing runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, Root, Targets

from airseal.agent.approval import ApproveAll
from airseal.agent.importer import Importer, ImportOptions, host_facts
from airseal.agent.journal import Journal
from airseal.agent.lock import StateLock
from airseal.agent.report import ImportReport
from airseal.agent.site_trust import enroll_site_root, site_trust, status_json
from airseal.agent.state import AgentState, open_state
from airseal.appliance.actions import ActionSpec
from airseal.appliance.keystore import get_key, open_signer
from airseal.appliance.service import Appliance, ApplianceOptions
from airseal.media.reader import DirectorySource
from airseal.trustroot.bundle import bundle_to_json, parse_bundle
from airseal.trustroot.cosign_keys import load_private_key
from airseal.trustroot.signer import PrivateKeySigner, Signer
from airseal.trustroot.tuf_keys import TufSigner
from tests.agent.helpers import resign_export

pytestmark = pytest.mark.slow

PASSWORD = "site key password"
NOW = datetime.now(UTC).replace(microsecond=0)


class Prompter:
    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        return PASSWORD

    def notice(self, message: str) -> None:
        pass


class Lab:
    """An appliance with a site repository (root 2 of 3, targets 1, online K4) and a payload."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.time = NOW
        self.appliance = Appliance(base / "appliance", Prompter(),
                                   ApplianceOptions(clock=lambda: self.time))
        self.appliance.init()
        for name in ("K1", "K2", "K3", "K4", "K5", "K6", "dist-a", "dist-b"):
            self.appliance.generate_file_key(name)
        outcomes = self.appliance.site_init(
            root_keys=["K1", "K2", "K3"], root_threshold=2, targets_keys=["K1"],
            targets_threshold=1, online_key="K4",
        )
        assert all(o.published for o in outcomes)
        self.root_json = base / "root.json"
        self.appliance.write_site_root(self.root_json)
        self.conf = base / "tool.conf"
        self.conf.write_bytes(b"configuration\n")
        self.dest = base / "endpoint" / "tool.conf"
        self.media_count = 0

    def action(self, key: str) -> str:
        self.appliance.add_file(self.conf, _no_vendor())
        spec = ActionSpec(name=f"(Config)Tool {key}", os="linux", mode="download",
                          file=str(self.conf), dest=str(self.dest), file_mode="0600")
        return self.appliance.create_action(spec, key).id

    def export(self, key: str, action_id: str) -> Path:
        self.media_count += 1
        media = self.base / f"media{self.media_count}"
        media.mkdir()
        self.appliance.export(media, key, action_ids=[action_id], allow_unknown_capacity=True)
        return media

    def sign_as(self, name: str) -> Callable[[Metadata[Root] | Metadata[Targets]], None]:
        def sign(md: Metadata[Root] | Metadata[Targets]) -> None:
            record = get_key(self.appliance.db, name)
            with open_signer(self.appliance.home, record, Prompter()) as signer:
                md.sign(TufSigner(signer), append=True)
        return sign


def _no_vendor():  # type: ignore[no-untyped-def]
    from airseal.appliance.intake import VendorSignature

    return VendorSignature()


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    monkeypatch.setenv("COSIGN_PASSWORD", PASSWORD)
    built = Lab(tmp_path)
    yield built
    built.appliance.close()


@pytest.fixture
def endpoint(agent_state: AgentState, lab: Lab) -> AgentState:
    enroll_site_root(agent_state.root, lab.root_json.read_bytes(), now=NOW,
                     subject=str(lab.root_json))
    return agent_state


def run(state: AgentState, signer: Signer, media: Path, *, now: datetime = NOW) -> ImportReport:
    state = open_state(state.root)
    source = DirectorySource(media)
    with StateLock(state.lock_path), Journal.open(state.journal_path) as journal:
        return Importer(
            state, journal,
            lambda: site_trust(state.root, source, journal, now=now),
            source, approver=ApproveAll(), clock=lambda: now, host=host_facts(state),
            signer=lambda: signer, options=ImportOptions(),
        ).run()


def refused(report: ImportReport, subject: str, check: str, *words: str) -> None:
    assert report.status == "refused", report.to_json_dict()
    assert report.error is not None
    assert report.error.subject == subject, report.error.diagnostics()
    assert report.error.check == check, report.error.diagnostics()
    for word in words:
        assert word in str(report.error), report.error.diagnostics()
    assert all(a.outcome != "succeeded" for a in report.actions)


TS = "airseal/tuf/metadata/timestamp.json"


# -- the happy path, distributor rotation, retirement, revocation ---------------------------------


def test_agent_follows_the_site_policy_through_retirement_and_revocation(
    lab: Lab, endpoint: AgentState, agent_signer: Signer
) -> None:
    assert lab.appliance.distributor_add("dist-a", name="Distributor A",
                                         may_sign=["exports", "actions"]).published
    first = lab.export("dist-a", lab.action("dist-a"))
    names = {p.name for p in (first / "airseal/tuf/metadata").iterdir()}
    assert names == {"1.root.json", "timestamp.json", "2.snapshot.json", "2.targets.json"}
    assert len(list((first / "airseal/tuf/targets/airseal").glob("*.policy.json"))) == 1
    report = run(endpoint, agent_signer, first)
    assert report.status == "completed", report.error and report.error.diagnostics()
    assert lab.dest.read_bytes() == lab.conf.read_bytes()
    lab.dest.unlink()

    lab.time = NOW + timedelta(minutes=5)
    assert lab.appliance.distributor_retire("dist-a").published
    assert lab.appliance.distributor_add("dist-b", name="Distributor B",
                                         may_sign=["exports", "actions"]).published
    second = lab.export("dist-b", lab.action("dist-b"))
    later = NOW + timedelta(minutes=10)
    report = run(endpoint, agent_signer, second, now=later)
    assert report.status == "completed", report.error and report.error.diagnostics()
    lab.dest.unlink()

    lab.time = NOW + timedelta(minutes=15)
    stale_signer = lab.export("dist-a", lab.action("dist-b"))
    report = run(endpoint, agent_signer, stale_signer, now=later + timedelta(minutes=10))
    refused(report, "airseal/export.sigstore.json", "trust", "retired", "Distributor A")
    assert not lab.dest.exists()

    lab.time = NOW + timedelta(minutes=20)
    assert lab.appliance.distributor_revoke("dist-a", reason="key leaked").published
    revoked = lab.export("dist-a", lab.action("dist-b"))
    report = run(endpoint, agent_signer, revoked, now=later + timedelta(minutes=20))
    refused(report, "airseal/export.sigstore.json", "trust", "revoked", "key leaked")
    assert not lab.dest.exists()
    listed = {d["name"]: d for d in lab.appliance.site_status().distributors}
    assert listed["Distributor A"]["revoked"]["reason"] == "key leaked"
    assert listed["Distributor B"]["status"] == "active"


@pytest.fixture
def published(lab: Lab) -> Lab:
    assert lab.appliance.distributor_add("dist-a", name="A", may_sign=["exports",
                                                                       "actions"]).published
    return lab


# -- TUF attack classes --------------------------------------------------------------------------


def test_arbitrary_software_policy_signed_by_a_key_outside_targets(
    published: Lab, endpoint: AgentState, agent_signer: Signer
) -> None:
    lab = published
    media = lab.export("dist-a", lab.action("dist-a"))
    path = next((media / "airseal/tuf/metadata").glob("*.targets.json"))
    md = Metadata[Targets].from_bytes(path.read_bytes())
    md.signed.targets["airseal/policy.json"].length += 0  # same bytes, other signer
    md.signatures.clear()
    lab.sign_as("dist-a")(md)  # an attacker holding only a distributor key
    path.write_bytes(md.to_bytes())
    report = run(endpoint, agent_signer, media)
    refused(report, f"airseal/tuf/metadata/{path.name}", "tuf-threshold", "threshold")
    assert not lab.dest.exists()


def test_changed_policy_bytes_are_refused_by_hash(
    published: Lab, endpoint: AgentState, agent_signer: Signer
) -> None:
    lab = published
    media = lab.export("dist-a", lab.action("dist-a"))
    policy = next((media / "airseal/tuf/targets/airseal").glob("*.policy.json"))
    data = json.loads(policy.read_bytes())
    data["actionThreshold"] = 1
    data["distributors"][0]["name"] = "Attacker"
    policy.write_bytes(json.dumps(data).encode())
    report = run(endpoint, agent_signer, media)
    refused(report, "airseal/tuf/targets/airseal/" + policy.name, "tuf-hash")


def test_rollback_to_older_metadata_is_refused(
    published: Lab, endpoint: AgentState, agent_signer: Signer
) -> None:
    lab = published
    action = lab.action("dist-a")
    old = lab.export("dist-a", action)
    new = lab.export("dist-a", action)
    assert run(endpoint, agent_signer, new).status == "completed"
    report = run(endpoint, agent_signer, old)
    refused(report, TS, "tuf-version", "rollback")


def test_indefinite_freeze_expired_timestamp_is_refused(
    published: Lab, endpoint: AgentState, agent_signer: Signer
) -> None:
    lab = published
    media = lab.export("dist-a", lab.action("dist-a"))
    report = run(endpoint, agent_signer, media, now=NOW + timedelta(days=31))
    refused(report, TS, "tuf-expiry", "expired")
    assert not lab.dest.exists()


def test_indefinite_freeze_with_the_endpoint_clock_set_back(
    published: Lab, endpoint: AgentState, agent_signer: Signer
) -> None:
    lab = published
    action = lab.action("dist-a")
    fresh = lab.export("dist-a", action)
    # a newer version made by an appliance whose clock was 40 days behind: expired NOW - 10d
    lab.time = NOW - timedelta(days=40)
    stale = lab.export("dist-a", action)
    assert run(endpoint, agent_signer, fresh).status == "completed"
    lab.dest.unlink()
    # the endpoint clock goes back 35 days: by its clock the stale medium would still be fresh
    report = run(endpoint, agent_signer, stale, now=NOW - timedelta(days=35))
    refused(report, TS, "tuf-expiry", "newest site timestamp seen here")
    assert not lab.dest.exists()


def test_fast_forward_recovery_after_the_online_key_is_replaced(
    published: Lab, endpoint: AgentState, agent_signer: Signer
) -> None:
    lab = published
    action = lab.action("dist-a")
    # an attacker with the online key K4 fast-forwards the timestamp to version 1000
    attack = lab.export("dist-a", action)
    ts_path = attack / TS
    md = Metadata.from_bytes(ts_path.read_bytes())
    md.signed.version = 1000
    md.signatures.clear()
    record = get_key(lab.appliance.db, "K4")
    with open_signer(lab.appliance.home, record, Prompter()) as signer:
        md.sign(TufSigner(signer))
    ts_path.write_bytes(md.to_bytes())
    run(endpoint, agent_signer, attack)  # refused later (digest), but TUF trusted it first
    assert status_json(endpoint.root)["timestamp"]["version"] == 1000  # type: ignore[index]
    # the site replaces the online key: root v2 names K6 for snapshot and timestamp
    assert lab.appliance.site_rotate_root(add=[], remove=[], threshold=None,
                                          online_key="K6").published
    recovered = lab.export("dist-a", action)
    report = run(endpoint, agent_signer, recovered)
    assert report.status == "completed", report.error and report.error.diagnostics()
    assert status_json(endpoint.root)["root"]["version"] == 2  # type: ignore[index]


def test_mix_and_match_snapshot_from_another_version_is_refused(
    published: Lab, endpoint: AgentState, agent_signer: Signer
) -> None:
    lab = published
    action = lab.action("dist-a")
    older = lab.export("dist-a", action)
    assert lab.appliance.distributor_add("dist-b", name="B", may_sign=["actions"]).published
    newer = lab.export("dist-a", action)
    old_targets = next((older / "airseal/tuf/metadata").glob("*.targets.json"))
    new_targets = next((newer / "airseal/tuf/metadata").glob("*.targets.json"))
    new_targets.write_bytes(old_targets.read_bytes())  # older targets under the newer name
    report = run(endpoint, agent_signer, newer)
    refused(report, f"airseal/tuf/metadata/{new_targets.name}", "tuf-version", "mix-and-match")


def test_endless_data_oversized_timestamp_is_refused(
    published: Lab, endpoint: AgentState, agent_signer: Signer
) -> None:
    lab = published
    media = lab.export("dist-a", lab.action("dist-a"))
    path = media / TS
    path.write_bytes(path.read_bytes() + b" " * 100_000)
    report = run(endpoint, agent_signer, media)
    refused(report, TS, "tuf-size")


def test_root_rotation_below_threshold_is_refused(
    published: Lab, endpoint: AgentState, agent_signer: Signer
) -> None:
    lab = published
    media = lab.export("dist-a", lab.action("dist-a"))
    md = Metadata[Root].from_bytes((media / "airseal/tuf/metadata/1.root.json").read_bytes())
    md.signed.version = 2
    md.signatures.clear()
    lab.sign_as("K1")(md)  # 1 of the 2 root signatures needed
    (media / "airseal/tuf/metadata/2.root.json").write_bytes(md.to_bytes())
    report = run(endpoint, agent_signer, media)
    refused(report, "airseal/tuf/metadata/2.root.json", "tuf-threshold")


def test_agent_several_root_versions_behind_walks_the_chain(
    published: Lab, endpoint: AgentState, agent_signer: Signer
) -> None:
    lab = published
    steps = [dict(add=["K5"], remove=["K3"]), dict(add=["K6"], remove=["K2"]),
             dict(add=[], remove=["K1"], threshold=2)]
    for step in steps:
        outcome = lab.appliance.site_rotate_root(threshold=step.get("threshold"),  # type: ignore[arg-type]
                                                 add=step["add"], remove=step["remove"])
        assert outcome.published, outcome.describe()
    media = lab.export("dist-a", lab.action("dist-a"))
    assert {p.name for p in (media / "airseal/tuf/metadata").glob("*.root.json")} == {
        "1.root.json", "2.root.json", "3.root.json", "4.root.json"}
    report = run(endpoint, agent_signer, media)
    assert report.status == "completed", report.error and report.error.diagnostics()
    assert status_json(endpoint.root)["root"]["version"] == 4  # type: ignore[index]


# -- the two-person rule ---------------------------------------------------------------------


def test_two_person_rule_counts_distinct_trusted_keys(
    lab: Lab, endpoint: AgentState, agent_signer: Signer
) -> None:
    for name in ("dist-a", "dist-b"):
        assert lab.appliance.distributor_add(name, name=name.upper(),
                                             may_sign=["exports", "actions"]).published
    assert lab.appliance.distributor_set_threshold(2).published
    action = lab.action("dist-a")

    one = lab.export("dist-a", action)
    report = run(endpoint, agent_signer, one)
    refused(report, f"airseal/actions/{action}/action.sigstore.json", "two-person", "1 of 2")
    assert not lab.dest.exists()

    # the same key twice counts once: an envelope carrying dist-a's signature twice (the
    # export statement re-signed by dist-a over it, as a dishonest distributor could)
    from airseal.appliance.errors import UsageError

    with pytest.raises(UsageError, match="already signed"):
        lab.appliance.approve_action(action, "dist-a")
    bundle = parse_bundle(lab.appliance.get_action(action).bundle.encode())
    assert bundle.dsse_envelope is not None
    doubled = bundle.dsse_envelope.model_copy(
        update={"signatures": [*bundle.dsse_envelope.signatures] * 2})
    twice = lab.export("dist-a", action)
    key_file = lab.appliance.home.keys_dir / "dist-a.key"
    dist_a = PrivateKeySigner(load_private_key(key_file.read_bytes(), PASSWORD.encode()))
    resign_export(twice, None, signer=dist_a,  # type: ignore[arg-type]
                  replace_files={f"actions/{action}/action.sigstore.json": bundle_to_json(
                      bundle.model_copy(update={"dsse_envelope": doubled}))})
    report = run(endpoint, agent_signer, twice)
    refused(report, f"airseal/actions/{action}/action.sigstore.json", "two-person", "1 of 2")
    # with a second distinct trusted key it runs
    lab.appliance.approve_action(action, "dist-b")
    both = lab.export("dist-a", action)
    report = run(endpoint, agent_signer, both)
    assert report.status == "completed", report.error and report.error.diagnostics()
    assert lab.dest.read_bytes() == lab.conf.read_bytes()


def test_media_without_a_site_repository_is_refused_in_site_mode(
    published: Lab, endpoint: AgentState, agent_signer: Signer
) -> None:
    lab = published
    media = lab.export("dist-a", lab.action("dist-a"))
    for path in sorted((media / "airseal/tuf").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (media / "airseal/tuf").rmdir()
    report = run(endpoint, agent_signer, media)
    refused(report, TS, "tuf-missing", "no site repository")
    assert not lab.dest.exists()


# -- the site's transparency log: its trusted root as a TUF target, proofs, witnesses ------------


def test_the_site_log_reaches_endpoints_through_tuf_and_witnesses_are_required(
    published: Lab, endpoint: AgentState, agent_signer: Signer, tmp_path: Path
) -> None:
    """`log init` on a site publishes the log's trusted_root.json as a target; the endpoint
    learns the log from it, requires the proofs, stores the checkpoint; once the policy names a
    witness, media without its cosignature is refused and media with it is accepted."""
    from airseal.agent.log_state import last_checkpoint
    from airseal.appliance.witness_station import WitnessStation
    from airseal.trustroot.site_policy import TRUSTED_ROOT_TARGET, LogPolicy
    from airseal.trustroot.tlog.cosignature import WitnessKey

    lab = published
    lab.appliance.generate_file_key("logkey")
    lab.appliance.log_init("logkey", origin="log.site.example")
    media = lab.export("dist-a", lab.action("dist-a"))
    assert (media / "airseal/log/checkpoint").is_file()
    assert list((media / "airseal/tuf/targets/airseal").glob("*.trusted_root.json"))
    report = run(endpoint, agent_signer, media)
    assert report.status == "completed", report.error and report.error.diagnostics()
    stored = last_checkpoint(endpoint.root)
    assert stored is not None and stored.origin == "log.site.example"
    # the endpoint keeps the tree ending at the export statement (the export's TUF timestamp
    # and the audit anchor are logged after it)
    statement = json.loads((media / "airseal/export.sigstore.json").read_text())
    entry = statement["verificationMaterial"]["tlogEntries"][0]
    assert stored.size == int(entry["logIndex"]) + 1 == lab.appliance.log_status().size - 2
    lab.dest.unlink()

    # a witness station on "another machine", named in the site policy with a quorum of 1
    station = WitnessStation(tmp_path / "witness", Prompter())
    log_pub = tmp_path / "log.pub"
    log_pub.write_text(lab.appliance.public_key_pem("logkey"))
    vkey = station.init("witness.site.example/w1", log_pub, "log.site.example").vkey
    from airseal.appliance.site import SiteRepository

    site = SiteRepository(lab.appliance.home, lab.appliance.db, Prompter())
    lab.time = NOW + timedelta(minutes=5)
    assert site.publish_log(now=lab.time, policy=LogPolicy(
        True, (WitnessKey.from_vkey(vkey),), 1)).published
    unwitnessed = lab.export("dist-a", lab.action("dist-a"))
    later = NOW + timedelta(minutes=10)
    refused(run(endpoint, agent_signer, unwitnessed, now=later), "airseal/log/checkpoint",
            "tlog.witness.quorum", "0 of the 1 witnesses")
    assert not lab.dest.exists()

    action = lab.action("dist-a")  # logged now: the witness must see the log after it
    request = tmp_path / "request"
    lab.appliance.log_witness_request(request)
    station.cosign(request, request / "checkpoint.cosigned", now=later)
    assert "witness.site.example/w1" in lab.appliance.log_witness_import(
        request / "checkpoint.cosigned")
    witnessed = lab.export("dist-a", action)
    report = run(endpoint, agent_signer, witnessed, now=later + timedelta(minutes=1))
    assert report.status == "completed", report.error and report.error.diagnostics()
    assert TRUSTED_ROOT_TARGET == "airseal/trusted_root.json"
