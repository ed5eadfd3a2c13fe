"""YubiKey PIV at depth 2: the software PIV card behind the real PC/SC stack.

pcscd (Debian) loads vsmartcard's vpcd driver for one reader named "Yubico YubiKey OTP+FIDO+CCID";
a bridge process (:mod:`tests.realparts.vpcd`) feeds vpcd's APDUs to the software card. Our backend
then finds the "YubiKey" through ykman's PC/SC discovery (``ykman.pcsc``) and yubikit's
``read_info``, and PKCS#11 signatures go through Yubico's libykcs11 (Debian ykcs11) and OpenSC's
module. Both daemons are started and stopped here, by pid. No physical YubiKey is involved.

PKCS#11 runs in child processes: a loaded libykcs11 keeps its PC/SC connection until the module
is finalised, which would (rightly) make our backend in the same process report the YubiKey busy.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from yubikit.core import TRANSPORT
from yubikit.piv import PivSession

from airseal.appliance.errors import (
    AttestationInvalid,
    TouchNotConfirmed,
    UsageError,
    WrongPin,
    YubiKeyBusy,
    YubiKeyNotFound,
)
from airseal.appliance.piv_attestation import TrustAnchors, load_certificate
from airseal.appliance.signers import piv
from airseal.appliance.signers.piv import PivKeyRef, PivSigner
from airseal.trustroot.bundle import bundle_to_json, parse_bundle, sign_statement
from airseal.trustroot.dsse import Statement, Subject
from airseal.trustroot.keys import verify_digest
from airseal.trustroot.verify import verify_dsse_bundle
from tests.realparts.vpcd import (
    LIBYKCS11,
    OPENSC_PKCS11,
    READER_NAME,
    PcscYubiKey,
    pcsc_unavailable_reason,
)

_UNAVAILABLE = pcsc_unavailable_reason()
pytestmark = [pytest.mark.slow, pytest.mark.root]


@pytest.fixture(autouse=True)
def _pcsc_stack_required() -> None:
    """A missing PC/SC stack is a setup error to fix (scripts/setup --test), never a skip."""
    if _UNAVAILABLE is not None:
        pytest.fail(f"PC/SC test stack unavailable: {_UNAVAILABLE}")

PIN = "123456"
ROOT = Path(__file__).resolve().parents[2]


SECOND_SERIAL = 20_500_003


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PcscYubiKey]:
    """Two "YubiKeys" attached: most tests use the first; several attached is not an error."""
    with PcscYubiKey(tmp_path_factory.mktemp("pcsc"), second_serial=SECOND_SERIAL) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_card(stack: PcscYubiKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from a factory-reset PIV application, through PC/SC."""
    monkeypatch.setenv(piv.LOCK_FILE_ENV, str(tmp_path.parent / "airseal-yubikey.lock"))
    stack.deny_touch(False)
    piv.piv_reset(piv.yubikey(stack.serial), confirm=True)


@pytest.fixture
def anchors(stack: PcscYubiKey) -> TrustAnchors:
    root = load_certificate((stack.state / "root.pem").read_bytes(), what="test root")
    return TrustAnchors((root,), name="the test CA")


def _statement(digest: bytes) -> Statement:
    return Statement(
        subject=(Subject(name="installer.bin", digest={"sha256": digest.hex()}),),
        predicate_type="https://airseal.example/action/v1",
        predicate={"name": "(Install)Agent", "option": "execute"},
    )


def test_ykman_pcsc_discovery_sees_a_yubikey(stack: PcscYubiKey) -> None:
    from ykman.pcsc import list_devices
    from yubikit.core import PID

    # vpcd offers two readers; the bridge serves the first, the second stays empty
    devices = [d for d in list_devices() if READER_NAME in d.reader.name]
    assert devices
    assert {d.pid for d in devices} == {PID.YK4_OTP_FIDO_CCID}  # ykman reads it off the name
    found = {d.serial: d for d in piv.list_yubikeys()}
    assert sorted(found) == [stack.serial, SECOND_SERIAL]
    assert (found[stack.serial].firmware, found[stack.serial].available) == ("5.7.4", True)
    found = found[stack.serial]
    assert found.form_factor == "Keychain (USB-A)"
    with piv.yubikey(stack.serial)() as connection:
        assert connection.transport == TRANSPORT.USB  # from the ATR, as on a real YubiKey
        assert PivSession(connection).get_serial() == stack.serial


def test_info_by_serial_and_a_missing_serial(stack: PcscYubiKey) -> None:
    info = piv.piv_info(piv.yubikey(stack.serial))
    assert (info.serial, info.firmware, info.pin_tries_left, info.slots) == (
        stack.serial,
        "5.7.4",
        3,
        (),
    )
    with pytest.raises(YubiKeyNotFound, match="serial 12345") as missing:
        piv.piv_info(piv.yubikey(12345))
    assert str(stack.serial) in str(missing.value)  # it lists what is attached


