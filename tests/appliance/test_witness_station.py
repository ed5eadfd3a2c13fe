"""A witness station cosigns only checkpoints that extend the last one it cosigned."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from airseal.appliance.witness_station import WitnessError, WitnessStation
from airseal.trustroot.errors import LogProofError
from airseal.trustroot.keys import spki_pem
from airseal.trustroot.tlog.cosignature import WitnessKey, require_quorum
from tests.agent.log_media import SiteLog, new_site_log


class Password:
    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        return "witness password for tests"

    def notice(self, message: str) -> None:
        pass


def request(site: SiteLog, folder: Path, *, from_size: int | None = None) -> Path:
    """What `airseal log witness-request` writes: the latest checkpoint and one proof of
    consistency from the last exports' sizes (and ``from_size``)."""
    from airseal.appliance.tlog_store import media_log_files

    files = media_log_files(site.log, [], also_from=[from_size] if from_size else [])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "checkpoint").write_bytes(files.checkpoint)
    (folder / "proofs.json").write_bytes(files.proofs)
    (folder / "hashes").write_bytes(files.hashes)
    return folder


def grow(site: SiteLog, n: int) -> None:
    from airseal.appliance.tlog_store import NewEntry

    site.log.append([NewEntry("hashedrekord", b"{}%d" % i, "b") for i in range(n)],
                    site.signer, now=datetime.now(UTC))


def test_cosigns_forward_and_refuses_a_fork_or_a_gap(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("COSIGN_PASSWORD", raising=False)
    site = new_site_log()
    station = WitnessStation(tmp_path / "w", Password())
    log_pub = tmp_path / "log.pub"
    log_pub.write_bytes(spki_pem(site.signer.public_key))
    status = station.init("witness.site.example/w1", log_pub, site.origin)
    witness = WitnessKey.from_vkey(status.vkey)
    grow(site, 3)
    first = request(site, tmp_path / "r1")
    out = tmp_path / "r1" / "checkpoint.cosigned"
    assert station.cosign(first, out, now=datetime.now(UTC)).size == 3
    assert len(require_quorum(out.read_text(), [witness], 1)) == 1
    grow(site, 4)
    second = request(site, tmp_path / "r2", from_size=3)
    assert station.cosign(second, tmp_path / "c2", now=datetime.now(UTC)).size == 7
    assert station.status().last is not None and station.status().last.size == 7

    # another tree under the same key and origin (a split view): size 9 that does not extend 7
    forked = _same_key_log(site)
    grow(forked, 9)
    with pytest.raises(LogProofError) as refused:
        station.cosign(request(forked, tmp_path / "r3", from_size=7), tmp_path / "c3",
                       now=datetime.now(UTC))
    assert refused.value.check == "tlog.fork" and "size 7" in refused.value.detail
    assert not (tmp_path / "c3").exists() and station.status().last.size == 7
    grow(site, 2)
    with pytest.raises(WitnessError) as gap:  # no proof from 7 in this request
        station.cosign(request(site, tmp_path / "r4"), tmp_path / "c4", now=datetime.now(UTC))
    assert "--from-size 7" in (gap.value.hint or "")


def _same_key_log(site: SiteLog) -> SiteLog:
    import sqlite3

    from airseal.appliance.tlog_schema import LOG_MIGRATION
    from airseal.appliance.tlog_store import TransparencyLog, create_log

    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(LOG_MIGRATION)
    create_log(conn, origin=site.origin, key_name="k", public_key=site.signer.public_key,
               signer=site.signer, now=datetime.now(UTC))
    return SiteLog(TransparencyLog(conn), site.signer, site.origin)
