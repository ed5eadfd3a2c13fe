"""The pure transparency-log code: Merkle proofs, checkpoints, SETs and entry bodies.

Cross-checked three ways: a brute-force tree for every small size, the real public-good Rekor
entry in tests/fixtures/keyless (its inclusion proof, checkpoint and SET verified with the Rekor
key from sigstore-python's production trusted root), and sigstore-python's own inclusion verifier.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from airseal.trustroot.errors import LogProofError
from airseal.trustroot.keyless import default_trusted_root_json
from airseal.trustroot.keys import PublicKey
from airseal.trustroot.signer import PrivateKeySigner
from airseal.trustroot.tlog import checkpoint as cp
from airseal.trustroot.tlog import entries, merkle, tiles

FIXTURE = Path(__file__).parent.parent / "fixtures" / "keyless" / "new_bundle.txt.sigstore.json"
ARTIFACT = FIXTURE.parent / "new_bundle.txt"


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(f"entry {i}".encode()) for i in range(n)]


def _reader(leaves: list[bytes]) -> merkle.NodeReader:
    def node(level: int, index: int) -> bytes:
        width = 1 << level
        chunk = leaves[index * width : (index + 1) * width]
        assert len(chunk) == width, "the generator asked for an incomplete subtree"
        return merkle.root_of_leaf_hashes(chunk)

    return node


def _flip(raw: bytes) -> bytes:
    return bytes([raw[0] ^ 1]) + raw[1:]


def test_rfc6962_empty_and_known_roots() -> None:
    assert merkle.root_hash(0, _reader([])).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    # RFC 6962 test vector (certificate-transparency-go testdata): leaf "" hashes to 6e340b9c...
    assert merkle.leaf_hash(b"").hex().startswith("6e340b9cffb37a989ca544e6bb780a2c")


@pytest.mark.parametrize("size", range(1, 34))
def test_every_inclusion_proof_of_small_trees(size: int) -> None:
    leaves = _leaves(size)
    node = _reader(leaves)
    root = merkle.root_of_leaf_hashes(leaves)
    assert merkle.root_hash(size, node) == root
    for index in range(size):
        proof = merkle.inclusion_proof(index, size, node)
        merkle.verify_inclusion(leaves[index], index, size, proof, root)
        with pytest.raises(LogProofError):
            merkle.verify_inclusion(_flip(leaves[index]), index, size, proof, root)
        if proof:
            with pytest.raises(LogProofError):
                merkle.verify_inclusion(
                    leaves[index], index, size, [_flip(proof[0]), *proof[1:]], root
                )
            with pytest.raises(LogProofError):
                merkle.verify_inclusion(leaves[index], index, size, proof[:-1], root)
        with pytest.raises(LogProofError):
            merkle.verify_inclusion(leaves[index], index, size, [*proof, root], root)


@pytest.mark.parametrize("new_size", range(1, 34))
def test_every_consistency_proof_of_small_trees(new_size: int) -> None:
    leaves = _leaves(new_size)
    node = _reader(leaves)
    new_root = merkle.root_of_leaf_hashes(leaves)
    for old_size in range(0, new_size + 1):
        old_root = merkle.root_of_leaf_hashes(leaves[:old_size])
        proof = merkle.consistency_proof(old_size, new_size, node)
        merkle.verify_consistency(old_size, new_size, proof, old_root, new_root)
        if 0 < old_size < new_size:
            with pytest.raises(LogProofError):
                merkle.verify_consistency(old_size, new_size, proof, _flip(old_root), new_root)
            with pytest.raises(LogProofError):
                merkle.verify_consistency(old_size, new_size, proof, old_root, _flip(new_root))
            with pytest.raises(LogProofError):
                merkle.verify_consistency(old_size, new_size, proof[:-1], old_root, new_root)


def test_fork_and_shrink_are_named() -> None:
    leaves = _leaves(8)
    root = merkle.root_of_leaf_hashes(leaves)
    with pytest.raises(LogProofError, match="forked"):
        merkle.verify_consistency(8, 8, [], root, _flip(root))
    with pytest.raises(LogProofError, match="shrank"):
        merkle.verify_consistency(8, 5, [], root, root)


def test_tiles_give_the_same_proofs_as_the_tree() -> None:
    size = 256 * 3 + 17
    leaves = _leaves(size)
    # Level-0 tiles hold leaf hashes; level-1 tiles hold roots of full level-0 tiles.
    level1 = [merkle.root_of_leaf_hashes(leaves[i * 256 : (i + 1) * 256]) for i in range(3)]
    store = {(0, i): b"".join(leaves[i * 256 : (i + 1) * 256]) for i in range(4)}
    store[(1, 0)] = b"".join(level1)
    node = tiles.node_reader(lambda level, index: store[(level, index)])
    assert merkle.root_hash(size, node) == merkle.root_of_leaf_hashes(leaves)
    stored = tiles.stored_node_reader(
        lambda level, index: (store[(level, index)], tiles.inner_levels(store[(level, index)]))
    )
    for level in range(10):
        for index in range((size >> level) - 1, -1, -37):
            assert stored(level, index) == node(level, index) == _reader(leaves)(level, index)
    for index in (0, 255, 256, 700, size - 1):
        assert merkle.inclusion_proof(index, size, node) == merkle.inclusion_proof(
            index, size, _reader(leaves)
        )
    assert merkle.consistency_proof(300, size, node) == merkle.consistency_proof(
        300, size, _reader(leaves)
    )
    assert tiles.tiles_for_size(size) == [
        (0, 0, 256),
        (0, 1, 256),
        (0, 2, 256),
        (0, 3, 17),
        (1, 0, 3),
    ]


def test_tile_paths_follow_c2sp() -> None:
    assert tiles.tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tiles.tile_path(1, 5, 3) == "tile/1/005.p/3"
    assert tiles.entries_path(1000) == "tile/entries/x001/000"


# --- the real public-good entry -------------------------------------------------------------


def _rekor_key() -> PublicKey:
    root = json.loads(default_trusted_root_json())
    for tlog in root["tlogs"]:
        if tlog["baseUrl"] == "https://rekor.sigstore.dev":
            key = serialization.load_der_public_key(base64.b64decode(tlog["publicKey"]["rawBytes"]))
            assert isinstance(key, ec.EllipticCurvePublicKey)
            return key
    raise AssertionError("sigstore's trusted root has no rekor.sigstore.dev")


def _public_entry() -> dict[str, object]:
    bundle = json.loads(FIXTURE.read_bytes())
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    assert isinstance(entry, dict)
    return entry


def _public_signed() -> entries.SignedContent:
    bundle = json.loads(FIXTURE.read_bytes())
    return entries.SignedContent(
        signature=base64.b64decode(bundle["messageSignature"]["signature"]),
        sha256_digest=hashlib.sha256(ARTIFACT.read_bytes()).digest(),
    )


def test_public_good_entry_verifies_with_our_code() -> None:
    entry = entries.TlogEntry.from_json(_public_entry())
    assert entry.log_id == entries.log_id(_rekor_key())
    checkpoint = entries.verify_tlog_entry(
        entry,
        log_key=_rekor_key(),
        name="rekor.sigstore.dev",
        origin=None,
        signed=_public_signed(),
    )
    assert checkpoint is not None
    assert checkpoint.origin == "rekor.sigstore.dev - 1193050959916656506"
    assert checkpoint.size == 2452216574
    # Our JSON form of the entry round-trips to the bundle's, field for field.
    assert entry.to_json() == _public_entry()


def test_public_good_checkpoint_rebuilds_byte_for_byte() -> None:
    text = _public_entry()["inclusionProof"]["checkpoint"]["envelope"]  # type: ignore[index]
    note = cp.SignedNote.parse(text)
    assert note.text() == text
    assert cp.Checkpoint.parse(note.body).body() == note.body
    assert note.signatures[0].key_hint == entries.log_id(_rekor_key())[:4]


@pytest.mark.parametrize("field", ["set", "checkpoint", "proof", "body", "index", "logid"])
def test_public_good_entry_altered_is_refused(field: str) -> None:
    raw = _public_entry()
    proof = dict(raw["inclusionProof"])  # type: ignore[call-overload]
    raw["inclusionProof"] = proof
    if field == "set":
        raw["inclusionPromise"] = {"signedEntryTimestamp": base64.b64encode(b"0" * 70).decode()}
    elif field == "checkpoint":
        proof["checkpoint"] = {
            "envelope": proof["checkpoint"]["envelope"].replace("2452216574", "2452216575")
        }
    elif field == "proof":
        proof["hashes"] = [base64.b64encode(b"\x00" * 32).decode(), *proof["hashes"][1:]]
    elif field == "body":
        body = base64.b64decode(raw["canonicalizedBody"])  # type: ignore[arg-type]
        raw["canonicalizedBody"] = base64.b64encode(body.replace(b"a7dd", b"a7de")).decode()
    elif field == "index":
        proof["logIndex"] = str(int(proof["logIndex"]) + 1)
    else:
        raw["logId"] = {"keyId": base64.b64encode(b"\x01" * 32).decode()}
    with pytest.raises(LogProofError):
        entries.verify_tlog_entry(
            entries.TlogEntry.from_json(raw),
            log_key=_rekor_key(),
            name="rekor.sigstore.dev",
            origin=None,
            signed=_public_signed() if field != "body" else None,
        )


def test_sigstore_python_inclusion_verifier_agrees() -> None:
    """sigstore-python's private inclusion verifier accepts our proofs, refuses a bad one."""
    from sigstore._internal.merkle import verify_merkle_inclusion
    from sigstore.errors import VerificationError as SigstoreVerificationError

    key = ec.generate_private_key(ec.SECP256R1())
    signer = PrivateKeySigner(key)
    leaves_bodies = [f'{{"n":{i}}}'.encode() for i in range(300)]
    leaves = [merkle.leaf_hash(b) for b in leaves_bodies]
    node = _reader(leaves)
    root = merkle.root_of_leaf_hashes(leaves)
    note = cp.sign_checkpoint(
        cp.Checkpoint("log.example", 300, root), name="log.example", signer=signer
    )
    index = 257
    ours = entries.TlogEntry(
        log_index=index,
        log_id=entries.log_id(signer.public_key),
        kind="hashedrekord",
        version="0.0.1",
        integrated_time=1_700_000_000,
        body=leaves_bodies[index],
        set=b"unused",
        proof=entries.InclusionProof(
            index, 300, root, tuple(merkle.inclusion_proof(index, 300, node)), note
        ),
    )
    verify_merkle_inclusion(_sigstore_entry(ours))  # type: ignore[arg-type]
    bad = entries.TlogEntry(**{**ours.__dict__, "body": b'{"n":1}'})
    with pytest.raises(SigstoreVerificationError):
        verify_merkle_inclusion(_sigstore_entry(bad))  # type: ignore[arg-type]


