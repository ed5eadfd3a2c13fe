"""The `--rekor-url` client against a Rekor that is not ours, and our served entries checked by
a verifier that is not ours.

- ``@sigstore/mock`` (sigstore-js's own test Rekor) behind a loopback node HTTP server
  (``node/rekor_mock_server.mjs``): our client sends a ``hashedrekord`` entry, parses the answer
  and verifies its SET, checkpoint and inclusion proof with the key the mock serves; with another
  key, or for an entry body the mock does not canonicalise as Rekor does (DSSE), it refuses.
- ``@sigstore/verify`` accepts a bundle whose entry came from ``airseal log serve`` through the
  client, with the site's ``trusted_root.json``; through Rekor v1 and through Rekor v2 (a
  ``0.0.2`` entry without a SET).
- The mock's Rekor v2 handler (protobuf-specs' ``CreateEntryRequest.fromJSON``) takes our v2
  request; its answer is refused: it logs the request as sent, not a ``0.0.2`` entry body.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from airseal.appliance import rekor_client as rc
from airseal.appliance import tlog_store as ts
from airseal.trustroot.bundle import bundle_to_json, message_signature_bundle
from airseal.trustroot.keys import load_public_key, spki_der, spki_pem
from airseal.trustroot.signer import PrivateKeySigner
from tests.interop.sigstore_js import NODE_DIR, ensure_installed, verify_with_sigstore_js
from tests.realparts.served_log import served_log

SIGNER = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="module")
def mock_rekor() -> Iterator[tuple[str, bytes]]:
    """(url, public key PEM) of @sigstore/mock's Rekor on loopback."""
    node = ensure_installed()
    process = subprocess.Popen(
        [node, str(NODE_DIR / "rekor_mock_server.mjs")], cwd=NODE_DIR,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("READY "), line + (process.stderr.read() if process.stderr else "")
        url = line.split()[1]
        key_url = f"{url}/api/v1/log/publicKey"  # http://127.0.0.1:PORT, printed by the mock
        with urllib.request.urlopen(key_url, timeout=10) as response:  # noqa: S310
            yield url, response.read()
    finally:
        process.terminate()
        process.wait(timeout=10)


def _bundle(content: bytes) -> bytes:
    digest = hashlib.sha256(content).digest()
    return bundle_to_json(
        message_signature_bundle(SIGNER.public_key, digest, SIGNER.sign_digest(digest))
    )


def test_client_verifies_what_sigstore_mock_returns(mock_rekor: tuple[str, bytes]) -> None:
    url, pem = mock_rekor
    target = rc.RekorTarget(rc.normalise_url(url), load_public_key(pem), None)
    bundle = _bundle(b"artifact")
    entry = rc.log_bundle(target, bundle, SIGNER.public_key)
    assert entry.kind == "hashedrekord" and entry.proof is not None
    assert entry.proof.checkpoint.startswith(url.removeprefix("http://") + " - ")
    stored = json.loads(ts.with_tlog_entry(bundle, entry))
    (item,) = stored["verificationMaterial"]["tlogEntries"]
    assert item["inclusionPromise"]["signedEntryTimestamp"]
    # A trusted root naming the mock gives the same key and the signer name (host:port).
    root = json.dumps({"tlogs": [{"baseUrl": url, "publicKey": {
        "rawBytes": base64.b64encode(spki_der(load_public_key(pem))).decode()}}]}).encode()
    key, name = rc.key_from_trusted_root(root, target.url, datetime.now(UTC))
    rc.log_bundle(rc.RekorTarget(target.url, key, name), _bundle(b"again"), SIGNER.public_key)


def test_client_refuses_a_mock_answer_it_cannot_verify(mock_rekor: tuple[str, bytes]) -> None:
    url, _ = mock_rekor
    stranger = rc.RekorTarget(rc.normalise_url(url), SIGNER.public_key, None)
    with pytest.raises(rc.RekorAnswerInvalid) as wrong_key:
        rc.log_bundle(stranger, _bundle(b"artifact"), SIGNER.public_key)
    assert "tlog.logid" in str(wrong_key.value)
    # The mock logs a DSSE proposal as sent; Rekor stores hashes and signatures instead, and the
    # client requires a body naming this signature and payload hash: refused, nothing stored.
    _, pem = mock_rekor
    envelope = {"payload": base64.b64encode(b"{}").decode(), "payloadType": "application/json",
                "signatures": [{"sig": base64.b64encode(b"sig").decode(), "keyid": ""}]}
    dsse = json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                       "verificationMaterial": {}, "dsseEnvelope": envelope}).encode()
    target = rc.RekorTarget(rc.normalise_url(url), load_public_key(pem), None)
    with pytest.raises(rc.RekorAnswerInvalid, match="malformed"):
        rc.log_bundle(target, dsse, SIGNER.public_key)


def test_mock_rekor_v2_takes_our_request_and_its_answer_is_refused(
    mock_rekor: tuple[str, bytes],
) -> None:
    url, pem = mock_rekor
    target = rc.RekorTarget(rc.normalise_url(url), load_public_key(pem), None, api_version=2)
    with pytest.raises(rc.RekorAnswerInvalid) as refused:  # 201 (a 400 would be RekorRefused)
        rc.log_bundle(target, _bundle(b"v2"), SIGNER.public_key)
    assert refused.value.check == "rekor.verify.tlog.body", refused.value


@pytest.mark.parametrize("api_version", [1, 2])
def test_sigstore_js_accepts_an_entry_obtained_from_log_serve(
    tmp_path: Path, api_version: int
) -> None:
    origin, now = "log.site.example", datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    log_key = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    with served_log(tmp_path / "log.db", log_key, origin, lambda: now) as url:
        artifact = tmp_path / "artifact.bin"
        artifact.write_bytes(b"served " * 100)
        bundle = _bundle(artifact.read_bytes())
        entry = rc.log_bundle(rc.RekorTarget(url, log_key.public_key, None,
                                             api_version=api_version), bundle, SIGNER.public_key)
        assert entry.version == f"0.0.{api_version}"
    bundle_path = tmp_path / "artifact.sigstore.json"
    bundle_path.write_bytes(ts.with_tlog_entry(bundle, entry))
    key_path = tmp_path / "signer.pub"
    key_path.write_bytes(spki_pem(SIGNER.public_key))
    root = tmp_path / "trusted_root.json"
    root.write_text(json.dumps({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [{
            "baseUrl": f"https://{origin}", "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": base64.b64encode(spki_der(log_key.public_key)).decode(),
                          "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                          "validFor": {"start": "2026-01-01T00:00:00Z"}},
            "logId": {"keyId": base64.b64encode(entry.log_id).decode()},
        }],
        "certificateAuthorities": [], "ctlogs": [], "timestampAuthorities": [],
    }))
    result = verify_with_sigstore_js(bundle_path, key_path, artifact, trusted_root=root)
    assert result.ok, result.error
