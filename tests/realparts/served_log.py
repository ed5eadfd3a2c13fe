"""A real appliance log served on loopback by `airseal log serve`'s own server, for tests that
need a Rekor-API server (ours, or "another Rekor" with its own key and origin)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from airseal._internal.migrations import migrate
from airseal.appliance import tlog_store
from airseal.appliance.db import MIGRATIONS
from airseal.appliance.log_server import LogHttpServer, LogService
from airseal.trustroot.signer import Signer


@contextmanager
def served_log(path: Path, signer: Signer, origin: str,
               clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Iterator[str]:
    """Create an empty log at ``path`` (key ``signer``, ``origin``), serve it, yield its URL;
    the server is stopped and its thread joined on exit."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn, MIGRATIONS)
    tlog_store.create_log(conn, origin=origin, key_name="k", public_key=signer.public_key,
                          signer=signer, now=clock())
    conn.close()
    server = LogHttpServer(("127.0.0.1", 0), LogService(path, signer=signer, clock=clock),
                           quiet=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
