"""YubiKey PIV at depth 1: yubikit's own ``PivSession`` (and our backend on it) over the software
PIV card of :mod:`tests.realparts.soft_piv`, no PC/SC. The same card behind pcscd is depth 2
(``test_piv_pcsc.py``). No physical YubiKey is involved in either.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import cast

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ykman.piv import get_pivman_data, get_pivman_protected_data
from yubikit.core import BadResponseError, InvalidPinError
from yubikit.core.smartcard import AID, ApduError, SmartCardProtocol
from yubikit.piv import (
    DEFAULT_MANAGEMENT_KEY,
    KEY_TYPE,
    MANAGEMENT_KEY_TYPE,
    OBJECT_ID,
    PIN_POLICY,
    SLOT,
    TOUCH_POLICY,
    PivSession,
)

from airseal.appliance.cli.piv import piv as piv_group
from airseal.appliance.errors import (
    AttestationInvalid,
    ManagementKeyError,
    PinBlocked,
    PinError,
    PukBlocked,
    SlotEmpty,
    TokenKeyMismatch,
    TouchNotConfirmed,
    UsageError,
    WrongPin,
    WrongPuk,
    YubiKeyBusy,
    YubiKeyNotFound,
)
from airseal.appliance.piv_attestation import TrustAnchors, parse_attestation, verify_attestation
from airseal.appliance.signers import piv
from airseal.appliance.signers.piv import PivKeyRef, PivSigner
from airseal.appliance.signers.piv import devices as piv_devices
from airseal.trustroot.bundle import bundle_to_json, parse_bundle, sign_statement
from airseal.trustroot.dsse import Statement, Subject
from airseal.trustroot.errors import InvalidSignature
from airseal.trustroot.keys import PublicKey, fingerprint, verify_digest
from airseal.trustroot.signer import Signer
from airseal.trustroot.verify import verify_dsse_bundle
from tests.realparts.soft_piv import (
    SoftPivCard,
    SoftPivConnection,
    TestAttestationCA,
)

PIN, PUK = "123456", "12345678"
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


class Touch:
    """The operator's finger: ``allow`` decides whether the next touch request is answered."""

    def __init__(self) -> None:
        self.allow = True
        self.requests = 0

    def __call__(self) -> bool:
        self.requests += 1
        return self.allow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Pin:
    """A PIN callback that counts how often it was asked."""

    def __init__(self, value: str = PIN) -> None:
        self.value = value
        self.asked = 0

    def __call__(self) -> str:
        self.asked += 1
        return self.value


@pytest.fixture(scope="module")
def ca() -> TestAttestationCA:
    return TestAttestationCA.generate()


@pytest.fixture
def touch() -> Touch:
    return Touch()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def card(ca: TestAttestationCA, touch: Touch, clock: Clock) -> SoftPivCard:
    return SoftPivCard(ca, touch=touch, clock=clock)


@pytest.fixture
def open_card(card: SoftPivCard) -> Callable[[], SoftPivConnection]:
    return lambda: SoftPivConnection(card)


@pytest.fixture
def session(card: SoftPivCard) -> Iterator[PivSession]:
    connection = SoftPivConnection(card)
    yield PivSession(connection)
    connection.close()


def _digest(data: bytes = b"an installer") -> bytes:
    return hashlib.sha256(data).digest()


def _statement(digest: bytes) -> Statement:
    return Statement(
        subject=(Subject(name="installer.bin", digest={"sha256": digest.hex()}),),
        predicate_type="https://airseal.example/action/v1",
        predicate={"name": "(Install)Agent", "option": "execute"},
    )


# --- the card as yubikit sees it ---------------------------------------------------------------


def test_card_reports_firmware_serial_and_defaults(session: PivSession, card: SoftPivCard) -> None:
    assert session.version == (5, 7, 4)
    assert session.get_serial() == card.serial
    assert session.get_pin_metadata().default_value
    assert session.get_puk_metadata().attempts_remaining == 3
    assert session.get_management_key_metadata().key_type == MANAGEMENT_KEY_TYPE.AES192


def test_pin_retries_count_down_to_a_block_and_the_puk_unblocks(session: PivSession) -> None:
    for left in (2, 1, 0):
        with pytest.raises(InvalidPinError) as wrong:
            session.verify_pin("000000")
        assert wrong.value.attempts_remaining == left
    with pytest.raises(InvalidPinError) as blocked:
        session.verify_pin(PIN)  # the right PIN no longer helps
    assert blocked.value.attempts_remaining == 0
    assert session.get_pin_metadata().attempts_remaining == 0
    session.unblock_pin(PUK, "654321")
    session.verify_pin("654321")
    assert session.get_pin_metadata().attempts_remaining == 3


