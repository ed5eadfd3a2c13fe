"""The ``airseal/tuf/`` tree of a real export is accepted by tuf-js (an independent TUF client):
its Updater walks the tree from the site root and downloads the very policy bytes python-tuf
verified; a tampered policy is refused by it too."""

from __future__ import annotations

from pathlib import Path

import pytest

from airseal.agent.site_trust import update_from_media
from airseal.media.reader import DirectorySource
from airseal.trustroot.site_policy import parse_policy
from tests.agent.test_site_trust import NOW, PASSWORD, Lab
from tests.interop.tuf_js import fetch_target


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Lab, Path]:
    monkeypatch.setenv("COSIGN_PASSWORD", PASSWORD)
    lab = Lab(tmp_path / "lab")
    assert lab.appliance.distributor_add("dist-a", name="A", may_sign=["exports"]).published
    assert lab.appliance.site_rotate_root(add=["K5"], remove=["K3"], threshold=None).published
    media = lab.export("dist-a", lab.action("dist-a"))
    yield lab, media
    lab.appliance.close()


def test_tuf_js_gets_the_same_policy_bytes_as_python_tuf(
    exported: tuple[Lab, Path], tmp_path: Path
) -> None:
    lab, media = exported
    result = fetch_target(media / "airseal/tuf", lab.root_json, tmp_path / "js-cache",
                          "airseal/policy.json")
    assert result.ok, result.error
    state = tmp_path / "agent"
    (state / "site/metadata").mkdir(parents=True)
    (state / "site/metadata/root.json").write_bytes(lab.root_json.read_bytes())
    ours = update_from_media(state, DirectorySource(media), now=NOW)
    assert parse_policy(result.data) == ours.policy
    policy = next((media / "airseal/tuf/targets/airseal").glob("*.policy.json"))
    assert result.data == policy.read_bytes()
    assert ours.root_version == 2


def test_tuf_js_refuses_a_tampered_policy(exported: tuple[Lab, Path], tmp_path: Path) -> None:
    lab, media = exported
    policy = next((media / "airseal/tuf/targets/airseal").glob("*.policy.json"))
    policy.write_bytes(policy.read_bytes().replace(b'"A"', b'"B"'))
    result = fetch_target(media / "airseal/tuf", lab.root_json, tmp_path / "js-cache",
                          "airseal/policy.json")
    assert not result.ok
    assert "hash" in result.error.lower() or "length" in result.error.lower(), result.error
