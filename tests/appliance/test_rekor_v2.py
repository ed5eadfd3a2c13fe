"""Rekor v2: the `--rekor-url` client speaking ``/api/v2/log/entries`` to `airseal log serve`,
the ``0.0.2`` shapes against ``sigstore_models`` and a real staging Rekor v2 entry, the signing
config choosing v1 or v2, and every failure refused before anything is stored.

The server runs for real on loopback (port 0) in a thread; failures come from a loopback
"Rekor" that replays altered copies of the real server's answers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from airseal.appliance import rekor_client as rc
from airseal.appliance import tlog_store as ts
from airseal.appliance.log_view import entry_digest
from airseal.trustroot.bundle import bundle_to_json, message_signature_bundle
from airseal.trustroot.dsse import pae
from airseal.trustroot.errors import LogProofError
from airseal.trustroot.keys import load_public_key, spki_der, spki_pem
from airseal.trustroot.signer import PrivateKeySigner
from airseal.trustroot.tlog import entries, rekor_v2
from tests.realparts.served_log import served_log

ORIGIN = "log.test.example"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
LOG = PrivateKeySigner(ec.derive_private_key(0x5E_4E_10C, ec.SECP256R1()))
SIGNER = PrivateKeySigner(ec.derive_private_key(0xB10B, ec.SECP256R1()))
FIXTURE = Path(__file__).parent.parent / "fixtures" / "rekor-v2" / "staging-rekor-v2.txt.entry.json"
STAGING = "log2025-alpha1.rekor.sigstage.dev"


def _bundle(content: bytes) -> bytes:
    digest = hashlib.sha256(content).digest()
    return bundle_to_json(
        message_signature_bundle(SIGNER.public_key, digest, SIGNER.sign_digest(digest))
    )


def _dsse_bundle(payload: bytes) -> bytes:
    kind = "application/vnd.in-toto+json"
    return json.dumps({"dsseEnvelope": {
        "payload": base64.b64encode(payload).decode(), "payloadType": kind,
        "signatures": [{"sig": base64.b64encode(SIGNER.sign_message(pae(kind, payload)))
                        .decode(), "keyid": ""}]}, "verificationMaterial": {}}).encode()


def _serve(handler: Any) -> tuple[ThreadingHTTPServer, threading.Thread]:
    server = handler if isinstance(handler, ThreadingHTTPServer) else \
        ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    return server, thread


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An empty log served on loopback: (url, database path)."""
    path = tmp_path / "log.db"
    with served_log(path, LOG, ORIGIN, lambda: NOW) as url:
        yield url, path


