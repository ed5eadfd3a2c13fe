"""`airseal site signing-config`: the site's Sigstore signing config as a TUF target of the site,
checked before anything is stored, and `--rekor-url` taking the Rekor API version from it
(v2 only where it lists that URL with ``majorApiVersion`` 2, else v1).

The Rekor is `airseal log serve`'s server on loopback (port 0) in a thread, as in
tests/appliance/test_rekor_v2.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from tuf.api.metadata import Metadata, Root, Targets

from airseal.appliance.errors import UsageError
from airseal.appliance.rekor_client import SigningConfigInvalid
from airseal.appliance.service import Appliance, ApplianceOptions
from airseal.appliance.site import SiteError, SiteRepository
from airseal.trustroot.keys import spki_pem
from airseal.trustroot.signer import PrivateKeySigner
from airseal.trustroot.site_policy import SIGNING_CONFIG_TARGET
from tests.realparts.served_log import served_log

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
ORIGIN = "log.test.example"
LOG = PrivateKeySigner(ec.derive_private_key(0x5E_4E_10C, ec.SECP256R1()))


class Prompter:
    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        return "pw"

    def notice(self, message: str) -> None:
        pass


def _config(url: str, version: int) -> bytes:
    return json.dumps({
        "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
        "caUrls": [], "oidcUrls": [], "tsaUrls": [],
        "rekorTlogUrls": [{"url": url, "majorApiVersion": version,
                           "validFor": {"start": "2021-01-12T11:53:27Z"}}],
        "rekorTlogConfig": {"selector": "ANY"},
    }).encode()


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Appliance]:
    monkeypatch.setenv("COSIGN_PASSWORD", "pw")
    clock = [NOW]
    with Appliance(tmp_path / "a", Prompter(), ApplianceOptions(clock=lambda: clock[0])) as a:
        a.init()
        for name in ("R", "O", "signer"):
            a.generate_file_key(name)
        assert all(o.published for o in a.site_init(
            root_keys=["R"], root_threshold=1, targets_keys=["R"], targets_threshold=1,
            online_key="O"))
        clock[0] = NOW + timedelta(minutes=1)
        yield a


def _propose_count(app: Appliance) -> int:
    return int(app.db.conn.execute(
        "SELECT count(*) FROM audit WHERE action = 'site.propose'").fetchone()[0])


def test_set_show_clear_and_the_published_target_bytes(app: Appliance, tmp_path: Path) -> None:
    assert app.site_signing_config() is None
    document = _config("https://rekor.site.example", 2)
    path = tmp_path / "signing_config.json"
    path.write_bytes(document)
    assert app.site_set_signing_config(path).published
    assert app.site_signing_config() == document
    assert app.site_signing_config_view().to_json() == {
        "schemaVersion": 1, "configured": True, "sha256": hashlib.sha256(document).hexdigest(),
        "rekor": [{"url": "https://rekor.site.example", "majorApiVersion": 2}]}
    reasons = [json.loads(r[0])["reason"] for r in app.db.conn.execute(
        "SELECT details FROM audit WHERE action = 'site.propose' ORDER BY seq")]
    assert reasons[-1] == "signing-config.set"

    # Through the site repository, as media carry it: the targets (verified by the root)
    # list the target, and the carried file is those bytes.
    site = SiteRepository(app.home, app.db, Prompter())
    files = dict(site.media_files())
    root = Metadata[Root].from_bytes(site.root_bytes())
    [targets_name] = [n for n in files if n.endswith(".targets.json")]
    targets = Metadata[Targets].from_bytes(files[targets_name].read_bytes())
    root.verify_delegate("targets", targets)
    info = targets.signed.targets[SIGNING_CONFIG_TARGET]
    [carried] = [p for n, p in files.items() if n.endswith(".signing_config.json")]
    info.verify_length_and_hashes(carried.read_bytes())
    assert carried.read_bytes() == document
    assert not (site.pending_dir / "signing_config.json").exists()

    # a later policy change keeps it
    assert app.distributor_add("signer", name="S", may_sign=["exports"]).published
    assert app.site_signing_config() == document

    # a stored copy altered on disk is refused, not used
    original = carried.read_bytes()
    carried.write_bytes(original.replace(b"rekor.site", b"rekor.evil"))
    with pytest.raises(SiteError, match="length or sha256"):
        app.site_signing_config()
    carried.write_bytes(original)

    assert app.site_set_signing_config(None).published
    assert app.site_signing_config() is None
    assert app.site_signing_config_view().to_json()["configured"] is False
    with pytest.raises(UsageError, match="no signing config to clear"):
        app.site_set_signing_config(None)


def test_an_invalid_file_leaves_nothing_stored_or_published(
    app: Appliance, tmp_path: Path
) -> None:
    site = SiteRepository(app.home, app.db, Prompter())
    before = sorted(p.relative_to(site.dir) for p in site.dir.rglob("*"))
    proposed = _propose_count(app)
    path = tmp_path / "bad.json"
    for document, message in (
        (b"[1]", "not a JSON object"),
        (b'{"mediaType": "application/vnd.dev.sigstore.signingconfig.v0.1+json"}', "mediaType"),
        (_config("https://rekor.site.example/api", 2), "rekorTlogUrls\\[0\\].url"),
        (_config("https://rekor.site.example", 3), "API version 1 or 2"),
        (b" " * (1024 * 1024 + 1), "larger than"),
    ):
        path.write_bytes(document)
        with pytest.raises(SigningConfigInvalid, match=message):
            app.site_set_signing_config(path)
        assert sorted(p.relative_to(site.dir) for p in site.dir.rglob("*")) == before
        assert _propose_count(app) == proposed and app.site_signing_config() is None


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    with served_log(tmp_path / "log.db", LOG, ORIGIN, lambda: NOW) as url:
        yield url


def test_rekor_url_takes_the_api_version_from_the_site_config(
    app: Appliance, served: str, tmp_path: Path
) -> None:
    """sign-blob --rekor-url: v1 with no site config, v2 once the site config lists that URL
    with majorApiVersion 2, v1 again when it lists only another Rekor."""
    key = tmp_path / "log.pub"
    key.write_bytes(spki_pem(LOG.public_key))
    blob = tmp_path / "tool.bin"
    blob.write_bytes(b"tool")
    config = tmp_path / "signing_config.json"

    def sign(name: str) -> dict[str, Any]:
        bundle = tmp_path / f"{name}.sigstore.json"
        with app.using_rekor(served, str(key)):
            app.sign_blob(blob, "signer", bundle_path=bundle)
        entry: dict[str, Any] = json.loads(bundle.read_text())[
            "verificationMaterial"]["tlogEntries"][0]
        return entry["kindVersion"]

    assert sign("none") == {"kind": "hashedrekord", "version": "0.0.1"}
    config.write_bytes(_config(served, 2))
    assert app.site_set_signing_config(config).published
    assert sign("v2") == {"kind": "hashedrekord", "version": "0.0.2"}
    config.write_bytes(_config("https://rekor.elsewhere.example", 2))
    assert app.site_set_signing_config(config).published
    assert sign("other") == {"kind": "hashedrekord", "version": "0.0.1"}
