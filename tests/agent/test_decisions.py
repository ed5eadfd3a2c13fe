"""The pure core: trust decisions, freshness, sequence, conditions and the plan (no I/O)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from airseal.agent.conditions import HostFacts, condition_problem, window_problem
from airseal.agent.errors import (
    ActionStatementMismatch,
    DistributorMismatch,
    ExpiredMedia,
    MediaFromTheFuture,
    NotEnrolled,
    ReplayedMedia,
    UntrustedDistributor,
)
from airseal.agent.journal import RunHistory, RunKey
from airseal.agent.plan import plan_actions, segments
from airseal.agent.trust import PinnedKeyTrust, TrustedKey, hint_to_fingerprint, parse_purposes
from airseal.agent.verification import (
    SequenceRecord,
    VerifiedAction,
    check_sequence,
    verify_action_bundle,
    verify_export_bundle,
)
from airseal.media import layout
from airseal.media.errors import MediaDigestMismatch
from airseal.media.statement import ActionPredicate, ExportedAction, PayloadRef
from airseal.trustroot.errors import InvalidSignature
from airseal.trustroot.keys import key_hint

from .helpers import (
    ActionBuild,
    Distributor,
    new_distributor,
    predicate_for,
    resign_export,
    sign_action,
    utcnow,
    write_media,
)


def trusted(d: Distributor, name: str = "Site", purposes=("exports", "actions")) -> TrustedKey:
    return TrustedKey(d.fingerprint, name, d.signer.public_key, frozenset(purposes), "pinned")


@pytest.fixture
def media(tmp_path: Path, distributor: Distributor):
    payload = tmp_path / "p.bin"
    payload.write_bytes(b"payload")
    action = sign_action(ActionBuild("a1", payload, dest="/opt/p.bin"), distributor)
    mount = write_media(tmp_path / "usb", distributor, [action], export_id="e1", sequence=5)
    data = (mount / "airseal/export.sigstore.json").read_bytes()
    return mount, data


def test_empty_trust_is_an_error_not_a_pass():
    with pytest.raises(NotEnrolled):
        PinnedKeyTrust([])


def test_trust_answers_only_for_allowed_purposes(distributor):
    trust = PinnedKeyTrust([trusted(distributor, purposes=("actions",))])
    assert trust.key(distributor.fingerprint, "actions") is not None
    assert trust.key(distributor.fingerprint, "exports") is None
    assert trust.keys("exports") == ()
    assert hint_to_fingerprint(key_hint(distributor.signer.public_key)) == distributor.fingerprint
    assert hint_to_fingerprint("not base64!") is None
    assert parse_purposes("both") == frozenset({"exports", "actions"})
    with pytest.raises(ValueError, match="neither"):
        parse_purposes("neither")


def test_export_verifies_with_its_distributor(media, distributor):
    _mount, data = media
    export = verify_export_bundle(
        data, PinnedKeyTrust([trusted(distributor)]), now=utcnow(), subject="s"
    )
    assert export.export_id == "e1" and export.sequence == 5
    assert export.bundle_sha256 == hashlib.sha256(data).hexdigest()


def test_unknown_distributor_is_named_by_fingerprint(media, distributor, tmp_path):
    _mount, data = media
    other = new_distributor(tmp_path / "other")
    with pytest.raises(UntrustedDistributor) as caught:
        verify_export_bundle(data, PinnedKeyTrust([trusted(other)]), now=utcnow(), subject="s")
    assert distributor.fingerprint in caught.value.detail and caught.value.subject == "s"
    # a key trusted for actions only may not sign exports
    with pytest.raises(UntrustedDistributor):
        verify_export_bundle(
            data,
            PinnedKeyTrust([trusted(distributor, purposes=("actions",))]),
            now=utcnow(),
            subject="s",
        )


def test_statement_must_name_its_signer(media, distributor, tmp_path):
    mount, _ = media
    resign_export(mount, distributor, edit_predicate=lambda p: p.update(distributor="0" * 64))
    data = (mount / "airseal/export.sigstore.json").read_bytes()
    with pytest.raises(DistributorMismatch):
        verify_export_bundle(
            data, PinnedKeyTrust([trusted(distributor)]), now=utcnow(), subject="s"
        )


def test_forged_signature(media, distributor, tmp_path):
    mount, _ = media
    impostor = new_distributor(tmp_path / "impostor")
    # signed by another key but claiming the trusted key's hint
    resign_export(mount, distributor, signer=impostor.signer)
    data = (mount / "airseal/export.sigstore.json").read_bytes()
    forged = data.replace(
        key_hint(impostor.signer.public_key).encode(),
        key_hint(distributor.signer.public_key).encode(),
    )
    with pytest.raises(InvalidSignature):
        verify_export_bundle(
            forged, PinnedKeyTrust([trusted(distributor)]), now=utcnow(), subject="s"
        )


def test_freshness(media, distributor):
    _mount, data = media
    trust = PinnedKeyTrust([trusted(distributor)])
    with pytest.raises(ExpiredMedia):
        verify_export_bundle(data, trust, now=utcnow() + timedelta(days=15), subject="s")
    with pytest.raises(MediaFromTheFuture):
        verify_export_bundle(data, trust, now=utcnow() - timedelta(days=2), subject="s")


def test_sequence(media, distributor):
    _mount, data = media
    export = verify_export_bundle(
        data, PinnedKeyTrust([trusted(distributor)]), now=utcnow(), subject="s"
    )
    assert check_sequence(export, None) == "new"
    assert check_sequence(export, SequenceRecord(4, "e0", "x")) == "new"
    assert check_sequence(export, SequenceRecord(5, "e1", export.bundle_sha256)) == "repeat"
    with pytest.raises(ReplayedMedia, match="already used"):
        check_sequence(export, SequenceRecord(5, "other", "y"))
    with pytest.raises(ReplayedMedia, match="already accepted"):
        check_sequence(export, SequenceRecord(6, "e2", "z"))


def test_sequence_identifies_an_export_by_its_signed_statement(media, distributor):
    _mount, data = media
    export = verify_export_bundle(
        data, PinnedKeyTrust([trusted(distributor)]), now=utcnow(), subject="s"
    )
    reencoded = SequenceRecord(5, "e1", "f" * 64, export.statement_sha256)
    assert check_sequence(export, reencoded) == "repeat"
    other = SequenceRecord(5, "e1", export.bundle_sha256, "0" * 64)
    with pytest.raises(ReplayedMedia, match="different signed statement"):
        check_sequence(export, other)


def test_action_must_match_listing(media, distributor, tmp_path):
    mount, data = media
    trust = PinnedKeyTrust([trusted(distributor)])
    export = verify_export_bundle(data, trust, now=utcnow(), subject="s")
    listed = export.contents.predicate.actions[0]
    bundle_path = listed.bundle
    bundle = (mount / "airseal" / bundle_path).read_bytes()
    digest = export.contents.by_path()[bundle_path].sha256
    action = verify_action_bundle(bundle, listed, digest, trust, subject="b")
    assert action.id == "a1" and action.signer.fingerprint == distributor.fingerprint
    with pytest.raises(MediaDigestMismatch):
        verify_action_bundle(bundle + b" ", listed, digest, trust, subject="b")
    wrong = ExportedAction(
        id="a1",
        version=2,
        name=listed.name,
        bundle=listed.bundle,
        payload=PayloadRef(name="p.bin", sha256=listed.payload.sha256, size=listed.payload.size),
    )
    with pytest.raises(ActionStatementMismatch, match="version"):
        verify_action_bundle(bundle, wrong, digest, trust, subject="b")
    with pytest.raises(UntrustedDistributor):
        verify_action_bundle(
            bundle,
            listed,
            digest,
            PinnedKeyTrust([trusted(distributor, purposes=("exports",))]),
            subject="b",
        )


# -- conditions and plan --------------------------------------------------------------------------


def host(existing=(), groups=(), hostname="ws-042.site", os_name="linux") -> HostFacts:
    return HostFacts(os_name, hostname, frozenset(groups), lambda p: p in existing)


def predicate(tmp_path, distributor, **fields):
    payload = tmp_path / "p.bin"
    payload.write_bytes(b"x")
    build = ActionBuild("a1", payload, dest="/opt/x", **fields)
    p = ActionPredicate.model_validate(predicate_for(build))
    listed = ExportedAction(
        id=p.id,
        version=p.version,
        name=p.name,
        bundle=layout.action_bundle_path(p.id),
        payload=PayloadRef(name=p.payload.name, sha256=p.payload.sha256, size=p.payload.size),
    )
    return VerifiedAction(
        listed, p, trusted(distributor), "airseal/actions/a1/action.sigstore.json"
    )


def test_conditions(tmp_path, distributor):
    now = utcnow()
    a = predicate(
        tmp_path,
        distributor,
        conditions={
            "host": "WS-*",
            "group": "lab",
            "if_missing": ("/opt/x",),
            "if_exists": ("/etc",),
        },
    ).predicate
    assert condition_problem(a, host(existing={"/etc"}, groups={"lab"})) is None
    assert "does not match" in condition_problem(a, host(hostname="srv1", groups={"lab"}))
    assert "group 'lab'" in condition_problem(a, host(existing={"/etc"}))
    assert "exists" in condition_problem(a, host(existing={"/etc", "/opt/x"}, groups={"lab"}))
    assert "does not exist" in condition_problem(a, host(groups={"lab"}))
    assert window_problem(a, now) is None
    assert "expired" in window_problem(a, now + timedelta(days=31))
    assert "valid only from" in window_problem(a, now - timedelta(days=1))


def test_plan_order_and_idempotence(tmp_path, distributor):
    now = utcnow()
    action = predicate(tmp_path, distributor)
    key = RunKey("a1", 1, action.predicate.payload.sha256)
    empty = RunHistory(frozenset(), {})
    (run,) = plan_actions([action], host(), now=now, history=empty)
    assert run.decision == "run"
    (done,) = plan_actions([action], host(), now=now, history=RunHistory(frozenset({key}), {}))
    assert done.decision == "already-done"
    (wrong_os,) = plan_actions([action], host(os_name="windows"), now=now, history=empty)
    assert wrong_os.decision == "skipped" and "for linux" in wrong_os.reason
    # an interrupted download is retried; an interrupted execute is not, unless asked
    crashed = RunHistory(frozenset(), {key: "2025-01-01"})
    (download,) = plan_actions([action], host(), now=now, history=crashed)
    assert download.decision == "run"
    execute = predicate(tmp_path, distributor, mode="execute")
    ekey = RunKey("a1", 1, execute.predicate.payload.sha256)
    crashed = RunHistory(frozenset(), {ekey: "2025-01-01"})
    (held,) = plan_actions([execute], host(), now=now, history=crashed)
    assert held.decision == "interrupted" and "--retry-interrupted" in held.reason
    (retried,) = plan_actions([execute], host(), now=now, history=crashed, retry_interrupted=True)
    assert retried.decision == "run"


def test_plan_retry_policy_for_failed_executes(tmp_path, distributor):
    now = utcnow()
    execute = predicate(tmp_path, distributor, mode="execute")
    key = RunKey("a1", 1, execute.predicate.payload.sha256)
    failed_once = RunHistory(frozenset(), {}, {key: 1})
    (held,) = plan_actions([execute], host(), now=now, history=failed_once)
    assert held.decision == "not-retried" and not held.runs
    assert "failed once before, not retried: retry policy 0" in held.reason
    (again,) = plan_actions([execute], host(), now=now, history=failed_once, execute_retries=1)
    assert again.decision == "run"
    failed_twice = RunHistory(frozenset(), {}, {key: 2})
    (held,) = plan_actions([execute], host(), now=now, history=failed_twice, execute_retries=1)
    assert held.decision == "not-retried" and "failed 2 times before" in held.reason
    # a download that failed (a full disk, a missing account) is placed again: it is harmless
    download = predicate(tmp_path, distributor)
    dkey = RunKey("a1", 1, download.predicate.payload.sha256)
    (placed,) = plan_actions(
        [download], host(), now=now, history=RunHistory(frozenset(), {}, {dkey: 3})
    )
    assert placed.decision == "run"


def test_segments_group_consecutive_downloads(tmp_path, distributor):
    d = predicate(tmp_path, distributor)
    e = predicate(tmp_path, distributor, mode="execute")
    plan = plan_actions([d, d, e, d], host(), now=utcnow(), history=RunHistory(frozenset(), {}))
    groups = segments(plan)
    assert [len(g) for g in groups] == [2, 1, 1]
    assert [g[0].action.predicate.mode for g in groups] == ["download", "execute", "download"]