def test_puk_retries_count_down_and_a_blocked_puk_stays_blocked(session: PivSession) -> None:
    for left in (2, 1, 0):
        with pytest.raises(InvalidPinError) as wrong:
            session.change_puk("00000000", "87654321")
        assert wrong.value.attempts_remaining == left
    with pytest.raises(InvalidPinError):
        session.unblock_pin(PUK, "654321")
    assert session.get_puk_metadata().attempts_remaining == 0


def test_pin_and_puk_changes_take_effect(session: PivSession) -> None:
    session.change_pin(PIN, "24682468")
    session.change_puk(PUK, "13571357")
    with pytest.raises(InvalidPinError):
        session.verify_pin(PIN)
    session.verify_pin("24682468")
    assert not session.get_pin_metadata().default_value
    assert not session.get_puk_metadata().default_value


def test_reset_needs_both_pin_and_puk_blocked_and_restores_defaults(
    session: PivSession, card: SoftPivCard
) -> None:
    session.authenticate(DEFAULT_MANAGEMENT_KEY)
    session.generate_key(SLOT.SIGNATURE, KEY_TYPE.ECCP256)
    session.change_pin(PIN, "99999999")
    with pytest.raises(ApduError) as refused:
        session.protocol.send_apdu(0, 0xFB, 0, 0)
    assert refused.value.sw == 0x6985  # PIN and PUK not blocked: no reset
    session.reset()  # yubikit burns the PIN and PUK tries itself, then resets
    assert session.get_pin_metadata().default_value
    session.verify_pin(PIN)
    with pytest.raises(ApduError) as empty:
        session.get_slot_metadata(SLOT.SIGNATURE)
    assert empty.value.sw == 0x6A88
    assert SLOT.SIGNATURE not in card.slots


@pytest.mark.parametrize(
    "key_type",
    [
        MANAGEMENT_KEY_TYPE.TDES,
        MANAGEMENT_KEY_TYPE.AES128,
        MANAGEMENT_KEY_TYPE.AES192,
        MANAGEMENT_KEY_TYPE.AES256,
    ],
)
def test_management_key_mutual_authentication(
    card: SoftPivCard, key_type: MANAGEMENT_KEY_TYPE
) -> None:
    new_key = bytes(range(1, key_type.key_len + 1))
    with SoftPivConnection(card) as connection:
        session = PivSession(connection)
        session.authenticate(DEFAULT_MANAGEMENT_KEY)
        session.set_management_key(key_type, new_key)
    with SoftPivConnection(card) as connection:
        session = PivSession(connection)
        assert session.management_key_type == key_type
        with pytest.raises(ApduError) as unauthenticated:
            session.generate_key(SLOT.AUTHENTICATION, KEY_TYPE.ECCP256)
        assert unauthenticated.value.sw == 0x6982
        wrong = bytes(key_type.key_len)
        with pytest.raises((ApduError, BadResponseError)):
            session.authenticate(wrong)
        session.authenticate(new_key)
        session.generate_key(SLOT.AUTHENTICATION, KEY_TYPE.ECCP256)


def test_management_key_with_touch_needs_a_touch(card: SoftPivCard, touch: Touch) -> None:
    with SoftPivConnection(card) as connection:
        session = PivSession(connection)
        session.authenticate(DEFAULT_MANAGEMENT_KEY)
        session.set_management_key(MANAGEMENT_KEY_TYPE.AES128, bytes(16), require_touch=True)
        assert session.get_management_key_metadata().touch_policy == TOUCH_POLICY.ALWAYS
        touch.allow = False
        with pytest.raises(ApduError) as denied:
            session.authenticate(bytes(16))
        assert denied.value.sw == 0x6985
        touch.allow = True
        session.authenticate(bytes(16))


def test_slot_9c_needs_a_pin_verify_right_before_every_signature(session: PivSession) -> None:
    session.authenticate(DEFAULT_MANAGEMENT_KEY)
    public = session.generate_key(SLOT.SIGNATURE, KEY_TYPE.ECCP256)
    metadata = session.get_slot_metadata(SLOT.SIGNATURE)
    assert metadata.pin_policy == PIN_POLICY.ALWAYS  # the slot's default
    assert metadata.generated
    with pytest.raises(ApduError) as no_pin:
        session.sign(SLOT.SIGNATURE, KEY_TYPE.ECCP256, b"one", hashes.SHA256())
    assert no_pin.value.sw == 0x6982
    session.verify_pin(PIN)
    signature = session.sign(SLOT.SIGNATURE, KEY_TYPE.ECCP256, b"one", hashes.SHA256())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, b"one", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(ApduError) as again:
        session.sign(SLOT.SIGNATURE, KEY_TYPE.ECCP256, b"two", hashes.SHA256())
    assert again.value.sw == 0x6982
    session.verify_pin(PIN)
    session.get_serial()  # anything between VERIFY and the signature spends the verification
    with pytest.raises(ApduError):
        session.sign(SLOT.SIGNATURE, KEY_TYPE.ECCP256, b"two", hashes.SHA256())