def test_several_yubikeys_attached_are_chosen_by_serial(stack: PcscYubiKey) -> None:
    with pytest.raises(UsageError, match="2 YubiKeys are attached") as ambiguous:
        piv.piv_info(piv.yubikey())
    assert "--serial" in ambiguous.value.diagnostics()
    assert piv.piv_info(piv.yubikey(SECOND_SERIAL)).serial == SECOND_SERIAL
    offered: list[list[int | None]] = []

    def choose(devices: list[piv.YubiKeyDevice]) -> int:
        offered.append([d.serial for d in devices])
        return SECOND_SERIAL

    assert piv.piv_info(piv.yubikey(choose=choose)).serial == SECOND_SERIAL
    assert offered == [[stack.serial, SECOND_SERIAL]]
    generated = piv.generate_key(piv.yubikey(SECOND_SERIAL), pin=lambda: PIN, slot="9a")
    with PivSigner(generated.ref, pin=lambda: PIN) as signer:  # finds its own YubiKey
        digest = hashlib.sha256(b"second key").digest()
        verify_digest(generated.ref.public_key, signer.sign_digest(digest), digest)
    piv.piv_reset(piv.yubikey(SECOND_SERIAL), confirm=True)


def test_generate_sign_and_dsse_over_pcsc(stack: PcscYubiKey) -> None:
    generated = piv.generate_key(piv.yubikey(stack.serial), pin=lambda: PIN)
    assert (generated.ref.serial, generated.ref.slot, generated.pin_policy) == (
        stack.serial,
        "9c",
        "always",
    )
    asked = 0

    def pin() -> str:
        nonlocal asked
        asked += 1
        return PIN

    statement = _statement(hashlib.sha256(b"payload").digest())
    with PivSigner(generated.ref, pin=pin) as signer:  # the default: yubikey(ref.serial)
        start = time.monotonic()
        digests = [hashlib.sha256(bytes([i])).digest() for i in range(40)]
        signatures = [signer.sign_digest(d) for d in digests]
        elapsed = time.monotonic() - start
        bundle = sign_statement(signer, statement)
    for digest, signature in zip(digests, signatures, strict=True):
        verify_digest(generated.ref.public_key, signature, digest)
    assert asked == 41  # PIN policy ALWAYS: verified right before every signature
    # ~3 APDUs per signature; with vpcd's Nagle stall (no TCP_QUICKACK) this took ~5 s.
    assert elapsed < 4.0, f"40 signatures over PC/SC took {elapsed:.1f} s"
    verified = verify_dsse_bundle(generated.ref.public_key, parse_bundle(bundle_to_json(bundle)))
    assert verified == statement


def test_denied_touch_and_wrong_pin_over_pcsc(stack: PcscYubiKey) -> None:
    open_connection = piv.yubikey(stack.serial)
    generated = piv.generate_key(
        open_connection, pin=lambda: PIN, slot="9a", pin_policy="once", touch_policy="always"
    )
    notices: list[str] = []
    with PivSigner(generated.ref, pin=lambda: PIN, notice=notices.append) as signer:
        signer.sign_digest(hashlib.sha256(b"a").digest())
        stack.deny_touch()
        with pytest.raises(TouchNotConfirmed, match="touch the key when it blinks and retry"):
            signer.sign_digest(hashlib.sha256(b"b").digest())
        stack.deny_touch(False)
        signer.sign_digest(hashlib.sha256(b"c").digest())
    assert len(notices) == 3 and all("Touch YubiKey" in n for n in notices)
    with (
        PivSigner(generated.ref, pin=lambda: "000000") as signer,
        pytest.raises(WrongPin, match="2 tries left"),
    ):
        signer.sign_digest(hashlib.sha256(b"d").digest())


def test_a_dropped_signer_releases_the_yubikey(stack: PcscYubiKey) -> None:
    generated = piv.generate_key(piv.yubikey(stack.serial), pin=lambda: PIN)
    signer = PivSigner(generated.ref, pin=lambda: PIN)
    signer.sign_digest(hashlib.sha256(b"then forgotten").digest())
    with pytest.raises(YubiKeyBusy):
        piv.piv_info(piv.yubikey(stack.serial, lock_timeout=0.2))
    del signer
    gc.collect()
    assert piv.piv_info(piv.yubikey(stack.serial, lock_timeout=0.2)).serial == stack.serial


