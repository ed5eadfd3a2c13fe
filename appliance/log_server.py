"""`airseal log serve`: the embedded log over the Rekor v1 REST API (and v2's one write route) and
the C2SP tlog-tiles paths.

Routes (all JSON errors are Rekor's ``{code, message}``):

- ``GET /api/v1/log``: ``LogInfo`` (size, root, signed tree head = the latest checkpoint, tree id)
- ``GET /api/v1/log/publicKey``: the log key, PEM
- ``GET /api/v1/log/proof?firstSize=&lastSize=``: ``ConsistencyProof``
- ``GET /api/v1/log/entries?logIndex=N`` and ``GET /api/v1/log/entries/{uuid}``: ``LogEntry``
- ``POST /api/v1/log/entries/retrieve``: ``SearchLogQuery`` (``entryUUIDs``, ``logIndexes``,
  ``entries``) -> list of ``LogEntry``
- ``POST /api/v1/log/entries``: a ``hashedrekord`` or ``dsse`` 0.0.1 ``ProposedEntry``; its
  signature is verified (over the digest, or the DSSE PAE) before it is appended; 201 with the
  ``LogEntry`` (SET and inclusion proof), 409 with ``Location`` when it is already logged
- ``POST /api/v2/log/entries``: Rekor v2's ``CreateEntryRequest`` (``hashedRekordRequestV002``
  or ``dsseRequestV002``), verified the same way; 201 with the ``TransparencyLogEntry`` of the
  ``0.0.2`` entry (inclusion proof and checkpoint, no SET, as rekor-tiles answers). An entry
  already logged is answered with the existing one (Rekor v2 deduplicates rather than refuse)
- ``GET /checkpoint``, ``/tile/<L>/<N>[.p/<W>]``, ``/tile/entries/<N>[.p/<W>]``: C2SP tlog-tiles

Guarantees: the stdlib :class:`~http.server.ThreadingHTTPServer` (no new dependency); every
request opens its own SQLite connection (connections stay in their thread), appends are
serialised behind one lock (the log key signs one at a time, as a token requires) and are each
one transaction (:class:`~airseal.appliance.tlog_store.TransparencyLog`); request bodies are
bounded and must carry a ``Content-Length``; the server binds only the address it is given and
stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airseal.appliance.tlog_store import LogError, NewEntry, TransparencyLog
from airseal.trustroot.errors import LogProofError
from airseal.trustroot.signer import Signer
from airseal.trustroot.tlog import entries, merkle, rekor_api, rekor_v2, tiles

MAX_REQUEST_BYTES = entries.MAX_BODY_BYTES
REQUEST_TIMEOUT_SECONDS = 30
_TILE = re.compile(r"^/tile/(entries|[0-9]{1,2})/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([0-9]{1,3}))?$")
_UUID_PATH = re.compile(r"^/api/v1/log/entries/([0-9a-fA-F]{64}|[0-9a-fA-F]{80})$")
IMMUTABLE = "public, max-age=31536000, immutable"


class HttpProblem(Exception):
    """An answer other than 2xx, sent as Rekor's ``{code, message}``."""

    def __init__(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.headers = code, message, headers or {}


class LogService:
    """The log as the API sees it: each call opens (and closes) its own connection."""

    def __init__(
        self, database_path: Path, *, signer: Signer | None, clock: Callable[[], datetime]
    ) -> None:
        self.database_path = database_path
        self.signer = signer
        self.clock = clock
        self._append_lock = threading.Lock()
        with self.log() as log:
            self.info = log.info

    @contextmanager
    def log(self) -> Iterator[TransparencyLog]:
        conn = sqlite3.connect(self.database_path, isolation_level=None, timeout=30)
        try:
            conn.execute("PRAGMA synchronous = FULL")
            yield TransparencyLog(conn)
        finally:
            conn.close()

    def log_info(self) -> dict[str, Any]:
        with self.log() as log:
            latest = log.latest_checkpoint()
        return rekor_api.log_info_json(latest.checkpoint, latest.note, self.info.log_id)

    def checkpoint(self) -> str:
        with self.log() as log:
            return log.latest_checkpoint().note

    def consistency(self, first: int, last: int) -> dict[str, Any]:
        with self.log() as log:
            size = log.size
            if not 1 <= first <= last <= size:
                raise HttpProblem(
                    400, f"firstSize {first} and lastSize {last} must satisfy "
                    f"1 <= firstSize <= lastSize <= {size} (the tree size)"
                )
            hashes = log.consistency(first, last)
            root = log.root(last)
        return rekor_api.consistency_json(root, hashes)

    def entry_by_index(self, index: int) -> dict[str, Any]:
        with self.log() as log:
            if index >= log.size:
                raise HttpProblem(404, f"no entry at logIndex {index} (tree size {log.size})")
            return rekor_api.log_entry_json(log.entry(index))

    def _index_of_leaf(self, log: TransparencyLog, leaf: bytes) -> int | None:
        return log.index_of_leaf(leaf)

    def entry_by_uuid(self, uuid: str) -> dict[str, Any]:
        leaf = rekor_api.leaf_of_uuid(uuid)
        with self.log() as log:
            index = self._index_of_leaf(log, leaf)
            if index is None:
                raise HttpProblem(404, f"no entry with UUID {uuid.lower()}")
            return rekor_api.log_entry_json(log.entry(index))

    def retrieve(self, query: Any) -> list[dict[str, Any]]:
        if not isinstance(query, dict) or set(query) - {"entryUUIDs", "logIndexes", "entries"}:
            raise HttpProblem(400, "a SearchLogQuery holds entryUUIDs, logIndexes or entries")
        uuids = query.get("entryUUIDs") or []
        indexes = query.get("logIndexes") or []
        proposed = query.get("entries") or []
        if not all(isinstance(x, list) for x in (uuids, indexes, proposed)):
            raise HttpProblem(400, "entryUUIDs, logIndexes and entries must be lists")
        if len(uuids) + len(indexes) + len(proposed) > rekor_api.MAX_RETRIEVE:
            raise HttpProblem(
                422, f"a query may name at most {rekor_api.MAX_RETRIEVE} entries in all"
            )
        leaves = [rekor_api.leaf_of_uuid(u) if isinstance(u, str) else b"" for u in uuids]
        for item in proposed:
            leaves.append(merkle.leaf_hash(rekor_api.accept_proposed(item)[1]))
        found: list[dict[str, Any]] = []
        with self.log() as log:
            size = log.size
            for index in indexes:
                if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                    raise HttpProblem(400, "logIndexes must be non-negative integers")
                if index < size:
                    found.append(rekor_api.log_entry_json(log.entry(index)))
            for leaf in leaves:
                at = self._index_of_leaf(log, leaf) if leaf else None
                if at is not None:
                    found.append(rekor_api.log_entry_json(log.entry(at)))
        return found

    def create(self, proposed: Any, client: str) -> tuple[str, dict[str, Any]]:
        """Verify a proposed ``hashedrekord`` or ``dsse`` entry and append it; (uuid, LogEntry)."""
        if self.signer is None:
            raise HttpProblem(
                405, "this log is served read-only (`airseal log serve --read-only`)"
            )
        kind, body = rekor_api.accept_proposed(proposed)
        uuid = rekor_api.entry_uuid(body)
        with self._append_lock, self.log() as log:
            if self._index_of_leaf(log, merkle.leaf_hash(body)) is not None:
                raise HttpProblem(
                    409,
                    f"an equivalent entry already exists in the transparency log with UUID {uuid}",
                    {"Location": f"/api/v1/log/entries/{uuid}"},
                )
            new = NewEntry(kind, body, f"rekor api from {client}")
            (index,), _ = log.append([new], self.signer, now=self.clock())
            return uuid, rekor_api.log_entry_json(log.entry(index))

    def create_v2(self, request: Any, client: str) -> dict[str, Any]:
        """Verify a Rekor v2 ``CreateEntryRequest``, append its ``0.0.2`` entry (or find it
        already logged); its ``TransparencyLogEntry``."""
        if self.signer is None:
            raise HttpProblem(
                405, "this log is served read-only (`airseal log serve --read-only`)"
            )
        kind, body = rekor_v2.accept_request(request)
        with self._append_lock, self.log() as log:
            index = self._index_of_leaf(log, merkle.leaf_hash(body))
            if index is None:
                new = NewEntry(kind, body, f"rekor api v2 from {client}")
                (index,), _ = log.append([new], self.signer, now=self.clock())
            key_id = rekor_v2.checkpoint_key_id(self.info.public_key, self.info.origin)
            return rekor_v2.transparency_log_entry_json(log.entry(index), key_id)

    def tile(self, kind: str, index_text: str, width_text: str | None) -> bytes:
        index = int(index_text.replace("x", "").replace("/", ""))
        if tiles.index_path(index) != index_text:
            raise HttpProblem(404, "tile index is not in its canonical form")
        width = tiles.TILE_WIDTH if width_text is None else int(width_text)
        if not 0 < width < tiles.TILE_WIDTH + (width_text is None):
            raise HttpProblem(404, f"partial tile width {width} is not in 1..255")
        with self.log() as log:
            level = 0 if kind == "entries" else int(kind)
            row = log.conn.execute(
                "SELECT length(hashes) FROM log_tiles WHERE level = ? AND idx = ?", [level, index]
            ).fetchone()
            if row is None or int(row[0]) < width * merkle.HASH_SIZE:
                raise HttpProblem(404, "no such tile in this log")
            if kind == "entries":
                return log.entry_bundle(index, width)
            return log.read_tile(level, index)[: width * merkle.HASH_SIZE]


class _Handler(BaseHTTPRequestHandler):
    server: LogHttpServer
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_SECONDS
    server_version = "airseal-log"
    sys_version = ""

    # -- plumbing -----------------------------------------------------------------------------

    def _send(
        self, code: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, value: Any, headers: dict[str, str] | None = None) -> None:
        body = (json.dumps(value) + "\n").encode("utf-8")
        self._send(code, body, "application/json", headers)

    def _read_json(self) -> Any:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise HttpProblem(411, "send the body with a Content-Length, not chunked")
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            raise HttpProblem(411, "a Content-Length header is required")
        length = int(length_text)
        if length > MAX_REQUEST_BYTES:
            self.close_connection = True
            raise HttpProblem(413, f"request body larger than {MAX_REQUEST_BYTES} bytes")
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise HttpProblem(400, "the request body is not JSON (or nests too deep)") from None

    def _dispatch(self, route: Callable[[], None]) -> None:
        try:
            route()
            return
        except HttpProblem as problem:
            code, message, headers = problem.code, problem.message, problem.headers
        except LogProofError as exc:
            code, message, headers = 400, exc.detail, {}
        except ValueError as exc:  # e.g. too many query fields
            code, message, headers = 400, f"bad request: {exc}", {}
        except LogError as exc:
            code, message, headers = 500, exc.detail, {}
        except (sqlite3.Error, OSError) as exc:
            code, message, headers = 500, f"the log could not be read: {exc}", {}
        except Exception as exc:  # answer, and keep serving the others
            self.log_error("internal error on %s: %r", self.path[:200], exc)
            code, message, headers = 500, "internal error", {}
        if self.command == "POST":
            self.close_connection = True  # the body may be unread: do not reuse the stream
        self._json(code, rekor_api.error_json(code, message), headers)

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            super().log_message(format, *args)

    # -- routes -------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch(self._get)

    def do_HEAD(self) -> None:
        self._dispatch(self._get)

    def do_POST(self) -> None:
        self._dispatch(self._post)

    def _get(self) -> None:
        service = self.server.service
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query, max_num_fields=8)
        if path == "/api/v1/log":
            self._json(200, service.log_info())
        elif path == "/api/v1/log/publicKey":
            self._send(200, service.info.public_key_pem.encode(), "application/x-pem-file")
        elif path == "/api/v1/log/proof":
            last = _query_int(query, "lastSize", None)
            self._json(200, service.consistency(_query_int(query, "firstSize", 1), last))
        elif path == "/api/v1/log/entries":
            self._json(200, service.entry_by_index(_query_int(query, "logIndex", None)))
        elif (match := _UUID_PATH.match(path)) is not None:
            self._json(200, service.entry_by_uuid(match.group(1)))
        elif path == "/checkpoint":
            self._send(200, service.checkpoint().encode(), "text/plain; charset=utf-8",
                       {"Cache-Control": "no-cache"})
        elif (tile := _TILE.match(path)) is not None:
            blob = service.tile(tile.group(1), tile.group(2), tile.group(3))
            self._send(200, blob, "application/octet-stream", {"Cache-Control": IMMUTABLE})
        else:
            raise HttpProblem(404, f"no such path {path[:200]!r}")

    def _post(self) -> None:
        service = self.server.service
        path = urlsplit(self.path).path
        if path == "/api/v1/log/entries":
            uuid, entry = service.create(self._read_json(), self.client_address[0])
            self._json(201, entry, {"Location": f"/api/v1/log/entries/{uuid}", "ETag": uuid})
        elif path == "/api/v2/log/entries":
            self._json(201, service.create_v2(self._read_json(), self.client_address[0]))
        elif path == "/api/v1/log/entries/retrieve":
            self._json(200, service.retrieve(self._read_json()))
        else:
            raise HttpProblem(404, f"no such path {path[:200]!r}")