def test_slot_9a_needs_the_pin_once_per_connection(card: SoftPivCard) -> None:
    with SoftPivConnection(card) as connection:
        session = PivSession(connection)
        session.authenticate(DEFAULT_MANAGEMENT_KEY)
        session.generate_key(SLOT.AUTHENTICATION, KEY_TYPE.ECCP256)
        assert session.get_slot_metadata(SLOT.AUTHENTICATION).pin_policy == PIN_POLICY.ONCE
        session.verify_pin(PIN)
        for message in (b"a", b"b", b"c"):
            session.sign(SLOT.AUTHENTICATION, KEY_TYPE.ECCP256, message, hashes.SHA256())
    with SoftPivConnection(card) as connection:  # a new connection is a power cycle
        session = PivSession(connection)
        with pytest.raises(ApduError):
            session.sign(SLOT.AUTHENTICATION, KEY_TYPE.ECCP256, b"d", hashes.SHA256())


def test_touch_always_and_a_denied_touch(session: PivSession, touch: Touch) -> None:
    session.authenticate(DEFAULT_MANAGEMENT_KEY)
    session.generate_key(
        SLOT.AUTHENTICATION, KEY_TYPE.ECCP256, PIN_POLICY.NEVER, TOUCH_POLICY.ALWAYS
    )
    session.sign(SLOT.AUTHENTICATION, KEY_TYPE.ECCP256, b"a", hashes.SHA256())
    session.sign(SLOT.AUTHENTICATION, KEY_TYPE.ECCP256, b"b", hashes.SHA256())
    assert touch.requests == 2
    touch.allow = False
    with pytest.raises(ApduError) as denied:
        session.sign(SLOT.AUTHENTICATION, KEY_TYPE.ECCP256, b"c", hashes.SHA256())
    assert denied.value.sw == 0x6985


def test_touch_cached_lasts_fifteen_seconds(
    session: PivSession, touch: Touch, clock: Clock
) -> None:
    session.authenticate(DEFAULT_MANAGEMENT_KEY)
    session.generate_key(
        SLOT.AUTHENTICATION, KEY_TYPE.ECCP256, PIN_POLICY.NEVER, TOUCH_POLICY.CACHED
    )
    session.sign(SLOT.AUTHENTICATION, KEY_TYPE.ECCP256, b"a", hashes.SHA256())
    clock.now += 14
    session.sign(SLOT.AUTHENTICATION, KEY_TYPE.ECCP256, b"b", hashes.SHA256())
    assert touch.requests == 1
    clock.now += 2
    session.sign(SLOT.AUTHENTICATION, KEY_TYPE.ECCP256, b"c", hashes.SHA256())
    assert touch.requests == 2


@pytest.mark.parametrize("key_type", [KEY_TYPE.ECCP384, KEY_TYPE.RSA2048])
def test_other_key_types_sign_a_prehashed_digest(session: PivSession, key_type: KEY_TYPE) -> None:
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    session.authenticate(DEFAULT_MANAGEMENT_KEY)
    public = session.generate_key(SLOT.AUTHENTICATION, key_type)
    session.verify_pin(PIN)
    digest = _digest()
    signature = session.sign(
        SLOT.AUTHENTICATION,
        key_type,
        digest,
        cast(hashes.HashAlgorithm, Prehashed(hashes.SHA256())),
        padding.PKCS1v15(),
    )
    verify_digest(cast(PublicKey, public), signature, digest)


def test_command_chaining_and_get_response(session: PivSession, card: SoftPivCard) -> None:
    session.authenticate(DEFAULT_MANAGEMENT_KEY)
    connection = session.protocol.connection
    short = SmartCardProtocol(connection)  # short APDUs: chaining (CLA 0x10) and 61xx replies
    short.select(AID.PIV)
    big = bytes(range(256)) * 6
    from yubikit.core import Tlv

    short.send_apdu(0, 0xDB, 0x3F, 0xFF, Tlv(0x5C, bytes.fromhex("5fc10d")) + Tlv(0x53, big))
    assert card.chained_blocks >= 6
    read = short.send_apdu(0, 0xCB, 0x3F, 0xFF, Tlv(0x5C, bytes.fromhex("5fc10d")))
    assert Tlv.unpack(0x53, read) == big
    assert card.get_responses >= 6
    assert card.objects[0x5FC10D] == big


