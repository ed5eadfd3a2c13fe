"""Rekor v1 REST shapes: LogEntry both ways, proposed hashedrekord checks, answer verification."""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from airseal.trustroot.errors import LogProofError
from airseal.trustroot.keys import spki_pem
from airseal.trustroot.signer import PrivateKeySigner
from airseal.trustroot.tlog import entries, merkle, rekor_api
from airseal.trustroot.tlog.checkpoint import Checkpoint, sign_checkpoint

LOG = PrivateKeySigner(ec.derive_private_key(0x10_6_5E_1F, ec.SECP256R1()))
SIGNER = PrivateKeySigner(ec.derive_private_key(0x51_6E_4, ec.SECP256R1()))
DIGEST = hashlib.sha256(b"payload").digest()


def _logged(origin: str = "rekor.site.example - 42", name: str = "rekor.site.example",
            index: int = 7, others: int = 2) -> tuple[entries.TlogEntry, entries.SignedContent]:
    """A signature logged as leaf ``others`` of a small tree, with a Rekor-style checkpoint."""
    signature = SIGNER.sign_digest(DIGEST)
    body = entries.hashedrekord_body(DIGEST, signature, SIGNER.public_key)
    leaves = [merkle.leaf_hash(f"o{i}".encode()) for i in range(others)] + [merkle.leaf_hash(body)]
    leaves.append(merkle.leaf_hash(b"after"))

    def node(level: int, i: int) -> bytes:
        return merkle.root_of_leaf_hashes(leaves[i << level : (i + 1) << level])

    size = len(leaves)
    root = merkle.root_hash(size, node)
    note = sign_checkpoint(Checkpoint(origin, size, root), name=name, signer=LOG)
    entry = entries.TlogEntry(
        log_index=index, log_id=entries.log_id(LOG.public_key), kind="hashedrekord",
        version="0.0.1", integrated_time=1_700_000_000, body=body,
        set=entries.sign_set(LOG, body, 1_700_000_000, index),
        proof=entries.InclusionProof(
            others, size, root, tuple(merkle.inclusion_proof(others, size, node)), note
        ),
    )
    return entry, entries.SignedContent(signature, DIGEST)


def test_log_entry_json_round_trips_and_verifies() -> None:
    entry, signed = _logged()
    data = rekor_api.log_entry_json(entry)
    ((uuid, value),) = data.items()
    assert uuid == merkle.leaf_hash(entry.body).hex()
    assert value["verification"]["inclusionProof"]["rootHash"] == entry.proof.root_hash.hex()
    assert rekor_api.parse_log_entry(json.loads(json.dumps(data))) == entry
    point = rekor_api.verify_rekor_entry(entry, log_key=LOG.public_key, name=None, signed=signed)
    assert point.origin == "rekor.site.example - 42"
    assert rekor_api.verify_rekor_entry(
        entry, log_key=LOG.public_key, name="rekor.site.example", signed=signed
    ).size == 4
    # An 80-hex UUID (tree id in front) names the same entry.
    assert rekor_api.leaf_of_uuid("00000000000000ff" + uuid) == bytes.fromhex(uuid)


@functools.cache
def _base() -> tuple[entries.TlogEntry, entries.SignedContent]:
    return _logged()


def _tampered(path: list, value: object) -> tuple[dict, entries.SignedContent]:
    entry, signed = _base()
    data = rekor_api.log_entry_json(entry)
    target = next(iter(data.values()))
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data, signed


@pytest.mark.parametrize(
    ("path", "value", "check"),
    [
        (["logIndex"], 8, "tlog.set"),
        (["integratedTime"], 1_700_000_001, "tlog.set"),
        (["verification", "signedEntryTimestamp"], base64.b64encode(b"0" * 70).decode(),
         "tlog.set"),
        (["verification", "inclusionProof", "hashes", 0], "00" * 32, "tlog.inclusion"),
        (["verification", "inclusionProof", "logIndex"], 1, "tlog.inclusion"),
        (["logID"], "11" * 32, "tlog.logid"),
    ],
)
def test_any_altered_field_is_refused(path: list, value: object, check: str) -> None:
    data, signed = _tampered(path, value)
    entry = rekor_api.parse_log_entry(data)
    with pytest.raises(LogProofError) as caught:
        rekor_api.verify_rekor_entry(entry, log_key=LOG.public_key, name=None, signed=signed)
    assert caught.value.check == check


def test_a_body_about_another_signature_or_another_log_name_is_refused() -> None:
    entry, signed = _logged()
    other = entries.SignedContent(SIGNER.sign_digest(DIGEST), DIGEST)
    with pytest.raises(LogProofError, match="different signature"):
        rekor_api.verify_rekor_entry(entry, log_key=LOG.public_key, name=None, signed=other)
    with pytest.raises(LogProofError, match=r"no signature by 'rekor\.other\.example'"):
        rekor_api.verify_rekor_entry(
            entry, log_key=LOG.public_key, name="rekor.other.example", signed=signed
        )
    stranger, stranger_signed = _logged(origin="another.example - 42")
    with pytest.raises(LogProofError, match=r"not 'rekor\.site\.example'") as caught:
        rekor_api.verify_rekor_entry(
            stranger, log_key=LOG.public_key, name=None, signed=stranger_signed
        )
    assert caught.value.check == "tlog.checkpoint.origin"
    with pytest.raises(LogProofError) as wrong_key:
        rekor_api.verify_rekor_entry(entry, log_key=SIGNER.public_key, name=None, signed=signed)
    assert wrong_key.value.check == "tlog.logid"