def _log_size(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM log_entries").fetchone()[0])
    finally:
        conn.close()


# -- shapes ----------------------------------------------------------------------------------


def test_shapes_agree_with_sigstore_models() -> None:
    """Every request, body and answer made here parses with sigstore_models (extra="forbid"),
    and a body is exactly the RFC 8785 form of sigstore_models' own reading of it."""
    from sigstore_models.rekor.v1 import TransparencyLogEntry
    from sigstore_models.rekor.v2.entry import CreateEntryRequest, Entry

    digest = hashlib.sha256(b"x").digest()
    signature = SIGNER.sign_digest(digest)
    request = rekor_v2.hashedrekord_request(digest, signature, SIGNER.public_key)
    assert json.loads(CreateEntryRequest.from_json(json.dumps(request)).to_json()) == request
    dsse = json.loads(_dsse_bundle(b"{}"))
    request = rekor_v2.request_for_bundle(dsse, SIGNER.public_key)
    assert json.loads(CreateEntryRequest.from_json(json.dumps(request)).to_json()) == request
    for kind, body in (rekor_v2.accept_request(request),
                       ("hashedrekord", rekor_v2.hashedrekord_body(digest, signature,
                                                                   SIGNER.public_key))):
        parsed = Entry.from_json(body)
        assert (parsed.kind, parsed.api_version) == (kind, "0.0.2")
        assert rfc8785.dumps(json.loads(parsed.to_json())) == body
    real = json.loads(FIXTURE.read_text())["tlogEntry"]
    real_body = base64.b64decode(real["canonicalizedBody"])
    assert rfc8785.dumps(json.loads(Entry.from_json(real_body).to_json())) == real_body
    entry = rekor_v2.parse_transparency_log_entry(real)
    key = LOG.public_key
    answer = rekor_v2.transparency_log_entry_json(entry, rekor_v2.checkpoint_key_id(key, ORIGIN))
    assert "inclusionPromise" not in answer and "integratedTime" not in answer
    TransparencyLogEntry.from_json(json.dumps(answer))
    with pytest.raises(LogProofError, match="cannot be logged in a Rekor v2"):
        rekor_v2.hashedrekord_request(
            digest, b"s", PrivateKeySigner(ec.generate_private_key(ec.SECP384R1())).public_key)


def _staging() -> tuple[dict[str, Any], Any]:
    data = json.loads(FIXTURE.read_text())
    der = base64.b64decode(data["log"]["publicKey"]["rawBytes"])
    return data, load_public_key(spki_pem(load_der_public_key(der)))  # type: ignore[arg-type]


def test_a_real_staging_rekor_v2_entry_verifies_and_its_tampered_copies_do_not() -> None:
    data, key = _staging()
    signed = entries.signed_content_of_bundle(data)
    entry = rekor_v2.parse_transparency_log_entry(data["tlogEntry"])
    assert entry.log_id == rekor_v2.checkpoint_key_id(key, STAGING)  # Ed25519: C2SP key id
    point = rekor_v2.verify_entry(entry, log_key=key, name=STAGING, signed=signed)
    assert (point.origin, point.size) == (STAGING, 646)
    assert rekor_v2.verify_entry(entry, log_key=key, name=None, signed=signed) == point
    assert entry_digest("hashedrekord", entry.body) == signed.sha256_digest.hex()  # log view

    def refused(mutate: Callable[[dict[str, Any]], None], check: str, *,
                name: str | None = STAGING, other: bytes | None = None) -> None:
        item = json.loads(json.dumps(data["tlogEntry"]))
        mutate(item)
        content = signed if other is None else entries.SignedContent(other, signed.sha256_digest)
        with pytest.raises(LogProofError) as caught:
            rekor_v2.verify_entry(rekor_v2.parse_transparency_log_entry(item), log_key=key,
                                  name=name, signed=content)
        assert caught.value.check == check, caught.value

    proof = "inclusionProof"
    refused(lambda i: None, "tlog.body.signature", other=b"another signature")
    refused(lambda i: i[proof]["hashes"].reverse(), "tlog.inclusion")
    refused(lambda i: i.update(logIndex="644") or i[proof].update(logIndex="644"),
            "tlog.inclusion")
    refused(lambda i: None, "tlog.logid", name="log2025-1.rekor.sigstore.dev")
    refused(lambda i: i[proof]["checkpoint"].update(
        envelope=i[proof]["checkpoint"]["envelope"].replace("\n646\n", "\n645\n")),
        "tlog.checkpoint.signature")
    for forged, check in (({"inclusionPromise": {"signedEntryTimestamp": "AAAA"}}, "tlog.set"),
                          ({"kindVersion": {"kind": "hashedrekord", "version": "0.0.1"}},
                           "tlog.kind"),
                          ({proof: None}, "tlog.inclusion")):
        item = {**data["tlogEntry"], **forged}
        if item[proof] is None:
            del item[proof]
        with pytest.raises(LogProofError) as caught:
            rekor_v2.parse_transparency_log_entry(item)
        assert caught.value.check == check


def test_verify_blob_and_media_checks_accept_a_v2_entry_without_a_set(
    served: tuple[str, Path],
) -> None:
    """What verify-blob (sigstore-python's proof code) and the agent's media check
    (entries.verify_tlog_entry) run on a bundle entry: a 0.0.2 entry needs no SET."""
    from airseal.trustroot.bundle import Bundle
    from airseal.trustroot.bundle_tlog import check_tlog_entries

    url, _ = served
    bundle = _bundle(b"media")
    entry = rc.log_bundle(rc.RekorTarget(url, LOG.public_key, None, api_version=2), bundle,
                          SIGNER.public_key)
    stored = ts.with_tlog_entry(bundle, entry)
    point = entries.verify_tlog_entry(
        entries.TlogEntry.from_json(json.loads(stored)["verificationMaterial"]["tlogEntries"][0]),
        log_key=LOG.public_key, name=ORIGIN, origin=ORIGIN,
        signed=entries.signed_content_of_bundle(json.loads(stored)))
    assert point is not None and point.size == 1
    root = json.dumps(_trusted_root()).encode()
    outcome = check_tlog_entries(Bundle.from_json(stored), root)
    assert (outcome.entries, outcome.verified) == (1, 1)


def _trusted_root() -> dict[str, Any]:
    return {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [{
            "baseUrl": f"https://{ORIGIN}", "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": base64.b64encode(spki_der(LOG.public_key)).decode(),
                          "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                          "validFor": {"start": "2026-01-01T00:00:00Z"}},
            "logId": {"keyId": base64.b64encode(entries.log_id(LOG.public_key)).decode()},
        }],
        "certificateAuthorities": [], "ctlogs": [], "timestampAuthorities": [],
    }


# -- the client against `airseal log serve` -----------------------------------------------------


def test_v2_client_against_log_serve(served: tuple[str, Path]) -> None:
    url, path = served
    target = rc.RekorTarget(url, LOG.public_key, None, api_version=2)
    bundle = _bundle(b"payload")
    entry = rc.log_bundle(target, bundle, SIGNER.public_key)
    assert (entry.kind, entry.version, entry.set, entry.integrated_time) == \
        ("hashedrekord", "0.0.2", None, 0)
    item = json.loads(ts.with_tlog_entry(bundle, entry))["verificationMaterial"]["tlogEntries"][0]
    assert item["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.2"}
    assert "inclusionPromise" not in item
    dsse = rc.log_bundle(target, _dsse_bundle(b'{"_type":"x"}'), SIGNER.public_key)
    assert (dsse.kind, dsse.version, dsse.log_index) == ("dsse", "0.0.2", 1)
    again = rc.log_bundle(target, bundle, SIGNER.public_key)  # deduplicated, not refused
    assert again.log_index == entry.log_index and _log_size(path) == 2
    forged = json.loads(bundle)
    forged["messageSignature"]["messageDigest"]["digest"] = base64.b64encode(b"\0" * 32).decode()
    with pytest.raises(rc.RekorRefused, match=r"HTTP 400.*does not verify"):
        rc.log_bundle(target, json.dumps(forged).encode(), SIGNER.public_key)
    two = json.loads(_dsse_bundle(b"{}"))
    two["dsseEnvelope"]["signatures"] *= 2
    with pytest.raises(rc.RekorRefused, match="exactly one signature"):
        rc.log_bundle(target, json.dumps(two).encode(), SIGNER.public_key)
    assert _log_size(path) == 2  # the server appended neither
    # The same log through v1, unchanged: a 0.0.1 entry with its SET.
    v1 = rc.log_bundle(rc.RekorTarget(url, LOG.public_key, None), _bundle(b"v1"),
                       SIGNER.public_key)
    assert (v1.version, v1.set is not None, v1.log_index) == ("0.0.1", True, 2)


class _Replay(BaseHTTPRequestHandler):
    """A "Rekor" answering each POST with the next queued (status, body), after a delay."""

    answers: ClassVar[list[tuple[int, bytes]]] = []
    delay = 0.0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.delay)
        code, body = self.answers.pop(0)
        try:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except BrokenPipeError:  # the client gave up waiting (the timeout case)
            pass

    def log_message(self, *args: object) -> None:
        pass


