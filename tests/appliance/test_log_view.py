"""The Log screen's read model: what a search matches, and a home without a log."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from airseal._internal.migrations import migrate
from airseal.appliance.db import MIGRATIONS
from airseal.appliance.log_view import log_overview
from airseal.appliance.tlog_store import NewEntry, TransparencyLog, create_log
from airseal.trustroot.signer import PrivateKeySigner
from airseal.trustroot.tlog import entries

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DIGESTS = [hashlib.sha256(b"file %d" % i).digest() for i in range(3)]


@pytest.fixture
def conn() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    migrate(db, MIGRATIONS)
    return db


def _fill(conn: sqlite3.Connection) -> None:
    signer = PrivateKeySigner(ec.derive_private_key(0x1E, ec.SECP256R1()))
    create_log(conn, origin="log.view.example", key_name="k", public_key=signer.public_key,
               signer=signer, now=NOW)
    new = [
        NewEntry(entries.HASHEDREKORD,
                 entries.hashedrekord_body(d, b"\x30" * 70, signer.public_key), f"blob f{i}.bin")
        for i, d in enumerate(DIGESTS)
    ]
    new.append(NewEntry(entries.DSSE, entries.dsse_body(b"{}", b"payload", b"s", signer.public_key),
                        "action 0123abcd4567 v2"))
    TransparencyLog(conn).append(new, signer, now=NOW)


def _found(conn: sqlite3.Connection, search: str) -> list[int]:
    return [e.index for e in log_overview(conn, search=search).entries]


def test_search_by_digest_subject_leaf_and_index(conn: sqlite3.Connection) -> None:
    _fill(conn)
    view = log_overview(conn)
    assert view.exists and view.size == 4 and view.checkpoint_size == 4
    assert view.checkpoint_time == "2026-03-02T09:30:00Z" and view.witnesses == ()
    assert view.witness_lines() == ["Witnesses: none configured"]
    assert [e.index for e in view.entries] == [3, 2, 1, 0]
    assert view.entries[3].digest == DIGESTS[0].hex()
    assert view.entries[0].digest == hashlib.sha256(b"payload").hexdigest()
    assert view.entries[0].integrated == "2026-03-02T09:30:00Z"

    assert _found(conn, DIGESTS[1].hex()[:8].upper()) == [1]  # a digest prefix, any case
    assert _found(conn, DIGESTS[2].hex()) == [2]
    assert _found(conn, hashlib.sha256(b"payload").hexdigest()[:10]) == [3]  # dsse payload
    assert _found(conn, view.entries[2].leaf_hash[:12]) == [1]  # a leaf hash prefix
    assert _found(conn, "0123ABCD") == [3]  # an action id (subject), any case
    assert _found(conn, "blob") == [2, 1, 0] and _found(conn, "dsse") == [3]
    assert _found(conn, "2") == [3, 2]  # index 2, and "v2" in a subject
    short = DIGESTS[0].hex()[2:7]  # inside a digest, but too short to be taken for one
    assert _found(conn, short) == []
    assert len(log_overview(conn, limit=2).entries) == 2


def test_no_log_is_not_an_error(conn: sqlite3.Connection) -> None:
    view = log_overview(conn, search="x")
    assert not view.exists and view.entries == ()
    assert "airseal log init" in "\n".join(view.summary())


def test_witness_views_show_each_policy_witness_and_its_cosignature() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from airseal.appliance.log_view import witness_views
    from airseal.trustroot.tlog.cosignature import WitnessKey, cosign
    from tests.trustroot.test_tlog_media import NOTE

    def witness(name: str) -> tuple[WitnessKey, ed25519.Ed25519PrivateKey]:
        key = ed25519.Ed25519PrivateKey.generate()
        raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return WitnessKey(name, raw), key

    (a, ka), (b, _kb) = witness("w.example/a"), witness("w.example/b")
    cosigned = cosign(NOTE, a, ka.sign, timestamp=1_700_000_000)
    shown = witness_views([a, b], cosigned)
    assert [w.describe() for w in shown] == [
        f"w.example/a ({a.key_id.hex()}): cosigned size "
        f"{int(NOTE.splitlines()[1])} at 2023-11-14T22:13:20Z",
        f"w.example/b ({b.key_id.hex()}): never cosigned",
    ]
    # no kept note, or a line that does not verify: nobody is shown as having cosigned
    assert all(w.last_cosigned is None for w in witness_views([a, b], None))
    forged = cosign(NOTE, a, witness("w.example/a")[1].sign, timestamp=1)
    assert all(w.last_cosigned is None for w in witness_views([a, b], forged))
    assert witness_views([], cosigned) == ()
