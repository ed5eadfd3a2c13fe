"""Blob signatures and key-based bundles: round trips for every key type and both outputs, and
each kind of damage mapped to its typed error."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from airseal.trustroot.bundle import (
    bundle_to_json,
    message_signature_bundle,
    parse_bundle,
    sign_statement,
)
from airseal.trustroot.dsse import Statement, Subject
from airseal.trustroot.errors import (
    DigestMismatch,
    InvalidSignature,
    MalformedBundle,
    MalformedSignature,
    UnsupportedAlgorithm,
    WrongKey,
)
from airseal.trustroot.keys import KeyAlgorithm, key_hint
from airseal.trustroot.verify import (
    verify_blob_bundle,
    verify_detached_signature,
    verify_dsse_bundle,
)
from tests.trustroot.keysets import ALGORITHMS, make_signer

CONTENT = b"airseal test payload\n" * 100


def _sign(signer, content: bytes) -> tuple[bytes, bytes]:
    digest = hashlib.sha256(content).digest()
    if signer.algorithm.prehashed:
        return digest, signer.sign_digest(digest)
    return digest, signer.sign_message(content)


@pytest.fixture(scope="module", params=ALGORITHMS)
def signer(request):
    return make_signer(request.param)


def test_detached_signature_round_trip(signer):
    digest, signature = _sign(signer, CONTENT)
    text = base64.b64encode(signature)
    result = verify_detached_signature(signer.public_key, text, digest, message=CONTENT)
    assert result.sha256 == digest.hex()
    assert result.algorithm is signer.algorithm


def test_bundle_round_trip_through_json(signer):
    digest, signature = _sign(signer, CONTENT)
    raw = bundle_to_json(message_signature_bundle(signer.public_key, digest, signature))
    document = json.loads(raw)
    assert document["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert document["verificationMaterial"] == {
        "publicKey": {"hint": key_hint(signer.public_key)},
        "tlogEntries": [],
    }
    assert base64.b64decode(document["messageSignature"]["messageDigest"]["digest"]) == digest
    result = verify_blob_bundle(signer.public_key, parse_bundle(raw), digest, message=CONTENT)
    assert result.unchecked_tlog_entries == 0


def test_tampered_file_is_a_digest_mismatch_in_a_bundle(signer):
    digest, signature = _sign(signer, CONTENT)
    bundle = message_signature_bundle(signer.public_key, digest, signature)
    changed = CONTENT[:-1] + b"?"
    with pytest.raises(DigestMismatch, match="bundle signed"):
        verify_blob_bundle(
            signer.public_key,
            bundle,
            hashlib.sha256(changed).digest(),
            message=changed,
            subject="x.bundle",
        )


def test_tampered_file_fails_a_detached_signature(signer):
    _digest, signature = _sign(signer, CONTENT)
    changed = b"X" + CONTENT[1:]
    with pytest.raises(InvalidSignature):
        verify_detached_signature(
            signer.public_key,
            base64.b64encode(signature),
            hashlib.sha256(changed).digest(),
            message=changed,
        )


def test_tampered_signature_is_invalid(signer):
    digest, signature = _sign(signer, CONTENT)
    broken = bytearray(signature)
    broken[len(broken) // 2] ^= 0x01
    bundle = message_signature_bundle(signer.public_key, digest, bytes(broken))
    with pytest.raises(InvalidSignature, match=signer.algorithm.label):
        verify_blob_bundle(signer.public_key, bundle, digest, message=CONTENT, subject="b.json")
    with pytest.raises(InvalidSignature):
        verify_detached_signature(
            signer.public_key, base64.b64encode(bytes(broken)), digest, message=CONTENT
        )


def test_wrong_key_is_named_by_the_bundle_hint(signer):
    digest, signature = _sign(signer, CONTENT)
    bundle = message_signature_bundle(signer.public_key, digest, signature)
    other = make_signer(
        signer.algorithm.label if signer.algorithm.label in ALGORITHMS else "ecdsa-p256"
    )
    with pytest.raises(WrongKey) as caught:
        verify_blob_bundle(other.public_key, bundle, digest, message=CONTENT, subject="b.json")
    assert caught.value.subject == "b.json"
    assert key_hint(signer.public_key) in str(caught.value)


def test_wrong_key_without_hint_is_an_invalid_signature():
    signer, other = make_signer("ecdsa-p256"), make_signer("ecdsa-p256")
    digest, signature = _sign(signer, CONTENT)
    document = json.loads(
        bundle_to_json(message_signature_bundle(signer.public_key, digest, signature))
    )
    document["verificationMaterial"]["publicKey"] = {"hint": ""}
    bundle = parse_bundle(json.dumps(document).encode())
    with pytest.raises(InvalidSignature):
        verify_blob_bundle(other.public_key, bundle, digest)


def test_bundle_without_tlog_entries_key_as_cosign_writes_it():
    signer = make_signer("ecdsa-p256")
    digest, signature = _sign(signer, CONTENT)
    document = json.loads(
        bundle_to_json(message_signature_bundle(signer.public_key, digest, signature))
    )
    del document["verificationMaterial"]["tlogEntries"]
    bundle = parse_bundle(json.dumps(document).encode())
    assert verify_blob_bundle(signer.public_key, bundle, digest).sha256 == digest.hex()


@pytest.mark.parametrize("cut", [1, 10, 100, 300])
def test_truncated_bundle_json_is_malformed(cut):
    signer = make_signer("ecdsa-p256")
    digest, signature = _sign(signer, CONTENT)
    raw = bundle_to_json(message_signature_bundle(signer.public_key, digest, signature))
    with pytest.raises(MalformedBundle) as caught:
        parse_bundle(raw[:cut], subject="cut.sigstore.json")
    assert caught.value.subject == "cut.sigstore.json"


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (b"[]", "not a JSON object"),
        (b"\xff\xfe", "not valid JSON"),
        (b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}', "verificationMaterial"),
        (
            b'{"mediaType": "text/plain", "verificationMaterial": {"publicKey": {"hint": ""}},'
            b' "messageSignature": {"signature": "AA=="}}',
            "mediaType",
        ),
        (
            b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",'
            b' "verificationMaterial": {"publicKey": {"hint": ""}, "tlogEntries": []}}',
            "messageSignature or dsseEnvelope",
        ),
        (
            b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",'
            b' "verificationMaterial": {"publicKey": {"hint": ""}, "tlogEntries": []},'
            b' "messageSignature": {"signature": "AA=="}, "extra": 1}',
            "extra",
        ),
    ],
)
def test_malformed_bundles_are_named(document, fragment):
    with pytest.raises(MalformedBundle, match=fragment):
        parse_bundle(document)


def test_oversized_bundle_is_refused_before_parsing():
    with pytest.raises(MalformedBundle, match="limit"):
        parse_bundle(b" " * (16 * 1024 * 1024 + 1))


def test_malformed_detached_signature():
    signer = make_signer("ecdsa-p256")
    with pytest.raises(MalformedSignature, match="base64"):
        verify_detached_signature(signer.public_key, b"not base64 !!", b"\0" * 32)
    with pytest.raises(MalformedSignature, match="empty"):
        verify_detached_signature(signer.public_key, b"", b"\0" * 32)


def test_ed25519_needs_the_content():
    signer = make_signer("ed25519")
    digest, signature = _sign(signer, CONTENT)
    with pytest.raises(UnsupportedAlgorithm, match="whole content"):
        verify_detached_signature(signer.public_key, base64.b64encode(signature), digest)


def test_unsupported_algorithms_are_named():
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from airseal.trustroot.keys import key_algorithm

    with pytest.raises(UnsupportedAlgorithm, match="secp521r1"):
        key_algorithm(ec.generate_private_key(ec.SECP521R1()).public_key())
    with pytest.raises(UnsupportedAlgorithm, match="RSA-1024"):
        key_algorithm(rsa.generate_private_key(public_exponent=65537, key_size=1024))  # noqa: S505


def _statement(content: bytes) -> Statement:
    return Statement(
        subject=[
            Subject(name="payload.bin", digest={"sha256": hashlib.sha256(content).hexdigest()})
        ],
        predicate_type="https://airseal.dev/test/v1",
        predicate={"purpose": "test"},
    )


def test_dsse_statement_round_trip(signer):
    raw = bundle_to_json(sign_statement(signer, _statement(CONTENT)))
    statement = verify_dsse_bundle(signer.public_key, parse_bundle(raw))
    assert statement.subject[0].sha256 == hashlib.sha256(CONTENT).hexdigest()
    assert statement.predicate == {"purpose": "test"}
    digest = hashlib.sha256(CONTENT).digest()
    assert verify_blob_bundle(signer.public_key, parse_bundle(raw), digest).sha256 == digest.hex()


def test_dsse_tampered_payload_is_invalid(signer):
    document = json.loads(bundle_to_json(sign_statement(signer, _statement(CONTENT))))
    payload = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    payload["predicate"]["purpose"] = "evil"
    document["dsseEnvelope"]["payload"] = base64.b64encode(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    ).decode()
    with pytest.raises(InvalidSignature):
        verify_dsse_bundle(signer.public_key, parse_bundle(json.dumps(document).encode()))


def test_dsse_content_not_named_by_statement_is_a_digest_mismatch():
    signer = make_signer("ecdsa-p256")
    bundle = sign_statement(signer, _statement(CONTENT))
    with pytest.raises(DigestMismatch, match="no statement subject"):
        verify_blob_bundle(signer.public_key, bundle, hashlib.sha256(b"other").digest())


def test_message_bundle_is_not_a_dsse_bundle():
    signer = make_signer("ecdsa-p256")
    digest, signature = _sign(signer, CONTENT)
    with pytest.raises(MalformedBundle, match="expected a DSSE envelope"):
        verify_dsse_bundle(
            signer.public_key, message_signature_bundle(signer.public_key, digest, signature)
        )


def test_key_algorithms_map_to_sigstore_registry_names():
    assert KeyAlgorithm.ECDSA_P256.value == "PKIX_ECDSA_P256_SHA_256"
    assert {make_signer(a).algorithm.label for a in ALGORITHMS} == set(ALGORITHMS)