def _sigstore_entry(entry: entries.TlogEntry) -> object:
    from sigstore.models import TransparencyLogEntry
    from sigstore_models.rekor.v1 import TransparencyLogEntry as Inner

    return TransparencyLogEntry(Inner.from_dict(entry.to_json()))


def test_checkpoint_signing_and_refusals() -> None:
    signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    other = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    point = cp.Checkpoint("log.site.example", 5, b"\x07" * 32)
    text = cp.sign_checkpoint(point, name="log.site.example", signer=signer)
    assert text.startswith("log.site.example\n5\n")
    assert (
        cp.verify_checkpoint(
            text, key=signer.public_key, name="log.site.example", origin="log.site.example"
        )
        == point
    )
    with pytest.raises(LogProofError, match="expected"):
        cp.verify_checkpoint(
            text, key=signer.public_key, name="log.site.example", origin="other.example"
        )
    with pytest.raises(LogProofError, match="no signature"):
        cp.verify_checkpoint(text, key=other.public_key, name="log.site.example")
    forged = text.replace("\n5\n", "\n6\n")
    with pytest.raises(LogProofError, match="does not verify"):
        cp.verify_checkpoint(forged, key=signer.public_key, name="log.site.example")
    for bad in ("https://log.example", "log.example:8080", "log.example/path", "Log.Example"):
        with pytest.raises(ValueError, match="bare host"):
            cp.check_origin(bad)