def _query_int(query: dict[str, list[str]], name: str, default: int | None) -> int:
    values = query.get(name)
    if not values:
        if default is None:
            raise HttpProblem(400, f"query parameter {name} is required")
        return default
    text = values[0]
    if not text.isdigit() or len(text) > 19:
        raise HttpProblem(400, f"query parameter {name} must be a non-negative integer")
    return int(text)


class LogHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], service: LogService, *, quiet: bool) -> None:
        import socket

        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.service, self.quiet = service, quiet
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[0], self.server_address[1]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{host_text}]" if ":" in host_text else host_text
        return f"http://{shown}:{port}"


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6); port 0 asks the system for a free one."""
    match = re.match(r"^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$", listen)
    if match is None or int(match.group(3)) > 65535:
        raise ValueError(f"{listen!r} is not HOST:PORT (e.g. 127.0.0.1:3000 or [::1]:3000)")
    return (match.group(1) or match.group(2), int(match.group(3)))


def serve(server: LogHttpServer, on_ready: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM (when called in the main thread) or ``server.shutdown()``."""
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def stop(signum: int, _frame: Any) -> None:
            # shutdown() waits for serve_forever(), which runs in this very thread: ask from
            # another one.
            threading.Thread(target=server.shutdown, daemon=True).start()

        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, stop)
    try:
        on_ready(server.url)
        server.serve_forever(poll_interval=0.2)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        server.server_close()
        sys.stdout.flush()
