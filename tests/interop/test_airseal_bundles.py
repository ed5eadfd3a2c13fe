"""Our bundles, as `airseal sign-blob` and the DSSE signer write them, checked by sigstore-js.

@sigstore/verify cannot check Ed25519 *message* signatures (it asks Node for a sha256 Ed25519
verify, which OpenSSL refuses), so Ed25519 is cross-checked through a DSSE statement instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from airseal.trustroot.bundle import bundle_to_json, sign_statement
from airseal.trustroot.dsse import Statement, Subject
from airseal.trustroot.keys import spki_pem
from tests.trustroot.keysets import make_signer


@pytest.fixture
def artifact(tmp_path) -> Path:
    path = tmp_path / "payload.tar"
    path.write_bytes(os.urandom(50_000))
    return path


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "ecdsa-p384", "rsa-3072"])
def test_sign_blob_bundles_verify_with_sigstore_js(
    airseal, appliance_home, artifact, tmp_path, sigstore_js, algorithm
):
    assert airseal("key", "generate", "k", "--algorithm", algorithm).code == 0
    bundle, pub = tmp_path / "b.sigstore.json", tmp_path / "k.pub"
    assert airseal("sign-blob", str(artifact), "--key", "k", "--bundle", str(bundle)).code == 0
    pub.write_text(airseal("key", "export-public", "k").stdout)
    assert sigstore_js(bundle, pub, artifact).ok

    tampered = tmp_path / "tampered.tar"
    tampered.write_bytes(b"\x00" + artifact.read_bytes()[1:])
    refused = sigstore_js(bundle, pub, tampered)
    assert not refused.ok

    document = json.loads(bundle.read_text())
    signature = bytearray(base64.b64decode(document["messageSignature"]["signature"]))
    signature[-3] ^= 0x40
    document["messageSignature"]["signature"] = base64.b64encode(bytes(signature)).decode()
    broken = tmp_path / "broken.sigstore.json"
    broken.write_text(json.dumps(document))
    assert not sigstore_js(broken, pub, artifact).ok


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "ecdsa-p384", "rsa-2048", "ed25519"])
def test_dsse_statements_verify_with_sigstore_js(artifact, tmp_path, sigstore_js, algorithm):
    signer = make_signer(algorithm)
    statement = Statement(
        subject=[
            Subject(
                name=artifact.name,
                digest={"sha256": hashlib.sha256(artifact.read_bytes()).hexdigest()},
            )
        ],
        predicate_type="https://airseal.dev/action/v1",
        predicate={"name": "(Install)Agent"},
    )
    bundle, pub = tmp_path / "action.sigstore.json", tmp_path / "k.pub"
    bundle.write_bytes(bundle_to_json(sign_statement(signer, statement)))
    pub.write_bytes(spki_pem(signer.public_key))
    assert sigstore_js(bundle, pub, artifact).ok
    assert sigstore_js(bundle, pub).ok

    other = tmp_path / "other.pub"
    other.write_bytes(spki_pem(make_signer(algorithm).public_key))
    assert not sigstore_js(bundle, other).ok

    document = json.loads(bundle.read_text())
    payload = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    payload["predicate"]["name"] = "(Install)Evil"
    document["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    bundle.write_text(json.dumps(document))
    assert not sigstore_js(bundle, pub).ok
