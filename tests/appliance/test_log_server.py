"""`airseal log serve` (Rekor v1 API + C2SP tiles) and the `--rekor-url` client against it.

The server runs for real on loopback (port 0) in a thread of the test, over a real SQLite log;
one test runs the CLI command itself and stops it with SIGTERM.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from airseal._internal.migrations import migrate
from airseal.appliance import rekor_client as rc
from airseal.appliance import tlog_store as ts
from airseal.appliance.db import MIGRATIONS
from airseal.appliance.log_server import LogHttpServer, LogService, parse_listen
from airseal.trustroot.bundle import bundle_to_json, message_signature_bundle
from airseal.trustroot.signer import PrivateKeySigner
from airseal.trustroot.tlog import entries, merkle, rekor_api
from airseal.trustroot.tlog.checkpoint import verify_checkpoint

ORIGIN = "log.test.example"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
LOG = PrivateKeySigner(ec.derive_private_key(0x5E_4E_10C, ec.SECP256R1()))
SIGNER = PrivateKeySigner(ec.derive_private_key(0xB10B, ec.SECP256R1()))


def _body(i: int) -> bytes:
    return f'{{"apiVersion":"0.0.1","kind":"hashedrekord","n":{i}}}'.encode()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A log of 300 entries (one full tile and a partial one) served on loopback."""
    path = tmp_path / "log.db"

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn, MIGRATIONS)
    ts.create_log(conn, origin=ORIGIN, key_name="k", public_key=LOG.public_key, signer=LOG,
                  now=NOW)
    batch = [ts.NewEntry("hashedrekord", _body(i), f"e{i}") for i in range(300)]
    ts.TransparencyLog(conn).append(batch, LOG, now=NOW)
    conn.close()
    server = LogHttpServer(
        ("127.0.0.1", 0), LogService(path, signer=LOG, clock=lambda: NOW), quiet=True
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.url, path
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _request(url: str, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), data


def _json(url: str, path: str, payload: object | None = None) -> tuple[int, object]:
    if payload is None:
        status, _, data = _request(url, "GET", path)
    else:
        body = json.dumps(payload).encode()
        status, _, data = _request(url, "POST", path, body, {"Content-Type": "application/json"})
    return status, json.loads(data)


def _signed_bundle(content: bytes) -> bytes:
    digest = hashlib.sha256(content).digest()
    return bundle_to_json(
        message_signature_bundle(SIGNER.public_key, digest, SIGNER.sign_digest(digest))
    )


def test_read_api_and_tiles(served: tuple[str, Path], tmp_path: Path) -> None:
    url, path = served
    status, info = _json(url, "/api/v1/log")
    assert status == 200 and info["treeSize"] == 300
    point = verify_checkpoint(info["signedTreeHead"], key=LOG.public_key, name=ORIGIN,
                              origin=ORIGIN)
    assert point.root_hash.hex() == info["rootHash"]
    status, _, pem = _request(url, "GET", "/api/v1/log/publicKey")
    assert status == 200 and b"BEGIN PUBLIC KEY" in pem

    status, by_index = _json(url, "/api/v1/log/entries?logIndex=257")
    entry = rekor_api.parse_log_entry(by_index)
    assert entry.log_index == 257 and entry.body == _body(257)
    entries.verify_tlog_entry(entry, log_key=LOG.public_key, name=ORIGIN, origin=ORIGIN,
                              signed=None)
    uuid = next(iter(by_index))
    assert _json(url, f"/api/v1/log/entries/{uuid}") == (200, by_index)
    assert _json(url, f"/api/v1/log/entries/{'0' * 16}{uuid}") == (200, by_index)
    status, found = _json(url, "/api/v1/log/entries/retrieve",
                          {"entryUUIDs": [uuid], "logIndexes": [3, 9999]})
    assert status == 200 and [next(iter(f.values()))["logIndex"] for f in found] == [3, 257]

    status, proof = _json(url, "/api/v1/log/proof?firstSize=10&lastSize=300")
    assert status == 200

    log = ts.TransparencyLog(sqlite3.connect(path, isolation_level=None))
    merkle.verify_consistency(10, 300, [bytes.fromhex(h) for h in proof["hashes"]],
                              log.root(10), bytes.fromhex(proof["rootHash"]))

    # The C2SP read paths serve exactly what `log export` writes.
    exported = tmp_path / "static"
    exported.mkdir()
    written = log.export_tiles(exported)
    assert len(written) == 6  # checkpoint, 2 level-0 tiles, 2 entry bundles, level 1 (1 hash)
    for file in written:
        status, _, data = _request(url, "GET", "/" + str(file.relative_to(exported)))
        assert (status, data) == (200, file.read_bytes()), file
    assert _request(url, "GET", "/tile/0/001.p/10")[2] == (exported / "tile/0/001.p/44")\
        .read_bytes()[: 10 * 32]

    for bad in ("/api/v1/log/entries?logIndex=300", "/api/v1/log/entries/" + "ab" * 32,
                "/tile/0/001", "/tile/0/000.p/256", "/tile/0/x000/000", "/tile/0/002.p/1",
                "/nothing", "/tile/../../etc/passwd"):
        status, _, data = _request(url, "GET", bad)
        assert status == 404, bad
        assert json.loads(data)["code"] == 404
    for bad in ("/api/v1/log/proof?firstSize=0&lastSize=3", "/api/v1/log/proof?firstSize=5",
                "/api/v1/log/proof?firstSize=5&lastSize=301", "/api/v1/log/entries?logIndex=-1"):
        status, error = _json(url, bad)
        assert status == 400 and error["code"] == 400 and error["message"], bad


def test_entry_creation_verifies_before_appending(served: tuple[str, Path]) -> None:
    url, _ = served
    bundle = json.loads(_signed_bundle(b"tool v1"))
    sig = bundle["messageSignature"]
    proposed = rekor_api.proposed_hashedrekord(
        base64.b64decode(sig["messageDigest"]["digest"]), base64.b64decode(sig["signature"]),
        SIGNER.public_key,
    )
    body = json.dumps(proposed).encode()
    status, headers, data = _request(url, "POST", "/api/v1/log/entries", body,
                                     {"Content-Type": "application/json"})
    assert status == 201
    entry = rekor_api.parse_log_entry(json.loads(data))
    assert entry.log_index == 300 and headers["Location"].endswith(headers["ETag"])
    rekor_api.verify_rekor_entry(entry, log_key=LOG.public_key, name=ORIGIN,
                                 signed=entries.signed_content_of_bundle(bundle))
    again = _request(url, "POST", "/api/v1/log/entries", body)
    assert again[0] == 409 and again[1]["Location"] == headers["Location"]

    forged = json.loads(body)
    forged["spec"]["data"]["hash"]["value"] = "00" * 32
    status, error = _json(url, "/api/v1/log/entries", forged)
    assert status == 400 and "does not verify" in error["message"]
    assert _json(url, "/api/v1/log")[1]["treeSize"] == 301  # nothing appended for it

    too_big = b"{" + b" " * (entries.MAX_BODY_BYTES + 1) + b"}"
    assert _request(url, "POST", "/api/v1/log/entries", too_big)[0] == 413
    host, port = url.removeprefix("http://").split(":")
    raw = http.client.HTTPConnection(host, int(port), timeout=10)
    raw.putrequest("POST", "/api/v1/log/entries")
    raw.putheader("Transfer-Encoding", "chunked")
    raw.endheaders()
    raw.send(b"0\r\n\r\n")
    assert raw.getresponse().status == 411
    raw.close()
    assert _request(url, "POST", "/api/v1/log/entries", b"not json")[0] == 400
    deep = b"[" * 100_000 + b"]" * 100_000
    assert _request(url, "POST", "/api/v1/log/entries/retrieve", deep)[0] == 400
    many = "&".join(f"f{i}=1" for i in range(20))
    assert _request(url, "GET", f"/api/v1/log/entries?{many}")[0] == 400
    status, error = _json(url, "/api/v1/log/entries/retrieve", {"entryUUIDs": ["zz"]})
    assert status == 400 and "UUID" in error["message"]


def test_rekor_client_against_log_serve(served: tuple[str, Path]) -> None:
    url, _ = served
    bundle = _signed_bundle(b"payload")
    target = rc.RekorTarget(url, LOG.public_key, None)
    entry = rc.log_bundle(target, bundle, SIGNER.public_key)
    stored = json.loads(ts.with_tlog_entry(bundle, entry))
    checked, point = entries.verify_bundle_log_entry(
        stored, log_key=LOG.public_key, name=ORIGIN, origin=ORIGIN
    )
    assert checked.log_index == 300 and point.size == 301

    with pytest.raises(rc.RekorAnswerInvalid) as wrong:  # the log's answer, another key
        rc.log_bundle(rc.RekorTarget(url, SIGNER.public_key, None), _signed_bundle(b"x"),
                      SIGNER.public_key)
    assert "tlog.logid" in str(wrong.value)
    forged = json.loads(bundle)
    forged["messageSignature"]["messageDigest"]["digest"] = base64.b64encode(b"\0" * 32).decode()
    with pytest.raises(rc.RekorRefused, match=r"HTTP 400.*does not verify"):
        rc.log_bundle(target, json.dumps(forged).encode(), SIGNER.public_key)
    with pytest.raises(rc.RekorUnreachable):
        rc.log_bundle(rc.RekorTarget("http://127.0.0.1:9", LOG.public_key, None, timeout=5),
                      bundle, SIGNER.public_key)


def test_rekor_client_logs_a_dsse_bundle_and_refuses_bad_answers(
    served: tuple[str, Path],
) -> None:
    from airseal.trustroot.dsse import pae

    url, _ = served
    payload, kind = b'{"_type":"https://in-toto.io/Statement/v1"}', "application/vnd.in-toto+json"
    bundle = json.dumps({"dsseEnvelope": {
        "payload": base64.b64encode(payload).decode(), "payloadType": kind,
        "signatures": [{"sig": base64.b64encode(SIGNER.sign_message(pae(kind, payload)))
                        .decode(), "keyid": ""}]}, "verificationMaterial": {}}).encode()
    entry = rc.log_bundle(rc.RekorTarget(url, LOG.public_key, None), bundle, SIGNER.public_key)
    assert (entry.kind, entry.log_index) == ("dsse", 300)

    # A "Rekor" that answers 201 with garbage, too much, or an error: each a distinct refusal.
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answers = iter([(201, b"not json"), (201, b"{" * (rekor_api.MAX_RESPONSE_BYTES + 2)),
                    (500, b'{"code":500,"message":"trillian is down"}'), (200, b"{}")])

    class Liar(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            code, body = next(answers)
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    liar = ThreadingHTTPServer(("127.0.0.1", 0), Liar)
    thread = threading.Thread(target=liar.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    target = rc.RekorTarget(f"http://127.0.0.1:{liar.server_address[1]}", LOG.public_key, None)
    try:
        with pytest.raises(rc.RekorAnswerInvalid, match="not JSON"):
            rc.log_bundle(target, _signed_bundle(b"a"), SIGNER.public_key)
        with pytest.raises(rc.RekorAnswerInvalid, match="larger than"):
            rc.log_bundle(target, _signed_bundle(b"b"), SIGNER.public_key)
        with pytest.raises(rc.RekorRefused, match="HTTP 500: trillian is down"):
            rc.log_bundle(target, _signed_bundle(b"c"), SIGNER.public_key)
        with pytest.raises(rc.RekorRefused, match="expected 201"):
            rc.log_bundle(target, _signed_bundle(b"d"), SIGNER.public_key)
    finally:
        liar.shutdown()
        liar.server_close()
        thread.join()


def test_read_only_and_listen_parsing(tmp_path: Path, served: tuple[str, Path]) -> None:
    _, path = served
    service = LogService(path, signer=None, clock=lambda: NOW)
    server = LogHttpServer(("127.0.0.1", 0), service, quiet=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        status, error = _json(server.url, "/api/v1/log/entries", {"kind": "hashedrekord"})
        assert status == 405 and "read-only" in error["message"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listen("[::1]:3000") == ("::1", 3000)
    for bad in ("127.0.0.1", ":80", "host:99999", "http://x:1", "a b:1"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_listen(bad)


def test_trusted_root_names_the_rekor_key() -> None:
    from airseal.trustroot.keys import spki_der

    document = json.dumps({"tlogs": [
        {"baseUrl": "https://rekor.old.example", "publicKey": {
            "rawBytes": base64.b64encode(spki_der(SIGNER.public_key)).decode(),
            "validFor": {"start": "2020-01-01T00:00:00Z"}}},
        {"baseUrl": "https://rekor.site.example:443/", "publicKey": {
            "rawBytes": base64.b64encode(spki_der(LOG.public_key)).decode(),
            "validFor": {"start": "2020-01-01T00:00:00Z", "end": "2021-01-01T00:00:00Z"}}},
        {"baseUrl": "https://REKOR.site.example", "publicKey": {
            "rawBytes": base64.b64encode(spki_der(LOG.public_key)).decode(),
            "validFor": {"start": "2021-01-01T00:00:00Z"}}},
    ]}).encode()
    url = rc.normalise_url("https://rekor.site.example/")
    key, name = rc.key_from_trusted_root(document, url, NOW)
    assert (spki_der(key), name) == (spki_der(LOG.public_key), "rekor.site.example")
    with pytest.raises(rc.RekorKeyUnknown):
        rc.key_from_trusted_root(document, rc.normalise_url("http://rekor.site.example"), NOW)
    for bad in ("ftp://x", "https://x/path", "file:///etc/passwd", "https://x:70000"):
        with pytest.raises(ValueError, match="not an http"):
            rc.normalise_url(bad)


def test_cli_serve_and_sign_blob_rekor_url(airseal, appliance_home, tmp_path: Path) -> None:
    """End to end: `airseal log serve` in its own process, `sign-blob --rekor-url` to it, the
    bundle verifies offline, and SIGTERM stops the server cleanly."""
    for name in ("signer", "logkey"):
        assert airseal("key", "generate", name).code == 0
    assert airseal("log", "init", "--key", "logkey", "--origin", ORIGIN).code == 0
    env = dict(os.environ, COSIGN_PASSWORD="correct horse battery staple")
    server = subprocess.Popen(
        [sys.executable, "-m", "airseal", "log", "serve", "--listen", "127.0.0.1:0", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert url is not None, line + (server.stderr.read() if server.stderr else "")
        blob, bundle = tmp_path / "tool.bin", tmp_path / "tool.sigstore.json"
        blob.write_bytes(b"tool")
        signed = airseal("sign-blob", str(blob), "--key", "signer", "--bundle", str(bundle),
                         "--rekor-url", url.group(0), "--rekor-key", "logkey")
        assert signed.code == 0, signed.stderr
        refused = airseal("sign-blob", str(blob), "--key", "signer", "--rekor-url",
                          url.group(0))  # no key for it anywhere: nothing is sent
        assert refused.code == 3 and "--rekor-key" in refused.stderr
        # Rekor v2 where the site's signing config says so; a wrong key: refused, no bundle.
        config = tmp_path / "signing_config.json"
        config.write_text(json.dumps({
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "rekorTlogUrls": [{"url": url.group(0), "majorApiVersion": 2,
                               "validFor": {"start": "2020-01-01T00:00:00Z"}}]}))
        v2_bundle = tmp_path / "tool.v2.sigstore.json"
        signed_v2 = airseal("sign-blob", str(blob), "--key", "signer", "--bundle",
                            str(v2_bundle), "--signing-config", str(config),
                            "--rekor-key", "logkey")
        assert signed_v2.code == 0, signed_v2.stderr
        wrong = airseal("sign-blob", str(blob), "--key", "signer", "--bundle",
                        str(tmp_path / "no.json"), "--rekor-url", url.group(0),
                        "--signing-config", str(config), "--rekor-key", "signer")
        assert wrong.code != 0 and "rekor.verify.tlog.logid" in wrong.stderr, wrong.stderr
        assert "/api/v2/log/entries" in wrong.stderr
        assert not (tmp_path / "no.json").exists()
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=20)
    assert server.returncode == 0, err
    assert "Stopped." in out
    stored = json.loads(bundle.read_text())

    from airseal.trustroot.keys import load_public_key

    db = sqlite3.connect(appliance_home / "airseal.db")
    pem, size = db.execute("SELECT public_key_pem, size FROM log").fetchone()
    audited = [row[0] for row in db.execute("SELECT action FROM audit")]
    assert "log-serve" in audited
    db.close()
    assert size == 3  # appended by the server: v1, v2, and the v2 entry refused client-side
    (item,) = json.loads(v2_bundle.read_text())["verificationMaterial"]["tlogEntries"]
    assert item["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.2"}
    assert "inclusionPromise" not in item
    checked = airseal("log", "verify")  # the log holding 0.0.2 entries still verifies whole
    assert checked.code == 0, checked.stderr
    _, point = entries.verify_bundle_log_entry(
        stored, log_key=load_public_key(pem.encode()), name=ORIGIN, origin=ORIGIN
    )
    assert point.size == 1