def test_printed_object_needs_the_pin(session: PivSession) -> None:
    session.authenticate(DEFAULT_MANAGEMENT_KEY)
    session.put_object(OBJECT_ID.PRINTED, b"\x88\x00")
    with pytest.raises(ApduError) as protected:
        session.get_object(OBJECT_ID.PRINTED)
    assert protected.value.sw == 0x6982
    session.verify_pin(PIN)
    assert session.get_object(OBJECT_ID.PRINTED) == b"\x88\x00"


def test_attestation_has_yubicos_extensions_and_chains_to_the_test_ca(
    session: PivSession, ca: TestAttestationCA, card: SoftPivCard
) -> None:
    session.authenticate(DEFAULT_MANAGEMENT_KEY)
    public = session.generate_key(
        SLOT.SIGNATURE, KEY_TYPE.ECCP256, PIN_POLICY.ALWAYS, TOUCH_POLICY.CACHED
    )
    attested = session.attest_key(SLOT.SIGNATURE)
    device = session.get_certificate(SLOT.ATTESTATION)
    key = parse_attestation(attested)
    assert (key.slot, key.serial, key.firmware) == ("9c", card.serial, "5.7.4")
    assert (key.pin_policy, key.touch_policy, key.form_factor) == (
        "always",
        "cached",
        "Keychain (USB-A)",
    )
    verified = verify_attestation(
        attested, device, now=NOW, anchors=TrustAnchors((ca.root_cert,), name="test CA")
    )
    assert verified.chain == (attested, device, ca.root_cert)
    assert fingerprint(public) == fingerprint(  # type: ignore[arg-type]
        serialization.load_pem_public_key(key.public_key_pem.encode())  # type: ignore[arg-type]
    )


def test_attestation_is_rejected_with_a_wrong_ca_and_with_yubicos_roots(
    session: PivSession,
) -> None:
    session.authenticate(DEFAULT_MANAGEMENT_KEY)
    session.generate_key(SLOT.SIGNATURE, KEY_TYPE.ECCP256)
    attested = session.attest_key(SLOT.SIGNATURE)
    device = session.get_certificate(SLOT.ATTESTATION)
    other = TestAttestationCA.generate(name="Some other CA")
    with pytest.raises(AttestationInvalid, match="does not chain"):
        verify_attestation(attested, device, now=NOW, anchors=TrustAnchors((other.root_cert,)))
    with pytest.raises(AttestationInvalid, match="Yubico PIV attestation roots"):
        verify_attestation(attested, device, now=NOW)  # production anchors: not Yubico's CA
    with pytest.raises(AttestationInvalid, match="not signed by the YubiKey's attestation key"):
        verify_attestation(
            attested, other.f9_cert, now=NOW, anchors=TrustAnchors((other.root_cert,))
        )


def test_attestation_outside_the_validity_window_is_rejected(ca: TestAttestationCA) -> None:
    card = SoftPivCard(ca)
    with SoftPivConnection(card) as connection:
        session = PivSession(connection)
        session.authenticate(DEFAULT_MANAGEMENT_KEY)
        session.generate_key(SLOT.SIGNATURE, KEY_TYPE.ECCP256)
        attested = session.attest_key(SLOT.SIGNATURE)
    anchors = TrustAnchors((ca.root_cert,))
    with pytest.raises(AttestationInvalid, match="valid from"):
        verify_attestation(
            attested, ca.f9_cert, now=dt.datetime(2023, 1, 1, tzinfo=dt.UTC), anchors=anchors
        )


def test_attestation_through_intermediates_like_yubicos_current_chain() -> None:
    """F9 -> PIV intermediate -> attestation intermediate -> root, intermediates not on the card."""
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def issue(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: str,
        issuer_key: ec.EllipticCurvePrivateKey,
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2099, 1, 1, tzinfo=dt.UTC))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256())
        )

    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(4)]
    root = issue("Test Attestation Root 1", keys[0], "Test Attestation Root 1", keys[0])
    middle = issue("Test Attestation Intermediate B 1", keys[1], "Test Attestation Root 1", keys[0])
    piv_ca = issue(
        "Test PIV Attestation B 1", keys[2], "Test Attestation Intermediate B 1", keys[1]
    )
    f9 = issue("Airseal TEST PIV Attestation", keys[3], "Test PIV Attestation B 1", keys[2])
    card = SoftPivCard(TestAttestationCA(keys[0], root, keys[3], f9))
    with SoftPivConnection(card) as connection:
        session = PivSession(connection)
        session.authenticate(DEFAULT_MANAGEMENT_KEY)
        session.generate_key(SLOT.SIGNATURE, KEY_TYPE.ECCP256)
        attested = session.attest_key(SLOT.SIGNATURE)
    anchors = TrustAnchors((root,), (middle, piv_ca), name="test PKI")
    verified = verify_attestation(attested, f9, now=NOW, anchors=anchors)
    assert verified.chain == (attested, f9, piv_ca, middle, root)
    with pytest.raises(AttestationInvalid):  # the intermediates are needed, not trusted alone
        verify_attestation(attested, f9, now=NOW, anchors=TrustAnchors((root,)))
    with pytest.raises(AttestationInvalid):
        verify_attestation(attested, f9, now=NOW, anchors=TrustAnchors((root,), (piv_ca,)))


