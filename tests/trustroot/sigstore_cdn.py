"""The real public-good Sigstore TUF repository, laid out as its CDN serves it.

``tests/fixtures/sigstore-root-signing`` (see its README; a byte-for-byte copy of
``../shared/interop/sigstore-root-signing``) is github.com/sigstore/root-signing
at commit 60cf2ce8 (2026-08-21): git keeps un-prefixed names, the CDN serves consistent snapshots
(``N.root.json``, ``N.snapshot.json``, ``N.targets.json``, ``N.<role>.json``, and every target as
``targets/<hash>.<name>`` for each hash its targets metadata lists: sha256 upstream).
:func:`lay_out_cdn` builds that tree.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

UPSTREAM = Path(__file__).parents[1] / "fixtures" / "sigstore-root-signing"
INSIDE_VALIDITY = datetime(2026, 8, 22, tzinfo=UTC)
"""Timestamp v762 was signed 2026-08-21 and expires 2026-08-28T19:25:56Z."""
INSIDE_VALIDITY_ENV = "2026-08-22T00:00:00Z"


def _version(path: Path) -> int:
    return int(json.loads(path.read_bytes())["signed"]["version"])


def lay_out_cdn(to: Path) -> Path:
    """Write the CDN layout of the upstream copy into ``to`` (created) and return it."""
    metadata = UPSTREAM / "metadata"
    to.mkdir(parents=True)
    for root in (metadata / "root_history").glob("*.root.json"):
        shutil.copyfile(root, to / root.name)
    shutil.copyfile(metadata / "timestamp.json", to / "timestamp.json")
    for role in ("snapshot", "targets", "registry.npmjs.org"):
        source = metadata / f"{role}.json"
        shutil.copyfile(source, to / f"{_version(source)}.{role}.json")
    for role in ("targets", "registry.npmjs.org"):
        signed = json.loads((metadata / f"{role}.json").read_bytes())["signed"]
        for name, info in signed["targets"].items():
            data = (UPSTREAM / "targets" / name).read_bytes()
            directory, _, base = name.rpartition("/")
            for digest in info["hashes"].values():  # upstream lists sha256 only
                prefixed = to / "targets" / directory / f"{digest}.{base}"
                prefixed.parent.mkdir(parents=True, exist_ok=True)
                prefixed.write_bytes(data)
    return to


def upstream_target(name: str) -> bytes:
    return (UPSTREAM / "targets" / name).read_bytes()


@contextlib.contextmanager
def served(root: Path) -> Iterator[str]:
    """``root`` over a loopback HTTP server, as the CDN would serve it; yields its base URL."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
