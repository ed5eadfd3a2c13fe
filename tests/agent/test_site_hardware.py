"""Site trust with root and targets keys on real SoftHSM2 tokens (PKCS#11, python-pkcs11), the
signing events carried on media to a second key holder and back, distributor rotation reaching an
endpoint enrolled only with the site root, and a root rotation that endpoint follows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from airseal.agent.site_trust import enroll_site_root, status_json
from airseal.agent.state import AgentState
from airseal.appliance.actions import ActionSpec
from airseal.appliance.intake import VendorSignature
from airseal.appliance.service import Appliance, ApplianceOptions
from airseal.errors import UsageError
from airseal.trustroot.signer import Signer
from tests.realparts.softhsm import USER_PIN, SoftHsm

from .test_site_trust import NOW, PASSWORD, refused, run

pytestmark = pytest.mark.slow


class NoPinHere:
    """Key passwords are on hand; token PINs are not (the holder is elsewhere)."""

    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        if "PIN" in prompt:
            raise UsageError(f"{prompt}: the token holder is not here")
        return PASSWORD

    def notice(self, message: str) -> None:
        pass


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SoftHsm:
    hsm = SoftHsm(tmp_path / "softhsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(hsm.conf))
    for label in ("root-1", "root-2", "root-3", "root-4"):
        hsm.init_token(label)
    hsm.activate()
    return hsm


def test_hardware_root_and_targets_keys_rotate_distributors_and_root(
    tmp_path: Path, softhsm: SoftHsm, agent_state: AgentState, agent_signer: Signer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", PASSWORD)
    monkeypatch.delenv("AIRSEAL_PIN", raising=False)
    clock = [NOW]
    site = Appliance(tmp_path / "site", NoPinHere(), ApplianceOptions(clock=lambda: clock[0]))
    site.init()
    monkeypatch.setenv("AIRSEAL_PIN", USER_PIN)
    for n in (1, 2, 3, 4):
        site.generate_pkcs11_key(f"R{n}", module=softhsm.module_path, token=f"root-{n}")
    for name in ("online", "dist-a", "dist-b"):
        site.generate_file_key(name)
    init = site.site_init(root_keys=["R1", "R2", "R3"], root_threshold=2, targets_keys=["R1"],
                          targets_threshold=1, online_key="online")
    assert all(o.published for o in init), [o.describe() for o in init]
    assert site.distributor_add("dist-a", name="Distributor A",
                                may_sign=["exports", "actions"]).published
    root_json = tmp_path / "root.json"
    site.write_site_root(root_json)
    enroll_site_root(agent_state.root, root_json.read_bytes(), now=NOW, subject="root.json")

    conf = tmp_path / "tool.conf"
    conf.write_bytes(b"v1\n")
    dest = tmp_path / "endpoint" / "tool.conf"
    site.add_file(conf, VendorSignature())
    media_n = [0]

    def export(key: str) -> Path:
        action = site.create_action(ActionSpec(
            name=f"(Config)Tool {media_n[0]}", os="linux", mode="download", file=str(conf),
            dest=str(dest), file_mode="0600"), key)
        media_n[0] += 1
        media = tmp_path / f"media{media_n[0]}"
        media.mkdir()
        site.export(media, key, action_ids=[action.id], allow_unknown_capacity=True)
        return media

    report = run(agent_state, agent_signer, export("dist-a"))
    assert report.status == "completed", report.error and report.error.diagnostics()
    dest.unlink()

    # the targets key holder is away: retire A and add B wait as one pending event each...
    monkeypatch.delenv("AIRSEAL_PIN")
    clock[0] = NOW + timedelta(minutes=5)
    assert not site.distributor_retire("dist-a").published
    courier = tmp_path / "signing-usb"
    courier.mkdir()
    assert site.site_write_request(courier) == ["targets"]
    # ...the holder signs on their own appliance, with the same token
    holder = Appliance(tmp_path / "holder", NoPinHere())
    holder.init()
    monkeypatch.setenv("AIRSEAL_PIN", USER_PIN)
    holder.import_pkcs11_key("mine", module=softhsm.module_path, token="root-1", label="R1")
    assert [a.signed for a in holder.site_sign_request(courier, "mine")] == [True]
    holder.close()
    back = site.site_import_signatures(courier)
    assert back[0].published and back[0].attempts[0].key == "R1"
    assert site.distributor_add("dist-b", name="Distributor B",
                                may_sign=["exports", "actions"]).published
    site.retire_key("dist-a")

    clock[0] = NOW + timedelta(minutes=10)
    report = run(agent_state, agent_signer, export("dist-b"), now=clock[0])
    assert report.status == "completed", report.error and report.error.diagnostics()
    dest.unlink()

    # a later medium still signed by A (a stolen copy of its key) is refused, naming why
    from airseal.appliance.keystore import KeyRetired

    with pytest.raises(KeyRetired):
        export("dist-a")
    site.db.execute("UPDATE keys SET reference = json_remove(reference, '$.retired') "
                    "WHERE name = 'dist-a'")
    site.db.conn.commit()
    clock[0] = NOW + timedelta(minutes=15)
    report = run(agent_state, agent_signer, export("dist-a"), now=clock[0])
    refused(report, "airseal/export.sigstore.json", "trust", "Distributor A", "retired")
    assert not dest.exists()

    # root rotation: R3 out, R4 in, threshold 2 of (R1, R2, R4), signed by old and new
    clock[0] = NOW + timedelta(minutes=20)
    rotated = site.site_rotate_root(add=["R4"], remove=["R3"], threshold=2)
    assert rotated.published, rotated.describe()
    report = run(agent_state, agent_signer, export("dist-b"), now=clock[0])
    assert report.status == "completed", report.error and report.error.diagnostics()
    assert status_json(agent_state.root)["root"]["version"] == 2  # type: ignore[index]
    audit = [e.action for e in site.audit_entries(limit=500)]
    for event in ("site.init", "site.signature", "site.request", "site.publish",
                  "site.rotate-root", "key.retire"):
        assert event in audit, event
    site.close()
