"""A witness station whose key is an Ed25519 key in a YubiKey PIV slot (firmware 5.7+).

No physical YubiKey runs here, and the vpcd/pcscd setup is the one system service the suite
shares, so these tests stand at depth 1 (see test_piv.py): yubikit's own ``PivSession`` and
our backend over the software PIV card of :mod:`tests.realparts.soft_piv`, which answers
Ed25519 GENERATE / GET METADATA / AUTHENTICATE as YubiKey firmware 5.7 does (algorithm 0xE0,
PureEdDSA over the whole message) and refuses Ed25519 below 5.7. The cosignatures are checked
with the verifier endpoints use (:func:`require_quorum`); the agent's import accepting one is
tests/agent/test_log_proofs.py::test_a_yubikey_witness_meets_the_quorum.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec

from airseal.appliance.cli import cli
from airseal.appliance.errors import (
    FirmwareTooOld,
    PinBlocked,
    TokenKeyMismatch,
    UsageError,
    WrongPin,
    YubiKeyError,
)
from airseal.appliance.witness_station import WitnessStation, YubiKeyWitnessKey
from airseal.trustroot.keys import spki_pem
from airseal.trustroot.tlog.cosignature import WitnessKey, require_quorum
from tests.agent.log_media import SiteLog, new_site_log
from tests.appliance.test_witness_station import grow, request
from tests.realparts.soft_piv import (
    ALG_ECCP256,
    ALG_ED25519,
    SoftPivCard,
    SoftPivConnection,
    TestAttestationCA,
    _Slot,
)

PIN = "123456"
NAME = "witness.site.example/yk"
SLOT_9A = 0x9A


class Operator:
    """Answers the PIN prompt (and counts it); never asked for a password here."""

    def __init__(self, pin: str = PIN) -> None:
        self.pin = pin
        self.asked: list[str] = []
        self.notices: list[str] = []

    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        self.asked.append(prompt)
        assert "PIN" in prompt, prompt
        return self.pin

    def notice(self, message: str) -> None:
        self.notices.append(message)


@pytest.fixture(scope="module")
def ca() -> TestAttestationCA:
    return TestAttestationCA.generate()


@pytest.fixture
def card(ca: TestAttestationCA) -> SoftPivCard:
    return SoftPivCard(ca)


@pytest.fixture(autouse=True)
def no_secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AIRSEAL_PIN", "COSIGN_PASSWORD", "AIRSEAL_MANAGEMENT_KEY"):
        monkeypatch.delenv(name, raising=False)


def station(home: Path, card: SoftPivCard, operator: Operator) -> WitnessStation:
    def open_yubikey(serial: int | None) -> Callable[[], SoftPivConnection]:
        return lambda: SoftPivConnection(card)

    return WitnessStation(home, operator, open_yubikey=open_yubikey)


def log_files(tmp_path: Path) -> tuple[SiteLog, Path]:
    site = new_site_log()
    log_pub = tmp_path / "log.pub"
    log_pub.write_bytes(spki_pem(site.signer.public_key))
    return site, log_pub


def test_init_on_the_card_and_cosign_verify_with_the_endpoint_verifier(
    tmp_path: Path, card: SoftPivCard
) -> None:
    site, log_pub = log_files(tmp_path)
    operator = Operator()
    home = tmp_path / "w"
    status = station(home, card, operator).init(
        NAME, log_pub, site.origin, yubikey=YubiKeyWitnessKey("9a"))
    slot = card.slots[SLOT_9A]
    assert slot.algorithm == ALG_ED25519 and slot.generated
    witness = WitnessKey.from_vkey(status.vkey)
    assert witness.public_key == slot.key.public_key().public_bytes_raw()  # type: ignore[union-attr]
    assert status.key == f"YubiKey {card.serial} slot 9a"
    assert not (home / "witness.key").exists()  # no private key leaves the card
    state = json.loads((home / "witness.json").read_text())
    assert state["yubikey"] == {"serial": card.serial, "slot": "9a"}
    assert PIN not in (home / "witness.json").read_text()
    assert card.objects  # the slot's self-signed certificate, as `airseal piv generate-key` does

    grow(site, 3)
    out = tmp_path / "r1" / "checkpoint.cosigned"
    before = card.signatures
    assert station(home, card, operator).cosign(request(site, tmp_path / "r1"), out,
                                                now=datetime.now(UTC)).size == 3
    assert card.signatures == before + 1  # the card signed, not a file key
    assert [c.witness.name for c in require_quorum(out.read_text(), [witness], 1)] == [NAME]
    grow(site, 2)  # the next checkpoint must extend it, as for a file key
    assert station(home, card, operator).cosign(
        request(site, tmp_path / "r2", from_size=3), tmp_path / "c2",
        now=datetime.now(UTC)).size == 5


def test_firmware_before_5_7_is_refused_naming_it_before_any_pin(
    tmp_path: Path, ca: TestAttestationCA
) -> None:
    old = SoftPivCard(ca, version=(5, 4, 3))
    site, log_pub = log_files(tmp_path)
    operator = Operator()
    with pytest.raises(FirmwareTooOld) as refused:
        station(tmp_path / "w", old, operator).init(NAME, log_pub, site.origin,
                                                    yubikey=YubiKeyWitnessKey())
    assert "firmware 5.4.3" in refused.value.detail and "5.7" in refused.value.detail
    assert "file key" in (refused.value.hint or "")
    assert operator.asked == [] and not (tmp_path / "w").exists()
    assert set(old.slots) == {0xF9}


def test_a_wrong_pin_names_the_tries_left_and_changes_nothing(
    tmp_path: Path, card: SoftPivCard
) -> None:
    site, log_pub = log_files(tmp_path)
    home = tmp_path / "w"
    with pytest.raises(WrongPin) as wrong:
        station(home, card, Operator("654321")).init(NAME, log_pub, site.origin,
                                                     yubikey=YubiKeyWitnessKey())
    assert "2 tries left" in wrong.value.detail and "654321" not in wrong.value.diagnostics()
    assert not home.exists() and 0x9C not in card.slots  # nothing on disk, nothing on the card

    station(home, card, Operator()).init(NAME, log_pub, site.origin, yubikey=YubiKeyWitnessKey())
    grow(site, 2)
    req = request(site, tmp_path / "r")
    state = (home / "witness.json").read_bytes()
    with pytest.raises(WrongPin) as wrong:
        station(home, card, Operator("654321")).cosign(req, req / "out", now=datetime.now(UTC))
    assert "2 tries left" in wrong.value.detail
    assert (home / "witness.json").read_bytes() == state and not (req / "out").exists()
    card.pin.remaining = 0
    with pytest.raises(PinBlocked):
        station(home, card, Operator()).cosign(req, req / "out", now=datetime.now(UTC))
    assert (home / "witness.json").read_bytes() == state and not (req / "out").exists()


def test_a_slot_with_a_key_is_never_overwritten_and_an_ed25519_one_can_be_used(
    tmp_path: Path, card: SoftPivCard
) -> None:
    site, log_pub = log_files(tmp_path)
    signing = _Slot(ec.generate_private_key(ec.SECP256R1()), ALG_ECCP256, 3, 1, True)
    card.slots[0x9C] = signing
    with pytest.raises(YubiKeyError, match="already holds a key"):
        station(tmp_path / "a", card, Operator()).init(NAME, log_pub, site.origin,
                                                       yubikey=YubiKeyWitnessKey("9c"))
    with pytest.raises(YubiKeyError, match="must be Ed25519"):
        station(tmp_path / "b", card, Operator()).init(
            NAME, log_pub, site.origin, yubikey=YubiKeyWitnessKey("9c", use_existing=True))
    assert card.slots[0x9C] is signing
    first = station(tmp_path / "c", card, Operator()).init(
        NAME, log_pub, site.origin, yubikey=YubiKeyWitnessKey("9a"))
    again = station(tmp_path / "d", card, Operator()).init(
        NAME, log_pub, site.origin, yubikey=YubiKeyWitnessKey("9a", use_existing=True))
    assert again.vkey == first.vkey
    # the slot's key replaced behind the station's back: it refuses to cosign with another key
    del card.slots[SLOT_9A]
    station(tmp_path / "f", card, Operator()).init(NAME, log_pub, site.origin,
                                                   yubikey=YubiKeyWitnessKey("9a"))
    grow(site, 1)
    req = request(site, tmp_path / "r")
    with pytest.raises(TokenKeyMismatch):
        station(tmp_path / "c", card, Operator()).cosign(req, req / "out", now=datetime.now(UTC))
    assert not (req / "out").exists()


def test_cli_init_with_yubikey_takes_the_pin_from_the_environment(
    tmp_path: Path, card: SoftPivCard
) -> None:
    site, log_pub = log_files(tmp_path)
    home = tmp_path / "w"
    runner = CliRunner()
    obj = {"open_connection": lambda: SoftPivConnection(card)}
    common = ["witness", "init", "--name", NAME, "--log-key", str(log_pub), "--log-origin",
              site.origin, "--home", str(home)]
    result = runner.invoke(cli, [*common, "--slot", "9a"], obj=obj)
    assert isinstance(result.exception, UsageError)  # main() turns it into exit 2
    assert "--slot go with --yubikey" in str(result.exception)
    result = runner.invoke(cli, [*common, "--yubikey", "--slot", "9a"], obj=obj,
                           env={"AIRSEAL_PIN": PIN})
    assert result.exit_code == 0, result.output
    assert f"key     YubiKey {card.serial} slot 9a" in result.output
    grow(site, 2)
    req = request(site, tmp_path / "r")
    result = runner.invoke(cli, ["witness", "cosign", str(req), "--home", str(home)], obj=obj,
                           env={"AIRSEAL_PIN": PIN})
    assert result.exit_code == 0, result.output
    assert (req / "checkpoint.cosigned").exists()