def test_v2_failures_are_typed_errors_naming_the_url_and_the_check(
    served: tuple[str, Path],
) -> None:
    url, path = served
    good = rc.RekorTarget(url, LOG.public_key, None, api_version=2)
    bundle, other = _bundle(b"mine"), _bundle(b"theirs")
    status, genuine = rc._post(good, rc.V2_PATH, rekor_v2.request_for_bundle(
        json.loads(bundle), SIGNER.public_key))
    _, theirs = rc._post(good, rc.V2_PATH, rekor_v2.request_for_bundle(
        json.loads(other), SIGNER.public_key))
    assert status == 201

    def altered(change: Callable[[dict[str, Any]], None]) -> bytes:
        answer = json.loads(genuine)
        change(answer)
        return json.dumps(answer).encode()

    def bad_note(answer: dict[str, Any]) -> None:
        note = answer["inclusionProof"]["checkpoint"]
        note["envelope"] = note["envelope"].replace(f"{ORIGIN}\n", "log.other.example\n", 1)

    cases: list[tuple[int, bytes, type[rc.RekorError], str]] = [
        (201, theirs, rc.RekorAnswerInvalid, "rekor.verify.tlog.body.signature"),
        (201, altered(lambda a: a["inclusionProof"].update(hashes=[
            base64.b64encode(b"\1" * 32).decode()])), rc.RekorAnswerInvalid,
         "rekor.verify.tlog.inclusion"),
        (201, altered(bad_note), rc.RekorAnswerInvalid, "rekor.verify.tlog.checkpoint"),
        (201, altered(lambda a: a.update(inclusionPromise={"signedEntryTimestamp": "AAAA"})),
         rc.RekorAnswerInvalid, "rekor.verify.tlog.set"),
        (201, b"[]", rc.RekorAnswerInvalid, "rekor.verify.tlog"),
        (201, b"not json", rc.RekorAnswerInvalid, "rekor.verify"),
        (503, b'{"code":14,"message":"tessera is down"}', rc.RekorRefused, "rekor"),
    ]
    _Replay.answers = [(code, body) for code, body, _, _ in cases]
    liar, thread = _serve(_Replay)
    liar_url = f"http://127.0.0.1:{liar.server_address[1]}"
    try:
        for _, _, error, check in cases:
            with pytest.raises(error) as caught:
                rc.log_bundle(rc.RekorTarget(liar_url, LOG.public_key, None, api_version=2),
                              bundle, SIGNER.public_key)
            assert caught.value.check.startswith(check), (check, caught.value)
            assert f"{liar_url}/api/v2/log/entries" in str(caught.value.detail)
            assert caught.value.hint
        _Replay.answers, _Replay.delay = [(201, genuine)], 0.6
        with pytest.raises(rc.RekorTimeout, match=r"did not answer within 0\.2 s"):
            rc.log_bundle(rc.RekorTarget(liar_url, LOG.public_key, None, timeout=0.2,
                                         api_version=2), bundle, SIGNER.public_key)
    finally:
        _Replay.delay = 0.0
        liar.shutdown()
        liar.server_close()
        thread.join()
    with pytest.raises(rc.RekorAnswerInvalid) as wrong_key:  # the genuine log, another key
        rc.log_bundle(rc.RekorTarget(url, SIGNER.public_key, None, api_version=2), bundle,
                      SIGNER.public_key)
    assert wrong_key.value.check == "rekor.verify.tlog.logid"
    with pytest.raises(rc.RekorUnreachable):
        rc.log_bundle(rc.RekorTarget("http://127.0.0.1:9", LOG.public_key, None, timeout=5,
                                     api_version=2), bundle, SIGNER.public_key)
    assert _log_size(path) == 2  # only the two genuine entries


