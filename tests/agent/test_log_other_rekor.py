"""Media whose action was logged in another Rekor (the appliance's ``--rekor-url``), not in the
site log the endpoint trusts: refused as ``tlog.logid`` through `airseal-agent import`, naming
the bundle, the other log and what to do, with nothing run and the stored checkpoint unchanged;
the courier's keyless check (`airseal media check`) already reports it.

The other Rekor is a real `airseal log serve` on loopback (its own SQLite log and key), reached
through the appliance's own Rekor client (:func:`airseal.appliance.rekor_client.log_bundle`),
as `action create --rekor-url` does. The appliance's export now refuses such an action before
writing anything (tests/appliance/test_rekor_site_log.py); these media are what an appliance
without that check, or a copy edited by hand, would carry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from airseal.agent.log_state import last_checkpoint
from airseal.agent.state import AgentState
from airseal.appliance import rekor_client, tlog_store
from airseal.media.check import check_media
from airseal.trustroot.signer import PrivateKeySigner, Signer
from airseal.trustroot.tlog.entries import log_id
from tests.realparts.served_log import served_log

from .helpers import Distributor
from .log_media import write_logged_media
from .test_log_proofs import Site, enrol_log, run

OTHER_ORIGIN = "rekor.other.example"


@pytest.fixture
def site(tmp_path: Path, distributor: Distributor) -> Site:
    return Site(tmp_path / "site", distributor)


@pytest.fixture
def other_rekor(tmp_path: Path) -> Iterator[rekor_client.RekorTarget]:
    """Another Rekor (v1 API) on loopback: `log serve`'s server over its own log and key."""
    key = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    with served_log(tmp_path / "other-rekor.db", key, OTHER_ORIGIN) as url:
        yield rekor_client.RekorTarget(url, key.public_key, None)


def logged_elsewhere(site: Site, target: rekor_client.RekorTarget, index: int) -> bytes:
    """Action ``index``'s bundle as signed, logged only in the other Rekor (its site-log
    entries dropped): what `action create --rekor-url` stores."""
    bundle = tlog_store.one_signature_bundle(site.actions[index].bundle, 0)
    entry = rekor_client.log_bundle(target, bundle, site.distributor.signer.public_key)
    return tlog_store.with_tlog_entry(bundle, entry)


@pytest.mark.slow
def test_an_action_logged_only_in_another_rekor_is_refused_by_the_cli(
    enrolled: AgentState, agent_signer: Signer, site: Site, other_rekor, agent_cli
) -> None:
    enrol_log(enrolled, site.log)
    assert run(enrolled, agent_signer, site.media("first")).status == "completed"
    before = last_checkpoint(enrolled.root)
    assert before is not None
    site.dest.unlink()
    for marker in site.markers.iterdir():
        marker.unlink()

    site.actions[1] = replace(site.actions[1], bundle=logged_elsewhere(site, other_rekor, 1))
    mount = write_logged_media(site.base / "second", site.log, site.distributor, site.actions,
                               export_id="export-2", sequence=2)
    bundle_file = "airseal/actions/run/action.sigstore.json"
    courier = check_media(mount)  # the courier hears it first, without keys
    assert courier.status == "damaged"
    assert [(f.path, f.check) for f in courier.damaged] == [(bundle_file, "tlog.logid")]
    assert "sign the action again at the appliance without --rekor-url" in \
        courier.damaged[0].reason
    result = agent_cli("import", str(mount), "--yes")
    assert result.code == 1, result.stdout + result.stderr
    assert f"{bundle_file}: transparency log proof failed [tlog.logid]" in result.stderr
    other_id = log_id(other_rekor.key).hex()[:16]
    assert f"another log (log id {other_id}...)" in result.stderr
    assert site.log.origin in result.stderr
    assert "hint: action run was logged in another Rekor (--rekor-url)" in result.stderr
    assert "`airseal action edit run`" in result.stderr
    assert site.nothing_ran()
    assert last_checkpoint(enrolled.root) == before


def test_an_entry_of_another_rekor_beside_one_of_the_site_log_is_accepted(
    enrolled: AgentState, agent_signer: Signer, site: Site, distributor: Distributor,
    other_rekor,
) -> None:
    """Signed with --rekor-url, then approved in the site log: the site log's entry counts (the
    site's threshold is 1), the other one is carried and ignored."""
    enrol_log(enrolled, site.log)
    elsewhere = logged_elsewhere(site, other_rekor, 0)
    entry = tlog_store.entry_for_bundle(elsewhere, distributor.signer.public_key, "approval")
    (index,), _ = site.log.log.append([entry], site.log.signer, now=datetime.now(UTC))
    both = tlog_store.adding_tlog_entry(elsewhere, site.log.log.entry(index))
    site.actions[0] = replace(site.actions[0], bundle=both)
    mount = site.media("mixed")
    assert check_media(mount).ok
    report = run(enrolled, agent_signer, mount)
    assert report.status == "completed", report.error


def test_the_couriers_check_names_an_action_with_no_entry_of_the_media_log(site: Site) -> None:
    """An action signed before the log existed, on media an appliance without the export's
    check wrote: the courier is told every log-checking endpoint refuses it."""
    unlogged = tlog_store.one_signature_bundle(site.actions[0].bundle, 0)
    site.actions[0] = replace(site.actions[0], bundle=unlogged)
    report = check_media(site.media("unlogged"))
    assert [(f.path, f.check) for f in report.damaged] == [
        ("airseal/actions/dl/action.sigstore.json", "tlog.entry")]
    assert f"no entry of log {site.log.origin}" in report.damaged[0].reason