def test_set_payload_matches_rekor_canonical_form() -> None:
    payload = entries.set_payload(b"{}", 12, b"\xab" * 32, 3)
    assert payload == rfc8785.dumps(
        {"logIndex": 3, "body": "e30=", "logID": "ab" * 32, "integratedTime": 12}
    )
    assert payload == (
        b'{"body":"e30=","integratedTime":12,"logID":"' + b"ab" * 32 + b'","logIndex":3}'
    )


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()], ids=["p256", "p384"])
def test_a_set_signed_in_one_call_verifies_as_a_digest_signature(curve: ec.EllipticCurve) -> None:
    """The append path signs SETs with ECDSA-SHA256 in one OpenSSL call and passes the log id
    in: the same signature a signer of SHA-256 digests makes, over the same payload."""
    from airseal.trustroot.keys import verify_digest

    signer = PrivateKeySigner(ec.generate_private_key(curve))
    lid = entries.log_id(signer.public_key)
    sig = entries.sign_set(signer, b"{}", 12, 3, log_id_bytes=lid)
    payload = entries.set_payload(b"{}", 12, lid, 3)
    verify_digest(signer.public_key, sig, hashlib.sha256(payload).digest())
    assert signer.public_key is signer.public_key  # derived once


def test_checkpoint_advance_refuses_fork_shrink_and_another_log() -> None:
    from airseal.trustroot.tlog.witness_state import advance_checkpoint

    signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    leaves = _leaves(20)
    node = _reader(leaves)
    name = "log.site.example"

    def note(size: int, root: bytes | None = None, origin: str = name) -> str:
        point = cp.Checkpoint(origin, size, root or merkle.root_of_leaf_hashes(leaves[:size]))
        return cp.sign_checkpoint(point, name=name, signer=signer)

    key = signer.public_key
    first = advance_checkpoint(None, note(7), [], key=key, name=name, origin=name)
    second = advance_checkpoint(
        first, note(20), merkle.consistency_proof(7, 20, node), key=key, name=name, origin=name
    )
    assert second.size == 20
    with pytest.raises(LogProofError, match=r"shrank: last seen log\.site\.\S+ size 20") as info:
        advance_checkpoint(second, note(7), [], key=key, name=name, origin=name)
    assert info.value.check == "tlog.shrink"
    forked = note(20, root=b"\x05" * 32)
    with pytest.raises(
        LogProofError, match=r"forked: last seen .* size 20 .* now .* size 20"
    ) as info:
        advance_checkpoint(second, forked, [], key=key, name=name, origin=name)
    assert info.value.check == "tlog.fork"
    other_leaves = [*leaves[:5], *_leaves(40)[20:]]
    rewritten = cp.sign_checkpoint(
        cp.Checkpoint(name, 25, merkle.root_of_leaf_hashes(other_leaves)), name=name, signer=signer
    )
    with pytest.raises(LogProofError, match="forked"):
        advance_checkpoint(
            second,
            rewritten,
            merkle.consistency_proof(20, 25, _reader(other_leaves)),
            key=key,
            name=name,
            origin=name,
        )
    with pytest.raises(LogProofError, match="expected"):
        advance_checkpoint(
            second, note(20, origin="other.example"), [], key=key, name=name, origin=name
        )