def test_attestation_over_pcsc(stack: PcscYubiKey, anchors: TrustAnchors) -> None:
    open_connection = piv.yubikey(stack.serial)
    piv.generate_key(open_connection, pin=lambda: PIN, touch_policy="cached")
    attestation = piv.attestation(open_connection, "9c")
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    verified = attestation.verify(now=now, anchors=anchors)
    assert (verified.key.serial, verified.key.slot, verified.key.touch_policy) == (
        stack.serial,
        "9c",
        "cached",
    )
    with pytest.raises(AttestationInvalid, match="Yubico PIV attestation roots"):
        attestation.verify(now=now)  # a test card is not a genuine YubiKey


HOLD_EXCLUSIVE = r"""
import sys
from smartcard.System import readers
from smartcard.ExclusiveConnectCardConnection import ExclusiveConnectCardConnection
reader = next(r for r in readers() if sys.argv[1] in str(r))
connection = ExclusiveConnectCardConnection(reader.createConnection())
connection.connect()
print("held", flush=True)
sys.stdin.read()
connection.disconnect()
"""

TRY_BACKEND = r"""
import sys
from airseal.appliance.errors import YubiKeyBusy
from airseal.appliance.signers import piv
try:
    piv.piv_info(piv.yubikey(int(sys.argv[1]), lock_timeout=0.5))
except YubiKeyBusy as error:
    print(error.diagnostics())
    sys.exit(3)
"""


def test_another_program_holding_the_yubikey_is_reported_busy(stack: PcscYubiKey) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_EXCLUSIVE, f"{READER_NAME} 00 00"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        seen = piv.list_yubikeys()
        assert [d.available for d in seen].count(False) == 1  # reported, never taken over
        assert [d.serial for d in seen if d.available] == [SECOND_SERIAL]
        with pytest.raises(YubiKeyBusy, match="in use by another program"):
            piv.piv_info(piv.yubikey(stack.serial))
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    assert piv.piv_info(piv.yubikey(stack.serial)).serial == stack.serial