def test_rsa_attestation_key_is_supported() -> None:
    rsa_ca = TestAttestationCA.generate(rsa_keys=True)
    card = SoftPivCard(rsa_ca)
    attestation = _generate_and_attest(card)
    verified = attestation.verify(now=NOW, anchors=TrustAnchors((rsa_ca.root_cert,)))
    assert verified.key.serial == card.serial


def _generate_and_attest(card: SoftPivCard) -> piv.PivAttestation:
    open_card = lambda: SoftPivConnection(card)  # noqa: E731
    piv.generate_key(open_card, pin=Pin())
    return piv.attestation(open_card, "9c")


# --- our backend over the card -------------------------------------------------------------


def test_info_shows_serial_firmware_tries_and_slots(
    open_card: Callable[[], SoftPivConnection], card: SoftPivCard
) -> None:
    info = piv.piv_info(open_card)
    assert (info.serial, info.firmware, info.pin_tries_left, info.puk_tries_left) == (
        card.serial,
        "5.7.4",
        3,
        3,
    )
    assert info.slots == ()
    assert any("PIN is the factory default" in w for w in info.warnings)
    generated = piv.generate_key(open_card, pin=Pin(), touch_policy="cached")
    info = piv.piv_info(open_card)
    (slot,) = info.slots
    assert (slot.slot, slot.algorithm, slot.pin_policy, slot.touch_policy, slot.origin) == (
        "9c",
        "ecdsa-p256",
        "always",
        "cached",
        "generated",
    )
    assert slot.public_key_fingerprint == fingerprint(generated.ref.public_key)
    assert slot.certificate_subject is not None
    assert json.dumps(info.to_dict())


def test_reset_needs_an_explicit_confirmation(open_card: Callable[[], SoftPivConnection]) -> None:
    piv.generate_key(open_card, pin=Pin())
    with pytest.raises(UsageError, match="not confirmed"):
        piv.piv_reset(open_card)
    with pytest.raises(UsageError):
        piv.piv_reset(open_card, confirm="yes")  # type: ignore[arg-type]
    assert piv.piv_info(open_card).slots
    piv.piv_reset(open_card, confirm=True)
    assert piv.piv_info(open_card).slots == ()


def test_wrong_pin_says_tries_left_and_blocked_pin_says_use_the_puk(
    open_card: Callable[[], SoftPivConnection],
) -> None:
    with pytest.raises(WrongPin, match="2 tries left"):
        piv.set_pin(open_card, "000000", "24682468")
    with pytest.raises(WrongPin, match="1 try left"):
        piv.set_pin(open_card, "000000", "24682468")
    with pytest.raises(PinBlocked) as blocked:
        piv.set_pin(open_card, "000000", "24682468")
    assert "PUK" in blocked.value.diagnostics()
    generated_pin = Pin()
    with pytest.raises(PinBlocked):  # nothing is asked once the PIN is blocked
        piv.generate_key(open_card, pin=generated_pin)
    assert generated_pin.asked == 0
    piv.unblock_pin(open_card, PUK, "24682468")
    piv.set_pin(open_card, "24682468", "13571357")
    assert piv.piv_info(open_card).pin_tries_left == 3


def test_a_pin_that_cannot_be_right_is_not_sent(
    open_card: Callable[[], SoftPivConnection], card: SoftPivCard
) -> None:
    generated = piv.generate_key(open_card, pin=Pin())
    for hopeless in ("", "12345", "123456789"):
        with (
            PivSigner(generated.ref, pin=Pin(hopeless), open_connection=open_card) as signer,
            pytest.raises(PinError, match="nothing was sent"),
        ):
            signer.sign_digest(_digest())
    with pytest.raises(PinError, match="nothing was sent"):
        piv.set_pin(open_card, "", "24682468")
    assert card.pin.remaining == 3  # no try was spent


