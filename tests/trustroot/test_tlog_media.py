"""Witness cosignatures (C2SP cosignature/v1) and the media proofs format, pure."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from airseal.trustroot.errors import LogProofError
from airseal.trustroot.site_policy import PolicyError, parse_policy
from airseal.trustroot.tlog import merkle
from airseal.trustroot.tlog.checkpoint import Checkpoint, SignedNote
from airseal.trustroot.tlog.cosignature import (
    WitnessKey,
    cosign,
    require_quorum,
    signed_message,
    verify_cosignatures,
)
from airseal.trustroot.tlog.media_proofs import MediaProofs, root_before_last_leaf

NOTE = (
    "log.site.example\n5\n" + base64.b64encode(b"\x01" * 32).decode()
    + "\n\n\u2014 log.site.example AAAAAAAA\n"
)


def witness(name: str = "witness.site.example/w1") -> tuple[WitnessKey, ed25519.Ed25519PrivateKey]:
    key = ed25519.Ed25519PrivateKey.generate()
    return WitnessKey(name, key.public_key().public_bytes_raw()), key


def test_cosignature_layout_follows_the_spec() -> None:
    w, key = witness()
    assert w.key_id == hashlib.sha256(w.name.encode() + b"\n\x04" + w.public_key).digest()[:4]
    assert WitnessKey.from_vkey(w.vkey()) == w
    body = SignedNote.parse(NOTE).body
    assert signed_message(body, 1679315147) == b"cosignature/v1\ntime 1679315147\n" + body.encode()
    text = cosign(NOTE, w, key.sign, timestamp=1679315147)
    line = SignedNote.parse(text).signatures[-1]
    assert (line.name, line.key_hint) == (w.name, w.key_id)
    assert int.from_bytes(line.signature[:8], "big") == 1679315147 and len(line.signature) == 72
    [found] = verify_cosignatures(text, [w])
    assert found.timestamp == 1679315147
    assert cosign(text, w, key.sign, timestamp=1679315200).count(w.name) == 1  # replaced


def test_quorum_counts_distinct_valid_witnesses_and_fails_closed() -> None:
    (a, ka), (b, _) = witness("w.example/a"), witness("w.example/b")
    one = cosign(NOTE, a, ka.sign, timestamp=1)
    assert len(require_quorum(one, [a, b], 1)) == 1
    with pytest.raises(LogProofError) as missing:
        require_quorum(one, [a, b], 2)
    assert missing.value.check == "tlog.witness.quorum" and "w.example/a" in missing.value.detail
    with pytest.raises(LogProofError) as none:
        require_quorum(NOTE, [a], 0)  # a quorum of 0 is no policy
    assert none.value.check == "tlog.witness.policy"
    forged = one.replace(one.splitlines()[-1][-8:], "AAAAAAAA")
    with pytest.raises(LogProofError) as bad:
        verify_cosignatures(forged, [a])
    assert bad.value.check == "tlog.witness.signature"
    for vkey in ("a+00+AA==", "nokey", f"{a.name}+00000000+{a.vkey().split('+')[2]}"):
        with pytest.raises(ValueError, match="vkey"):
            WitnessKey.from_vkey(vkey)


def test_the_policy_names_witnesses_and_a_quorum() -> None:
    (a, _), (b, _) = witness("w.example/a"), witness("w.example/b")
    base = {"schemaVersion": 1, "type": "airseal-distributor-policy", "distributors": []}
    ok = parse_policy(json.dumps({**base, "log": {
        "required": True, "witnesses": [a.vkey(), b.vkey()], "witnessQuorum": 2}}).encode())
    assert ok.log is not None and ok.log.witness_quorum == 2 and ok.log.witnesses == (a, b)
    assert parse_policy(ok.to_bytes()) == ok
    for bad in ({"witnesses": [a.vkey()], "witnessQuorum": 0},
                {"witnesses": [a.vkey()], "witnessQuorum": 2},
                {"required": False, "witnesses": [a.vkey()], "witnessQuorum": 1},
                {"witnesses": [a.vkey(), a.vkey()], "witnessQuorum": 1},
                {"required": "yes"}, {"unknown": 1}):
        with pytest.raises(PolicyError):
            parse_policy(json.dumps({**base, "log": bad}).encode())


def test_the_last_leafs_path_is_the_tree_before_it() -> None:
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(70)]

    def node(level: int, index: int) -> bytes:
        return merkle.root_of_leaf_hashes(leaves[index << level : (index + 1) << level])

    for n in range(70):
        path = merkle.inclusion_proof(n, n + 1, node)
        assert root_before_last_leaf(n, path) == merkle.root_of_leaf_hashes(leaves[:n])


def test_media_proofs_round_trip_and_refuse_hostile_files() -> None:
    from airseal.trustroot.tlog.media_proofs import CarriedEntry

    h = [hashlib.sha256(bytes([i])).digest() for i in range(4)]
    carried = (CarriedEntry("actions/a/action.sigstore.json", 0, 1),
               CarriedEntry("actions/b/action.sigstore.json", 1, 2, body=b'{"kind":"dsse"}'))
    proofs = MediaProofs("log.site.example", 9, (3, 5), carried, (h[1], h[2], h[3]), h[0])
    data, hashes = proofs.to_bytes(), proofs.hashes_bytes()
    assert hashes == h[1] + h[2] + h[3]  # raw, in the order they are used
    assert json.loads(data)["hashCount"] == 3
    assert "body" not in json.loads(data)["entries"][0]  # canonical: rebuilt by the endpoint
    assert MediaProofs.parse(data, hashes, subject="p") == proofs
    for cut in (hashes[:-1], hashes + b"\0" * 32, b""):  # truncated, extended, missing
        with pytest.raises(LogProofError) as refused:
            MediaProofs.parse(data, cut, subject="airseal/log/proofs.json",
                              hashes_subject="airseal/log/hashes")
        assert (refused.value.subject, refused.value.check) == ("airseal/log/hashes",
                                                                "tlog.proofs")
    doc = json.loads(data)
    for edit in (lambda d: d.update(extra=1), lambda d: d.update(hashCount=4),
                 lambda d: d.update(treeSize=-1), lambda d: d.update(schemaVersion=2),
                 lambda d: d.update(earlierSizes=[5, 3]), lambda d: d.update(earlierSizes=[3, 3]),
                 lambda d: d.update(earlierSizes=[9]), lambda d: d.update(earlierSizes=[0]),
                 lambda d: d["entries"][1].update(logIndex=1),  # one leaf, two entries
                 lambda d: d["entries"][1].update(bundle=d["entries"][0]["bundle"], signature=0),
                 lambda d: d["entries"][0].update(body="!"),
                 lambda d: d["entries"][0].update(integratedTime=1),
                 lambda d: d.update(logId="")):
        bad = json.loads(json.dumps(doc))
        edit(bad)
        with pytest.raises(LogProofError) as refused:
            MediaProofs.parse(json.dumps(bad).encode(), hashes, subject="airseal/log/proofs.json")
        assert refused.value.subject == "airseal/log/proofs.json"
        assert refused.value.check == "tlog.proofs"


def test_one_proof_of_many_leaves_and_sizes_matches_the_rfc_proofs() -> None:
    """The combined proof (ours) against brute force and RFC 9162's one-leaf and one-size
    proofs: every small tree, several leaf and earlier-size sets. It never holds more hashes
    than those proofs together, holds no hash twice, gives the root and every earlier root; an
    altered, missing or extra hash or a moved leaf gives another root or a refusal, and no
    reading of it gives a false earlier root beside the true root."""
    import random

    rng = random.Random(5)
    leaves = [merkle.leaf_hash(b"%d" % i) for i in range(40)]

    def node(level: int, index: int) -> bytes:
        return merkle.root_of_leaf_hashes(leaves[index << level : (index + 1) << level])

    def roots(given: dict[int, bytes], sizes: list[int], size: int,
              proof: list[bytes]) -> tuple[bytes, dict[int, bytes]]:
        return merkle.roots_from_multi_proof(given, sizes, size, proof)

    for size in range(1, 40):
        root = merkle.root_of_leaf_hashes(leaves[:size])
        for _ in range(6):
            chosen = rng.sample(range(size), rng.randint(0, min(size, 6)))
            sizes = rng.sample(range(1, size), rng.randint(0, min(size - 1, 4)))
            if not chosen and not sizes:
                continue
            proof = merkle.multi_proof(chosen, sizes, size, node)
            given = {i: leaves[i] for i in chosen}
            got, earlier = roots(given, sizes, size, proof)
            assert got == root
            assert earlier == {m: merkle.root_of_leaf_hashes(leaves[:m]) for m in sizes}
            assert len(set(proof)) == len(proof)
            assert len(proof) <= (sum(len(merkle.inclusion_proof(i, size, node)) for i in chosen)
                                  + sum(len(merkle.consistency_proof(m, size, node))
                                        for m in sizes) + 1)
            if proof:
                bent = [*proof[:-1], b"\x00" * 32]
                with contextlib.suppress(LogProofError):
                    assert roots(given, sizes, size, bent) != (root, earlier)
                with pytest.raises(LogProofError):
                    roots(given, sizes, size, proof[:-1])
            with pytest.raises(LogProofError):
                roots(given, sizes, size, [*proof, leaves[0]])
            moved = {(i + 1) % size: h for i, h in given.items()}
            if len(moved) == len(given) and set(moved) != set(given):
                with contextlib.suppress(LogProofError):  # a shape that does not fit: refused
                    assert roots(moved, sizes, size, proof)[0] != root
            # sound: read with other sizes, it is refused or gives another root, or every
            # earlier root it gives is the true one (a hash that matches binds the subtrees)
            shifted = sorted({m % (size - 1) + 1 for m in sizes}) if size > 1 else []
            with contextlib.suppress(LogProofError):
                got, earlier = roots(given, shifted, size, proof)
                assert got != root or earlier == {
                    m: merkle.root_of_leaf_hashes(leaves[:m]) for m in shifted}


def test_a_consistency_proof_that_does_not_hold_is_a_fork(tmp_path) -> None:
    """The endpoint stored a checkpoint at a size an export ended on, with another root: the
    media's proof from that size fails, and the refusal names both checkpoints."""
    from airseal.trustroot.tlog.media_proofs import (
        BundleEntries,
        entries_of_bundle,
        verify_media_log,
    )
    from tests.agent.helpers import new_distributor
    from tests.agent.log_media import new_site_log

    site = new_site_log()
    dist = new_distributor(tmp_path)
    statement_bundle = dist.sign  # a DSSE bundle per call
    from airseal.trustroot.dsse import Statement, Subject

    def bundle(i: int) -> bytes:
        st = Statement(subject=(Subject(name=f"f{i}", digest={"sha256": "00" * 32}),),
                       predicateType="https://example/p", predicate={"i": i})
        return site.logged(statement_bundle(st), dist.signer.public_key, f"export statement {i}")

    bundle(0)
    bundle(1)  # an export ended at size 2
    files = site.files([])
    export = bundle(2)
    trust = site.trust
    entries = entries_of_bundle(json.loads(export), trust.log_id, subject="export")
    kwargs = dict(checkpoint_note=files.checkpoint.decode(),
                  proofs=MediaProofs.parse(files.proofs, files.hashes, subject="p"), export=entries,
                  actions=[])
    assert verify_media_log(trust, None, **kwargs).final.size == 3  # type: ignore[arg-type]
    seen = Checkpoint(site.origin, 1, b"\x09" * 32)
    with pytest.raises(LogProofError) as fork:
        verify_media_log(trust, seen, **kwargs)  # type: ignore[arg-type]
    assert fork.value.check == "tlog.fork" and seen.describe() in fork.value.detail
    assert isinstance(entries, BundleEntries)


