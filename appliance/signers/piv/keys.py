"""Keys in PIV slots: generating one (with ykman's self-signed certificate) and reading one.

**The slot's policies are honoured, not assumed.** A generated key reports the PIN and touch
policies the YubiKey actually applied (a ``default`` policy is the slot's own), and the
certificate is signed under them: PIN first when the policy needs it, a touch notice when the key
will wait for one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final, cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from ykman.piv import sign_certificate_builder
from yubikit.core import NotSupportedError
from yubikit.core.smartcard import SW, ApduError
from yubikit.piv import KEY_TYPE, PIN_POLICY, SLOT, TOUCH_POLICY, PivSession

from airseal.appliance.errors import SlotEmpty
from airseal.appliance.signers.piv.access import (
    NoticeCallback,
    PinCallback,
    SecretCallback,
    authenticate,
    no_notice,
    touch_error,
    touch_notice,
    verify_pin,
)
from airseal.appliance.signers.piv.devices import (
    SmartCardFactory,
    device_errors,
    device_serial,
    piv_session,
)
from airseal.appliance.signers.piv.slots import (
    ALGORITHMS,
    KEY_TYPE_LABELS,
    PIN_POLICIES,
    TOUCH_POLICIES,
    PivKeyRef,
    choice_from,
    parse_slot,
    policy_name,
    slot_name,
)
from airseal.trustroot.keys import PublicKey, load_public_key, spki_pem

CERTIFICATE_DAYS: Final = 3650


@dataclass(frozen=True)
class GeneratedPivKey:
    ref: PivKeyRef
    algorithm: str
    pin_policy: str
    touch_policy: str
    certificate_pem: str


def generate_key(
    open_connection: SmartCardFactory,
    *,
    pin: PinCallback,
    slot: str = "9c",
    algorithm: str = "ecdsa-p256",
    pin_policy: str = "default",
    touch_policy: str = "default",
    management_key: SecretCallback | None = None,
    notice: NoticeCallback = no_notice,
    subject: str | None = None,
    now: dt.datetime | None = None,
) -> GeneratedPivKey:
    """Generate a key in ``slot`` on the YubiKey and write a self-signed certificate for it.

    Policies ``default`` are the YubiKey's own (9c: PIN always, touch never). Any key already in
    the slot is replaced. Returns the reference to store and the certificate written."""
    slot_id = parse_slot(slot)
    key_type = choice_from(ALGORITHMS, algorithm, "PIV key algorithm")
    pin_p = choice_from(PIN_POLICIES, pin_policy, "PIN policy")
    touch_p = choice_from(TOUCH_POLICIES, touch_policy, "touch policy")
    with open_connection() as connection, device_errors("YubiKey PIV"):
        session = piv_session(connection)
        serial = device_serial(session)
        session.check_key_support(key_type, pin_p, touch_p, True)
        pin_verified = authenticate(session, pin=pin, management_key=management_key, notice=notice)
        made = generate_in_slot(
            session, slot_id, key_type, pin_p, touch_p, pin=pin, pin_verified=pin_verified,
            notice=notice, serial=serial, subject=subject, now=now,
        )
    public_key, certificate = made.public_key, made.certificate
    effective_pin, effective_touch = made.pin_policy, made.touch_policy
    public_pem = spki_pem(cast(PublicKey, public_key)).decode("ascii")
    ref = PivKeyRef(serial, slot_name(slot_id), public_pem)
    return GeneratedPivKey(
        ref=ref,
        algorithm=KEY_TYPE_LABELS[key_type],
        pin_policy=policy_name(effective_pin),
        touch_policy=policy_name(effective_touch),
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    )


@dataclass(frozen=True)
class SlotKeyMade:
    """A key just generated in a slot, with the policies the YubiKey applied and its
    self-signed certificate (already written to the slot)."""

    public_key: Any
    pin_policy: PIN_POLICY
    touch_policy: TOUCH_POLICY
    certificate: x509.Certificate


def generate_in_slot(
    session: PivSession,
    slot_id: SLOT,
    key_type: KEY_TYPE,
    pin_policy: PIN_POLICY,
    touch_policy: TOUCH_POLICY,
    *,
    pin: PinCallback,
    pin_verified: bool,
    notice: NoticeCallback,
    serial: int | None,
    subject: str | None = None,
    now: dt.datetime | None = None,
) -> SlotKeyMade:
    """Generate the key on an authenticated session and sign its certificate under the policies
    the YubiKey applied (the PIN first when they need it, a touch notice when it will wait)."""
    moment = now or dt.datetime.now(dt.UTC)
    public_key = session.generate_key(slot_id, key_type, pin_policy, touch_policy)
    try:
        metadata = session.get_slot_metadata(slot_id)
        effective_pin, effective_touch = metadata.pin_policy, metadata.touch_policy
    except NotSupportedError:
        effective_pin = pin_policy if pin_policy != PIN_POLICY.DEFAULT else PIN_POLICY.ONCE
        effective_touch = (
            touch_policy if touch_policy != TOUCH_POLICY.DEFAULT else TOUCH_POLICY.NEVER
        )
    device = f"YubiKey {serial}" if serial is not None else "YubiKey"
    name = subject or f"Airseal {device} slot {slot_name(slot_id)}"
    builder = (
        x509.CertificateBuilder()
        .public_key(public_key)
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - dt.timedelta(minutes=5))
        .not_valid_after(moment + dt.timedelta(days=CERTIFICATE_DAYS))
    )
    if effective_pin == PIN_POLICY.ALWAYS or (
        effective_pin == PIN_POLICY.ONCE and not pin_verified
    ):
        verify_pin(session, pin)
    touch_notice(notice, effective_touch, serial)
    try:
        certificate = sign_certificate_builder(session, slot_id, key_type, builder)
    except ApduError as exc:
        if exc.sw == SW.CONDITIONS_NOT_SATISFIED:
            raise touch_error("sign the key's certificate") from None
        raise
    session.put_certificate(slot_id, certificate)
    return SlotKeyMade(public_key, effective_pin, effective_touch, certificate)


def read_key(open_connection: SmartCardFactory, slot: str = "9c") -> PivKeyRef:
    """The reference for a key already in a slot (``airseal key import NAME --piv``)."""
    slot_id = parse_slot(slot)
    with open_connection() as connection, device_errors("YubiKey PIV"):
        session = piv_session(connection)
        public_key = slot_public_key(session, slot_id)
        public_pem = spki_pem(public_key).decode("ascii")
        return PivKeyRef(device_serial(session), slot_name(slot_id), public_pem)


def slot_public_key(session: PivSession, slot_id: SLOT) -> PublicKey:
    try:
        key: Any = session.get_slot_metadata(slot_id).public_key
    except ApduError as exc:
        if exc.sw == SW.REFERENCE_DATA_NOT_FOUND:
            raise SlotEmpty(f"slot {slot_name(slot_id)} holds no key") from None
        raise
    except NotSupportedError:  # firmware before 5.3: the certificate is all there is
        try:
            key = session.get_certificate(slot_id).public_key()
        except ApduError:
            raise SlotEmpty(f"slot {slot_name(slot_id)} holds no certificate") from None
    return load_public_key(spki_pem(key), subject=f"slot {slot_name(slot_id)}")