def test_puk_changes_and_blocks(open_card: Callable[[], SoftPivConnection]) -> None:
    piv.set_puk(open_card, PUK, "87654321")
    with pytest.raises(WrongPuk, match="2 tries left"):
        piv.unblock_pin(open_card, PUK, "24682468")
    with pytest.raises(WrongPuk):
        piv.set_puk(open_card, PUK, "11223344")
    with pytest.raises(PukBlocked) as blocked:
        piv.set_puk(open_card, PUK, "11223344")
    assert "reset" in blocked.value.diagnostics()


def test_new_pins_must_have_six_to_eight_characters(
    open_card: Callable[[], SoftPivConnection],
) -> None:
    for bad in ("12345", "123456789"):
        with pytest.raises(UsageError):
            piv.set_pin(open_card, PIN, bad)
        with pytest.raises(UsageError):
            piv.set_puk(open_card, PUK, bad)


def test_random_management_key_is_stored_under_the_pin(
    open_card: Callable[[], SoftPivConnection], card: SoftPivCard
) -> None:
    change = piv.set_management_key(open_card, pin=Pin(), random=True)
    assert (change.algorithm, change.protected_by_pin) == ("aes256", True)
    assert not card.mgmt_key_default and len(card.mgmt_key) == 32
    with SoftPivConnection(card) as connection:
        session = PivSession(connection)
        assert get_pivman_data(session).has_stored_key
        session.verify_pin(PIN)
        assert get_pivman_protected_data(session).key == card.mgmt_key
    info = piv.piv_info(open_card)
    assert info.management_key_protected and not info.management_key_is_default
    pin = Pin()
    piv.generate_key(open_card, pin=pin)  # the PIN alone unlocks the management key
    assert pin.asked == 2  # once for the management key, once right before the self-signature


def test_operator_held_management_key_tdes_and_aes(
    open_card: Callable[[], SoftPivConnection], card: SoftPivCard
) -> None:
    tdes = "0102030405060708" * 2 + "1112131415161718"
    change = piv.set_management_key(open_card, pin=Pin(), new_key=tdes, algorithm="tdes")
    assert (change.algorithm, change.protected_by_pin) == ("tdes", False)
    assert card.mgmt_key_type == 0x03
    with pytest.raises(ManagementKeyError, match="needed"):
        piv.generate_key(open_card, pin=Pin())
    with pytest.raises(ManagementKeyError, match="refused"):
        piv.generate_key(open_card, pin=Pin(), management_key=lambda: "00" * 24)
    piv.generate_key(open_card, pin=Pin(), management_key=lambda: tdes)
    aes = "ab" * 16
    piv.set_management_key(
        open_card, pin=Pin(), new_key=aes, algorithm="aes128", management_key=lambda: tdes
    )
    assert card.mgmt_key_type == 0x08
    piv.generate_key(open_card, pin=Pin(), slot="9a", management_key=lambda: aes)
    with pytest.raises(UsageError):
        piv.set_management_key(open_card, pin=Pin(), new_key=aes, random=True)


def test_generated_key_signs_digests_and_dsse_statements(
    open_card: Callable[[], SoftPivConnection], card: SoftPivCard
) -> None:
    generated = piv.generate_key(open_card, pin=Pin())
    assert (generated.pin_policy, generated.touch_policy) == ("always", "never")
    certificate = x509.load_pem_x509_certificate(generated.certificate_pem.encode())
    assert fingerprint(certificate.public_key()) == fingerprint(generated.ref.public_key)  # type: ignore[arg-type]
    pin = Pin()
    with PivSigner(generated.ref, pin=pin, open_connection=open_card) as signer:
        assert isinstance(signer, Signer)
        digests = [_digest(bytes([i])) for i in range(3)]
        signer_bytes = [signer.sign_digest(digest) for digest in digests]
        for digest, signature in zip(digests, signer_bytes, strict=True):
            verify_digest(generated.ref.public_key, signature, digest)
        statement = _statement(_digest())
        bundle = sign_statement(signer, statement)
    assert pin.asked == 4  # PIN policy ALWAYS: one verification per signature
    verified = verify_dsse_bundle(generated.ref.public_key, parse_bundle(bundle_to_json(bundle)))
    assert verified == statement
    with pytest.raises(InvalidSignature):  # and a signature is bound to its digest
        verify_digest(generated.ref.public_key, signer_bytes[0], _digest(b"something else"))


def test_pin_once_is_asked_once_per_signer(open_card: Callable[[], SoftPivConnection]) -> None:
    generated = piv.generate_key(open_card, pin=Pin(), slot="9a", pin_policy="once")
    assert generated.pin_policy == "once"
    pin = Pin()
    with PivSigner(generated.ref, pin=pin, open_connection=open_card) as signer:
        for i in range(5):
            signer.sign_digest(_digest(bytes([i])))
    assert pin.asked == 1


