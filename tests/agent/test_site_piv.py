"""Site trust with offline keys on the software PIV card behind the real PC/SC stack (pcscd +
vsmartcard's vpcd, :mod:`tests.realparts.vpcd`), mixed with a SoftHSM2 token and a file key.

Everything the operator does is a real `airseal` child process (`piv generate-key`, `key import
--piv`, `site init`, `distributor add`, `export`, `site rotate-root`, `site sign`), and the endpoint
is a real `airseal-agent` child process enrolled with `--site-root` only. The two offline holders
have different PINs and are not always in the room: the token holder's absence is an empty
SoftHSM2 store (its token is not found); each sitting gives AIRSEAL_PIN for the device present.

pcscd is machine-wide (one /run/pcscd/pcscd.comm): run this file alone, never beside
tests/appliance/test_piv_pcsc.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tuf.api.metadata import Metadata, Root

from airseal.appliance.signers import piv
from airseal.trustroot.keys import load_public_key
from airseal.trustroot.tuf_keys import tuf_key
from tests.realparts.softhsm import USER_PIN, SoftHsm
from tests.realparts.vpcd import PcscYubiKey, pcsc_unavailable_reason

pytestmark = [pytest.mark.slow, pytest.mark.root]

PIV_PIN = "123456"  # the software card's factory PIN; the token's differs (USER_PIN)


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PcscYubiKey]:
    """One "YubiKey" behind pcscd; a missing PC/SC stack is a setup error, never a skip."""
    reason = pcsc_unavailable_reason()
    if reason is not None:
        pytest.fail(f"PC/SC test stack unavailable: {reason}")
    monkeypatch.setenv(piv.LOCK_FILE_ENV, str(tmp_path / "airseal-yubikey.lock"))
    with PcscYubiKey(tmp_path / "pcsc") as running:
        yield running


def _json(result: Any) -> Any:
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


def _signed_by(outcome: dict[str, Any]) -> list[str]:
    return [a["key"] for a in outcome["attempts"] if a["signed"]]


def test_piv_softhsm_and_file_keys_hold_the_site_and_an_agent_follows(
    appliance_home: Path, airseal: Callable[..., Any], agent_cli: Callable[..., Any],
    agent_state: Any, stack: PcscYubiKey, tmp_path: Path,
) -> None:
    serial = str(stack.serial)
    hsm = SoftHsm(tmp_path / "softhsm")
    hsm.init_token("root-hsm")
    hsm.init_token("root-hsm-2")
    away = SoftHsm(tmp_path / "no-tokens")  # the token holder is not in the room
    piv_holder = {"AIRSEAL_PIN": PIV_PIN, "SOFTHSM2_CONF": str(away.conf)}
    token_holder = {"AIRSEAL_PIN": USER_PIN, "SOFTHSM2_CONF": str(hsm.conf)}

    # keys: root on the PIV card (9c), the token and a file; targets on the PIV card (9a)
    for slot in ("9c", "9a"):
        made = airseal("piv", "generate-key", "--serial", serial, "--slot", slot, "--json",
                       env=piv_holder)
        assert made.code == 0, made.stderr
    for name, slot in (("yk-root", "9c"), ("yk-targets", "9a")):
        imported = airseal("key", "import", name, "--piv", "--slot", slot, "--serial", serial,
                           env=piv_holder)
        assert imported.code == 0, imported.stderr
    for name, token in (("hsm-root", "root-hsm"), ("hsm-root-2", "root-hsm-2")):
        made = airseal("key", "generate", name, "--pkcs11", "--module", hsm.module_path,
                       "--token", token, env=token_holder)
        assert made.code == 0, made.stderr
    for name in ("file-root", "online", "dist-a"):
        assert airseal("key", "generate", name).code == 0
    keys = {k["name"]: k["backend"] for k in _json(airseal("key", "list", "--json"))["items"]}
    assert (keys["yk-root"], keys["hsm-root"], keys["file-root"]) == ("piv", "pkcs11", "file")

    # site init, 2 of 3 root across the three backends: the PIV holder and the file key sign
    init = airseal("site", "init", "--root-key", "yk-root", "--root-key", "hsm-root",
                   "--root-key", "file-root", "--root-threshold", "2",
                   "--targets-key", "yk-targets", "--targets-threshold", "1",
                   "--online-key", "online", "--json", env=piv_holder)
    assert init.code == 0, init.stdout + init.stderr
    root_event, targets_event = _json(init)["events"]
    assert root_event["published"] and root_event["threshold"] == "2 of 3"
    assert sorted(_signed_by(root_event)) == ["file-root", "yk-root"]
    assert "hsm-root" not in _signed_by(root_event)
    assert _signed_by(targets_event) == ["yk-targets"]

    # a distributor change: the policy target, signed by the PIV-held targets key; a mistyped
    # PIN leaves it pending (the card counts the try), the holder signs it again
    added = airseal("distributor", "add", "dist-a", "--name", "Distributor A", "--json",
                    env={**piv_holder, "AIRSEAL_PIN": "000000"})
    assert added.code == 1, added.stdout + added.stderr
    [refused] = _json(added)["events"][0]["attempts"]
    assert (refused["key"], refused["signed"]) == ("yk-targets", False)
    assert "2 tries left" in refused["reason"], refused
    assert "000000" not in added.stdout + added.stderr
    signed = airseal("site", "sign", "--json", env=piv_holder)
    assert signed.code == 0, signed.stdout + signed.stderr
    event = _json(signed)["events"][0]
    assert (event["role"], event["published"], _signed_by(event)) == (
        "targets", True, ["yk-targets"])

    root_v1 = tmp_path / "root.json"
    assert airseal("site", "root", "--output", str(root_v1)).code == 0
    enrolled = agent_cli("enroll", "--site-root", str(root_v1), "--json")
    assert enrolled.code == 0, enrolled.stderr
    assert _json(enrolled)["rootVersion"] == 1

    conf = tmp_path / "tool.conf"
    dest = tmp_path / "endpoint" / "tool.conf"
    exports = [0]

    def export_and_import(content: bytes) -> Any:
        conf.write_bytes(content)
        assert airseal("file", "add", str(conf)).code == 0
        exports[0] += 1
        created = airseal("action", "create", "--name", f"(Config)Tool {exports[0]}", "--os",
                          "linux", "--mode", "download", "--file", str(conf), "--dest", str(dest),
                          "--key", "dist-a")
        assert created.code == 0, created.stderr
        media = tmp_path / f"media{exports[0]}"
        media.mkdir()
        exported = airseal("export", "--to", str(media), "--key", "dist-a",
                           "--allow-unknown-capacity")
        assert exported.code == 0, exported.stderr
        return agent_cli("import", str(media), "--yes", "--json")

    first = export_and_import(b"setting = 1\n")
    assert first.code == 0, first.stdout + first.stderr
    assert dest.read_bytes() == b"setting = 1\n"

    # root rotation: the file key out, a second token key in (2 of 3 again); first sitting: the
    # PIV holder alone signs; the new root lacks its threshold and waits
    rotate = airseal("site", "rotate-root", "--remove-key", "file-root", "--add-key",
                     "hsm-root-2", "--json", env=piv_holder)
    assert rotate.code == 1, rotate.stdout + rotate.stderr  # pending
    pending = _json(rotate)["events"][0]
    assert (pending["role"], pending["version"], pending["published"]) == ("root", 2, False)
    assert "yk-root" in _signed_by(pending)
    assert {a["key"] for a in pending["attempts"] if not a["signed"]} >= {"hsm-root"}
    status = _json(airseal("site", "status", "--json"))
    assert status["pending"], status
    # an export meanwhile still carries root v1, and the agent keeps it
    second = export_and_import(b"setting = 2\n")
    assert second.code == 0, second.stdout + second.stderr
    assert _json(agent_cli("status", "--json"))["site"]["root"]["version"] == 1

    # second sitting: the token holder completes the event (the PIV key is not asked again)
    signed = airseal("site", "sign", "--json", env=token_holder)
    assert signed.code == 0, signed.stdout + signed.stderr
    done = _json(signed)["events"][0]
    assert (done["role"], done["version"], done["published"]) == ("root", 2, True)
    assert "yk-root" not in [a["key"] for a in done["attempts"]]
    assert "hsm-root" in _signed_by(done)

    root_v2 = tmp_path / "root-v2.json"
    assert airseal("site", "root", "--output", str(root_v2)).code == 0
    md = Metadata[Root].from_bytes(root_v2.read_bytes())
    assert md.signed.version == 2 and md.signed.roles["root"].threshold == 2
    v1 = Metadata[Root].from_bytes(root_v1.read_bytes())
    yk_pem = airseal("key", "export-public", "yk-root").stdout.encode()
    yk_keyid = tuf_key(load_public_key(yk_pem)).keyid
    assert yk_keyid in md.signed.roles["root"].keyids
    assert yk_keyid in md.signatures  # the PIV key signed the rotation...
    md.signed.verify_delegate("root", md.signed_bytes, md.signatures)  # ...meeting both roots
    v1.signed.verify_delegate("root", md.signed_bytes, md.signatures)

    third = export_and_import(b"setting = 3\n")
    assert third.code == 0, third.stdout + third.stderr
    assert dest.read_bytes() == b"setting = 3\n"
    assert _json(agent_cli("status", "--json"))["site"]["root"]["version"] == 2