def test_one_airseal_process_owns_the_yubikey_at_a_time(stack: PcscYubiKey) -> None:
    generated = piv.generate_key(piv.yubikey(stack.serial), pin=lambda: PIN)
    with PivSigner(generated.ref, pin=lambda: PIN) as signer:
        signer.sign_digest(hashlib.sha256(b"holding").digest())  # opens and holds the YubiKey
        other = subprocess.run(
            [sys.executable, "-c", TRY_BACKEND, str(stack.serial)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        assert other.returncode == 3, other.stderr
        assert "YubiKey busy" in other.stdout or "busy" in other.stdout.lower()
    other = subprocess.run(
        [sys.executable, "-c", TRY_BACKEND, str(stack.serial)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert other.returncode == 0, other.stdout + other.stderr


PKCS11_SIGN = r"""
import json, sys
import pkcs11
from pkcs11 import Attribute, Mechanism, ObjectClass

module, key_id, pin, digest_hex, serial = sys.argv[1:6]
digest = bytes.fromhex(digest_hex)
lib = pkcs11.lib(module)
tokens = [slot.get_token() for slot in lib.get_slots(token_present=True)]
out = {"tokens": [{"label": t.label, "serial": t.serial.decode(errors="replace"),
                   "manufacturer": t.manufacturer_id, "model": t.model} for t in tokens]}
# libykcs11 labels a token "YubiKey PIV #<serial>"; OpenSC after the first certificate's CN
(token,) = [t for t in tokens if serial in t.label]
with token.open(user_pin=pin) as session:
    key = next(session.get_objects(
        {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: bytes.fromhex(key_id)}))
    always = bool(key[Attribute.ALWAYS_AUTHENTICATE])
    extra = {"pin": pin} if always else {}  # CKA_ALWAYS_AUTHENTICATE: context-specific login
    raw = key.sign(digest, mechanism=Mechanism.ECDSA, **extra)
    out.update(raw_signature=raw.hex(), always_authenticate=always, key_label=key.label)

try:
    from airseal.appliance.signers.pkcs11 import Pkcs11Signer, find_key
except ImportError:
    out["backend"] = None
else:
    from airseal.trustroot.bundle import bundle_to_json, sign_statement
    from airseal.trustroot.dsse import Statement
    statement = Statement.from_payload(sys.stdin.buffer.read())
    ref = find_key(module, token=token.label, label=out["key_label"],
                   pin_provider=lambda: pin, key_id=key_id)
    with Pkcs11Signer(ref, lambda: pin) as signer:
        bundle = sign_statement(signer, statement)
    out["backend"] = {"bundle": bundle_to_json(bundle).decode(),
                      "public_key_pem": ref.public_key_pem.decode()}
print(json.dumps(out))
"""


def _pkcs11_sign(
    module: Path, key_id: str, digest: bytes, statement: Statement, serial: int
) -> dict[str, Any]:
    if not module.exists():
        pytest.fail(f"{module} is not installed (Debian: ykcs11, opensc-pkcs11)")
    done = subprocess.run(
        [sys.executable, "-c", PKCS11_SIGN, str(module), key_id, PIN, digest.hex(), str(serial)],
        input=statement.to_payload(),
        capture_output=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _check_pkcs11(
    result: dict[str, Any], ref: PivKeyRef, digest: bytes, statement: Statement
) -> None:
    raw = bytes.fromhex(result["raw_signature"])
    half = len(raw) // 2
    der = encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
    verify_digest(ref.public_key, der, digest)
    if importlib.util.find_spec("airseal.appliance.signers.pkcs11") is not None:
        assert result["backend"] is not None  # our PKCS#11 backend signed too
    if result["backend"] is not None:
        assert result["backend"]["public_key_pem"] == ref.public_key_pem
        bundle = parse_bundle(result["backend"]["bundle"].encode())
        assert verify_dsse_bundle(ref.public_key, bundle) == statement


def _write_chuid(serial: int) -> None:
    """Give the card a CHUID, as ``ykman piv objects generate chuid`` does.

    OpenSC derives a PIV token's serial from the CHUID: without one every YubiKey shows serial
    00000000, and two of them attached could not be told apart by serial."""
    from ykman.piv import generate_chuid
    from yubikit.piv import DEFAULT_MANAGEMENT_KEY, OBJECT_ID

    with piv.yubikey(serial)() as connection:
        session = PivSession(connection)
        session.authenticate(DEFAULT_MANAGEMENT_KEY)
        session.put_object(OBJECT_ID.CHUID, generate_chuid())


@pytest.mark.parametrize("module", [LIBYKCS11, OPENSC_PKCS11], ids=["libykcs11", "opensc"])
@pytest.mark.parametrize(("slot", "key_id", "always"), [("9c", "02", True), ("9a", "01", False)])
def test_pkcs11_modules_sign_with_the_piv_keys(
    stack: PcscYubiKey, module: Path, slot: str, key_id: str, always: bool
) -> None:
    generated = piv.generate_key(
        piv.yubikey(stack.serial), pin=lambda: PIN, slot=slot, pin_policy="default"
    )
    _write_chuid(stack.serial)
    digest = hashlib.sha256(b"signed through PKCS#11").digest()
    statement = _statement(digest)
    result = _pkcs11_sign(module, key_id, digest, statement, stack.serial)
    assert result["always_authenticate"] is always  # 9c's PIN policy ALWAYS, as the module sees it
    if module == LIBYKCS11:
        assert result["tokens"][0]["label"] == f"YubiKey PIV #{stack.serial}"
    _check_pkcs11(result, generated.ref, digest, statement)


AIRSEAL_WITH_PIV = r"""
import sys
from airseal.appliance.cli import cli, main
from airseal.appliance.cli.piv import piv
cli.add_command(piv)  # not yet registered on the root group: the lead wires it in
sys.exit(main(sys.argv[1:]))
"""


def _airseal(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", AIRSEAL_WITH_PIV, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def test_the_airseal_piv_commands_over_pcsc(stack: PcscYubiKey) -> None:
    listed = _airseal("piv", "info")
    assert listed.returncode == 0, listed.stderr
    assert "2 YubiKeys are attached" in listed.stdout and str(SECOND_SERIAL) in listed.stdout
    serial = str(stack.serial)
    generated = _airseal(
        "piv",
        "generate-key",
        "--serial",
        serial,
        "--touch-policy",
        "cached",
        "--json",
        env={"AIRSEAL_PIN": PIN},
    )
    assert generated.returncode == 0, generated.stderr
    record = json.loads(generated.stdout)
    assert (record["serial"], record["slot"], record["touchPolicy"]) == (
        stack.serial,
        "9c",
        "cached",
    )
    info = _airseal("piv", "info", "--serial", serial, "--json")
    assert json.loads(info.stdout)["slots"][0]["publicKeyFingerprint"] == record["fingerprint"]
    attested = _airseal("piv", "attestation", "--serial", serial)
    assert attested.returncode == 1  # verification failed: the test card is not a real YubiKey
    assert "BEGIN CERTIFICATE" in attested.stdout
    assert "attestation not verified" in attested.stderr
    wrong = _airseal(
        "piv",
        "set-pin",
        "--serial",
        serial,
        env={"AIRSEAL_PIN": "000000", "AIRSEAL_NEW_PIN": "24682468"},
    )
    assert wrong.returncode == 3 and "2 tries left" in wrong.stderr
    refused = _airseal("piv", "reset", "--serial", serial)  # no terminal and no --yes
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert piv.piv_info(piv.yubikey(stack.serial)).slots  # nothing was erased
    done = _airseal("piv", "reset", "--serial", serial, "--yes")
    assert done.returncode == 0, done.stderr
    assert piv.piv_info(piv.yubikey(stack.serial)).slots == ()