def test_touch_policy_tells_the_operator_and_a_denied_touch_says_retry(
    open_card: Callable[[], SoftPivConnection], touch: Touch
) -> None:
    notices: list[str] = []
    generated = piv.generate_key(open_card, pin=Pin(), touch_policy="always", notice=notices.append)
    assert generated.touch_policy == "always"
    assert any("Touch" in n for n in notices)  # the self-signed certificate needed a touch
    notices.clear()
    with PivSigner(generated.ref, pin=Pin(), notice=notices.append, open_connection=open_card) as s:
        s.sign_digest(_digest())
        assert len(notices) == 1 and "Touch YubiKey" in notices[0]
        touch.allow = False
        with pytest.raises(TouchNotConfirmed) as denied:
            s.sign_digest(_digest())
        message = str(denied.value)
        assert "touch the key" in message and "retry" in message
        touch.allow = True
        s.sign_digest(_digest())  # and retrying works


def test_wrong_pin_in_the_signer_says_tries_left(
    open_card: Callable[[], SoftPivConnection],
) -> None:
    generated = piv.generate_key(open_card, pin=Pin())
    with PivSigner(generated.ref, pin=Pin("000000"), open_connection=open_card) as signer:
        with pytest.raises(WrongPin, match="2 tries left before the PIN is blocked"):
            signer.sign_digest(_digest())
        with pytest.raises(WrongPin, match="1 try left"):
            signer.sign_digest(_digest())
        with pytest.raises(PinBlocked, match="blocked"):
            signer.sign_digest(_digest())


def test_signer_refuses_a_replaced_key_a_wrong_yubikey_and_an_empty_slot(
    open_card: Callable[[], SoftPivConnection], card: SoftPivCard
) -> None:
    first = piv.generate_key(open_card, pin=Pin())
    piv.generate_key(open_card, pin=Pin())  # the slot now holds another key
    with (
        pytest.raises(TokenKeyMismatch),
        PivSigner(first.ref, pin=Pin(), open_connection=open_card) as signer,
    ):
        signer.sign_digest(_digest())
    elsewhere = replace(first.ref, serial=card.serial + 1)
    with (
        pytest.raises(YubiKeyNotFound),
        PivSigner(elsewhere, pin=Pin(), open_connection=open_card) as signer,
    ):
        signer.sign_digest(_digest())
    empty = PivKeyRef(card.serial, "9d", first.ref.public_key_pem)
    with pytest.raises(SlotEmpty), PivSigner(empty, pin=Pin(), open_connection=open_card) as s:
        s.sign_digest(_digest())


def test_key_reference_round_trips_and_validates(
    open_card: Callable[[], SoftPivConnection],
) -> None:
    generated = piv.generate_key(open_card, pin=Pin(), slot="0x9A")
    ref = generated.ref
    assert ref.slot == "9a"
    assert PivKeyRef.from_record(json.loads(json.dumps(ref.to_record()))) == ref
    assert piv.read_key(open_card, "authentication") == ref
    for bad_slot in ("f9", "9b", "zz", "100"):
        with pytest.raises(UsageError):
            PivKeyRef(ref.serial, bad_slot, ref.public_key_pem)
    with pytest.raises(SlotEmpty):
        piv.read_key(open_card, "9e")


def test_attestation_from_the_backend_checks_the_slot_key_and_serial(
    open_card: Callable[[], SoftPivConnection], ca: TestAttestationCA, card: SoftPivCard
) -> None:
    piv.generate_key(open_card, pin=Pin(), touch_policy="always")
    attestation = piv.attestation(open_card, "9c")
    anchors = TrustAnchors((ca.root_cert,), name="the test CA")
    verified = attestation.verify(now=NOW, anchors=anchors)
    assert verified.key.touch_policy == "always"
    assert verified.root == "Airseal TEST PIV Root CA (the test CA)"
    assert verified.chain_pem().count("BEGIN CERTIFICATE") == 3
    with pytest.raises(AttestationInvalid, match="not the key in the slot"):
        replace(attestation, slot_public_key_pem=_other_public_pem()).verify(
            now=NOW, anchors=anchors
        )
    with pytest.raises(AttestationInvalid, match="serial"):
        replace(attestation, serial=card.serial + 1).verify(now=NOW, anchors=anchors)
    with pytest.raises(SlotEmpty):
        piv.attestation(open_card, "9d")