# -- choosing v1 or v2 --------------------------------------------------------------------------


def _config(*services: dict[str, Any], selector: dict[str, Any] | None = None) -> bytes:
    """A signing config shaped as sigstore-python's test/assets/signing_config/
    signingconfig.v2.json (v1 listed first, v2 after)."""
    return json.dumps({
        "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
        "caUrls": [], "oidcUrls": [], "tsaUrls": [],
        "rekorTlogUrls": list(services) or [
            {"url": "https://rekor.example.com", "majorApiVersion": 1,
             "validFor": {"start": "2021-01-12T11:53:27Z"}},
            {"url": "https://rekor-v2.example.com", "majorApiVersion": 2,
             "validFor": {"start": "2021-01-12T11:53:27Z"}},
        ],
        "rekorTlogConfig": selector or {"selector": "ANY"},
    }).encode()


def test_signing_config_chooses_the_rekor_and_its_api_version() -> None:
    choose = rc.rekor_from_signing_config
    assert choose(_config(), None, NOW) == ("https://rekor-v2.example.com", 2)  # highest first
    assert choose(_config(), "https://rekor.example.com", NOW) == ("https://rekor.example.com", 1)
    assert choose(_config(), "https://rekor-v2.example.com", NOW)[1] == 2
    expired = {"url": "https://rekor-v2.example.com", "majorApiVersion": 2,
               "validFor": {"start": "2021-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}}
    future = {"url": "https://rekor-v3.example.com", "majorApiVersion": 3,
              "validFor": {"start": "2021-01-01T00:00:00Z"}}
    v1 = {"url": "https://rekor.example.com", "majorApiVersion": 1,
          "validFor": {"start": "2021-01-01T00:00:00Z"}}
    assert choose(_config(expired, future, v1), None, NOW) == ("https://rekor.example.com", 1)
    for document, url, message in (
        (_config(expired), None, "no Rekor the signing config"),
        (_config(), "https://rekor.elsewhere.example", "rekor.elsewhere.example among"),
        (_config(selector={"selector": "ALL"}), None, "entries in ALL"),
        (_config(selector={"selector": "EXACT", "count": 2}), None, "EXACT 2"),
        (b'{"mediaType": "application/vnd.dev.sigstore.signingconfig.v0.1+json"}', None,
         "mediaType"),
        (b"[1]", None, "not a JSON object"),
        (_config({"url": "https://x/api", "majorApiVersion": 2, "validFor": {"start": "x"}}),
         None, "rekorTlogUrls\\[0\\].url"),
    ):
        with pytest.raises(rc.SigningConfigInvalid, match=message):
            choose(document, None if url is None else rc.normalise_url(url), NOW)