def test_only_logged_signatures_count_toward_the_action_threshold(tmp_path) -> None:
    """An action signed by two trusted keys, each signature logged as its own dsse entry (as
    the appliance logs approvals): a threshold of 2 holds; with the approval unlogged, the same
    two signatures are refused (only logged ones count)."""
    from datetime import UTC, datetime

    from airseal.appliance.tlog_store import (
        adding_tlog_entry,
        entry_for_bundle,
        media_log_files,
        one_signature_bundle,
    )
    from airseal.trustroot.dsse import IN_TOTO_PAYLOAD_TYPE, Statement, Subject, pae
    from airseal.trustroot.tlog.media_proofs import (
        entries_of_bundle,
        media_bundle,
        verify_media_log,
    )
    from tests.agent.helpers import new_distributor
    from tests.agent.log_media import new_site_log

    first, second = new_distributor(tmp_path, "first"), new_distributor(tmp_path, "second")
    statement = Statement(subject=(Subject(name="p", digest={"sha256": "00" * 32}),),
                          predicateType="https://example/action", predicate={"id": "a"})
    data = json.loads(first.sign(statement))
    envelope = data["dsseEnvelope"]
    signed = pae(IN_TOTO_PAYLOAD_TYPE, base64.b64decode(envelope["payload"]))
    envelope["signatures"].append(
        {**envelope["signatures"][0],
         "sig": base64.b64encode(second.signer.sign_message(signed)).decode()})
    two = json.dumps(data).encode()
    keys = [first.signer.public_key, second.signer.public_key]

    def verify(logged: list[int]) -> None:
        site = new_site_log()
        bundle = two
        for i in logged:
            entry = entry_for_bundle(one_signature_bundle(two, i), keys[i], f"signature {i}")
            (index,), _ = site.log.append([entry], site.signer, now=datetime.now(UTC))
            bundle = adding_tlog_entry(bundle, site.log.entry(index))
        path = "actions/a/action.sigstore.json"
        files = media_log_files(site.log, [("action a", path, bundle)])
        assert json.loads(files.bundles[0])["verificationMaterial"]["tlogEntries"] == []
        export = site.logged(first.sign(statement), first.signer.public_key, "export statement")
        verify_media_log(
            site.trust, None, checkpoint_note=files.checkpoint.decode(),
            proofs=MediaProofs.parse(files.proofs, files.hashes, subject="p"),
            export=entries_of_bundle(json.loads(export), site.trust.log_id, subject="export"),
            actions=[media_bundle(json.loads(files.bundles[0]), keys, path=path, subject=path)],
            threshold=2)

    verify([0, 1])
    with pytest.raises(LogProofError) as short:
        verify([0])
    assert short.value.check == "tlog.entry" and "1 distinct trusted keys" in short.value.detail
    assert short.value.subject == "actions/a/action.sigstore.json"