def _other_public_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def test_one_owner_at_a_time(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(piv.LOCK_FILE_ENV, str(tmp_path / "yubikey.lock"))
    first = piv_devices._YubiKeyLock()
    first.acquire(1)
    try:
        outcome: list[BaseException] = []

        def other_thread() -> None:
            try:
                piv_devices._LOCK.acquire(0.3)  # another lock object: the flock, as another process
                piv_devices._LOCK.release()
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        assert outcome and isinstance(outcome[0], YubiKeyBusy)
        with pytest.raises(YubiKeyBusy):
            first.acquire(0.2)  # the same process again: waits, then says busy
    finally:
        first.release()
    piv_devices._LOCK.acquire(1)
    piv_devices._LOCK.release()


def test_no_pcsc_service_is_a_clear_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from smartcard.pcsc.PCSCExceptions import EstablishContextException

    def no_pcscd() -> list[object]:
        raise EstablishContextException(0x8010001D)

    monkeypatch.setattr("ykman.pcsc.list_devices", no_pcscd)
    with pytest.raises(YubiKeyNotFound, match="PC/SC is not available"):
        piv.list_yubikeys(lock_timeout=1)


# --- the CLI over the card -----------------------------------------------------------------


def _cli(
    open_card: Callable[[], SoftPivConnection],
    *args: str,
    env: dict[str, str] | None = None,
    anchors: TrustAnchors | None = None,
) -> Result:
    return CliRunner().invoke(
        piv_group,
        list(args),
        obj={"open_connection": open_card, "anchors": anchors},
        env=env or {},
        catch_exceptions=True,
    )


def test_cli_generate_info_attest_and_reset(
    open_card: Callable[[], SoftPivConnection], ca: TestAttestationCA, card: SoftPivCard
) -> None:
    env = {"AIRSEAL_PIN": PIN}
    result = _cli(
        open_card,
        "generate-key",
        "--slot",
        "9c",
        "--pin-policy",
        "always",
        "--touch-policy",
        "cached",
        "--json",
        env=env,
    )
    assert result.exit_code == 0, result.output
    generated = json.loads(result.stdout)
    assert (generated["slot"], generated["pinPolicy"], generated["touchPolicy"]) == (
        "9c",
        "always",
        "cached",
    )
    result = _cli(open_card, "info", "--json")
    assert json.loads(result.stdout)["slots"][0]["slot"] == "9c"
    result = _cli(open_card, "info")
    assert f"YubiKey serial:    {card.serial}" in result.output
    result = _cli(
        open_card,
        "attestation",
        "--slot",
        "9c",
        anchors=TrustAnchors((ca.root_cert,), name="test CA"),
    )
    assert result.exit_code == 0, result.output
    assert "Attestation verified" in result.output and "touch policy:    cached" in result.output
    result = _cli(open_card, "attestation")  # Yubico's roots: the test card is not genuine
    assert isinstance(result.exception, AttestationInvalid)
    assert "BEGIN CERTIFICATE" in result.output  # the chain is shown before the verdict
    result = _cli(open_card, "reset")  # no terminal, no --yes: refused
    assert isinstance(result.exception, UsageError)
    result = _cli(open_card, "reset", "--yes")
    assert result.exit_code == 0, result.output
    assert SLOT.SIGNATURE not in card.slots


def test_cli_takes_secrets_from_the_environment_only(
    open_card: Callable[[], SoftPivConnection], card: SoftPivCard
) -> None:
    result = _cli(open_card, "set-pin", env={"AIRSEAL_PIN": PIN, "AIRSEAL_NEW_PIN": "24682468"})
    assert result.exit_code == 0, result.output
    assert card.pin.value == "24682468"
    result = _cli(open_card, "set-pin", env={"AIRSEAL_PIN": "000000", "AIRSEAL_NEW_PIN": "1234567"})
    assert isinstance(result.exception, WrongPin) and "2 tries left" in str(result.exception)
    result = _cli(open_card, "set-puk", env={"AIRSEAL_PUK": PUK, "AIRSEAL_NEW_PUK": "87654321"})
    assert result.exit_code == 0
    result = _cli(open_card, "set-management-key", "--random", env={"AIRSEAL_PIN": "24682468"})
    assert result.exit_code == 0, result.output
    assert "protected by the PIN" in result.output
    result = _cli(open_card, "set-pin")  # no environment and no terminal: a clear error
    assert isinstance(result.exception, PinError)
    assert "AIRSEAL_PIN" in result.exception.diagnostics()
    for command in ("set-pin", "set-puk", "generate-key", "set-management-key"):
        help_text = _cli(open_card, command, "--help").output
        assert "--pin " not in help_text and "--puk " not in help_text