@pytest.mark.parametrize(
    "data",
    [
        [], {"a": 1, "b": 2}, {"x": "not an object"},
        {"00" * 100: {"body": "e30="}},  # not a UUID
        {merkle.leaf_hash(b"{}").hex(): {"body": "e30="}},  # no kind, no verification
    ],
)
def test_malformed_answers_are_refused(data: object) -> None:
    with pytest.raises(LogProofError):
        rekor_api.parse_log_entry(data)


def test_accept_hashedrekord_verifies_the_signature_over_the_digest() -> None:
    signature = SIGNER.sign_digest(DIGEST)
    proposed = rekor_api.proposed_hashedrekord(DIGEST, signature, SIGNER.public_key)
    assert rekor_api.accept_hashedrekord(proposed) == entries.hashedrekord_body(
        DIGEST, signature, SIGNER.public_key
    )
    forged = copy.deepcopy(proposed)
    forged["spec"]["data"]["hash"]["value"] = hashlib.sha256(b"other").hexdigest()
    with pytest.raises(LogProofError, match="does not verify"):
        rekor_api.accept_hashedrekord(forged)
    ed = ed25519.Ed25519PrivateKey.generate()
    edkey = copy.deepcopy(proposed)
    edkey["spec"]["signature"]["publicKey"]["content"] = base64.b64encode(
        spki_pem(ed.public_key())
    ).decode()
    with pytest.raises(LogProofError, match="Ed25519"):
        rekor_api.accept_hashedrekord(edkey)
    for bad in ({"kind": "rekord", "apiVersion": "0.0.1"}, {"kind": "hashedrekord",
                "apiVersion": "0.0.1", "spec": {}}, "x"):
        with pytest.raises(LogProofError):
            rekor_api.accept_hashedrekord(bad)


def _dsse_proposal(payload: bytes = b'{"_type":"x"}') -> dict:
    from airseal.trustroot.dsse import pae

    kind = "application/vnd.in-toto+json"
    envelope = {"payload": base64.b64encode(payload).decode(), "payloadType": kind,
                "signatures": [{"sig": base64.b64encode(
                    SIGNER.sign_message(pae(kind, payload))).decode(), "keyid": ""}]}
    return rekor_api.proposed_dsse(json.dumps(envelope).encode(), SIGNER.public_key)


def test_accept_dsse_verifies_the_envelope_signature() -> None:
    proposed = _dsse_proposal()
    kind, body = rekor_api.accept_proposed(proposed)
    spec = json.loads(body)["spec"]
    assert kind == "dsse"
    assert spec["payloadHash"]["value"] == hashlib.sha256(b'{"_type":"x"}').hexdigest()
    envelope = json.loads(proposed["spec"]["proposedContent"]["envelope"])
    envelope["payload"] = base64.b64encode(b'{"_type":"y"}').decode()
    forged = copy.deepcopy(proposed)
    forged["spec"]["proposedContent"]["envelope"] = json.dumps(envelope)
    with pytest.raises(LogProofError, match="DSSE signature does not verify"):
        rekor_api.accept_proposed(forged)
    envelope["signatures"] *= 2
    forged["spec"]["proposedContent"]["envelope"] = json.dumps(envelope)
    with pytest.raises(LogProofError, match="exactly one signature"):
        rekor_api.accept_proposed(forged)
    forged["spec"]["proposedContent"] = {"envelope": "{not json"}
    with pytest.raises(LogProofError, match="proposedContent"):
        rekor_api.accept_proposed(forged)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)
_FIELDS = [["body"], ["integratedTime"], ["logID"], ["logIndex"], ["verification"],
           ["verification", "signedEntryTimestamp"], ["verification", "inclusionProof"],
           ["verification", "inclusionProof", "hashes"],
           ["verification", "inclusionProof", "checkpoint"],
           ["verification", "inclusionProof", "treeSize"]]


@settings(max_examples=150, deadline=None)
@given(field=st.sampled_from(_FIELDS), value=_JSON)
def test_any_hostile_answer_ends_in_a_typed_refusal(field: list[str], value: object) -> None:
    """A Rekor answer with any field replaced by any JSON value: accepted only if unchanged in
    meaning, otherwise a LogProofError; never another exception."""
    data, signed = _tampered(field, value)
    try:
        entry = rekor_api.parse_log_entry(data)
        rekor_api.verify_rekor_entry(entry, log_key=LOG.public_key, name=None, signed=signed)
    except LogProofError:
        pass


def test_non_ascii_where_base64_is_expected_is_a_typed_refusal() -> None:
    """base64 decoding a non-ASCII str raises ValueError, not binascii.Error: found by the test
    above; checkpoints and bundle entries (both read from media) must refuse it as a proof error."""
    from airseal.trustroot.tlog.checkpoint import Checkpoint, SignedNote

    with pytest.raises(LogProofError, match="root hash is not base64"):
        Checkpoint.parse("o\n1\n\u00e9\n")
    with pytest.raises(LogProofError, match="signature is not base64"):
        SignedNote.parse("o\n1\nAAAA\n\n\u2014 o \u00e9\u00e9\n")
    item = _base()[0].to_json()
    item["canonicalizedBody"] = "\u00e9"
    with pytest.raises(LogProofError, match="canonicalizedBody is not base64"):
        entries.TlogEntry.from_json(item)
