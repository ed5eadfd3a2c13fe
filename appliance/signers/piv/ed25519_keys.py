"""Ed25519 keys in PIV slots, which sign whole messages: a witness station's cosignature key.

C2SP ``cosignature/v1`` is PureEdDSA over the message, which a YubiKey's PIV application offers
from firmware 5.7 (yubikit's ``KEY_TYPE.ED25519``); :class:`~.signer.PivSigner` signs SHA-256
digests with ECDSA/RSA keys and stays as it is. Guarantees:

- **Firmware before 5.7 is refused first**, naming the firmware, before a PIN is asked or the
  card is changed (:class:`~airseal.appliance.errors.FirmwareTooOld`).
- **A slot that holds a key is never overwritten**: a new key is generated only in an empty slot;
  an Ed25519 key already there is used only when asked (``use_existing``), and any other key is
  refused. A witness key replaced by accident would silently end the witness.
- **The PIN is verified before anything changes on the card**, so a wrong PIN (the error says
  how many tries are left) leaves the slot as it was. It is asked once per operation and kept in
  a local only for that operation.
- **The key that signs is the key registered**: before a signature the slot's key is compared
  with the stored public key, and each signature is verified with it before it is returned.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from yubikit.core.smartcard import SW, ApduError
from yubikit.piv import KEY_TYPE, PIN_POLICY, SLOT, PivSession, SlotMetadata

from airseal.appliance.errors import (
    FirmwareTooOld,
    SlotEmpty,
    TokenKeyMismatch,
    UsageError,
    YubiKeyError,
    YubiKeyNotFound,
)
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
from airseal.appliance.signers.piv.keys import generate_in_slot
from airseal.appliance.signers.piv.slots import (
    KEY_TYPE_LABELS,
    PIN_POLICIES,
    TOUCH_POLICIES,
    choice_from,
    parse_slot,
    slot_name,
)

ED25519_FIRMWARE: Final = (5, 7, 0)


@dataclass(frozen=True)
class PivEd25519Key:
    """Where an Ed25519 key lives (YubiKey serial, slot) and its raw 32-byte public key. No
    secret; what a witness station keeps."""

    serial: int | None
    slot: str
    public_key: bytes
    generated: bool = False
    """True when this operation generated it (False: it was already in the slot)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "slot", slot_name(parse_slot(self.slot)))
        if self.serial is not None and not 0 < self.serial < 2**32:
            raise UsageError(f"{self.serial} is not a YubiKey serial number")
        if len(self.public_key) != 32:
            raise UsageError("an Ed25519 public key is 32 bytes")

    def describe(self) -> str:
        device = f"YubiKey {self.serial}" if self.serial is not None else "YubiKey"
        return f"{device} slot {self.slot}"

    def to_record(self) -> dict[str, Any]:
        return {"serial": self.serial, "slot": self.slot}

    @classmethod
    def from_record(cls, record: dict[str, Any], public_key_b64: str) -> PivEd25519Key:
        serial = record.get("serial")
        try:
            public_key = base64.b64decode(public_key_b64, validate=True)
        except (binascii.Error, ValueError):
            raise UsageError("the stored public key is not base64") from None
        return cls(int(serial) if serial is not None else None, str(record["slot"]), public_key)


def require_ed25519_firmware(session: PivSession, serial: int | None) -> None:
    """Refuse, naming the firmware, a YubiKey whose PIV application has no Ed25519."""
    version = tuple(session.version)
    if version < ED25519_FIRMWARE:
        device = f"YubiKey {serial}" if serial is not None else "this YubiKey"
        firmware = ".".join(str(v) for v in version)
        raise FirmwareTooOld(
            f"{device} has firmware {firmware}; PIV Ed25519 keys (what a witness cosignature "
            "needs) need firmware 5.7 or later",
            subject=device,
            hint="YubiKey firmware cannot be upgraded: use a YubiKey 5 series with firmware 5.7 "
            "or later (`airseal piv info` shows it), or a file key (`airseal witness init` "
            "without --yubikey)",
        )


def _slot_metadata(session: PivSession, slot_id: SLOT) -> SlotMetadata | None:
    try:
        return session.get_slot_metadata(slot_id)
    except ApduError as exc:
        if exc.sw == SW.REFERENCE_DATA_NOT_FOUND:
            return None
        raise


def _raw(metadata: SlotMetadata) -> bytes:
    key: Any = metadata.public_key
    raw: bytes = key.public_bytes_raw()
    return raw


def ed25519_slot_key(
    open_connection: SmartCardFactory,
    *,
    slot: str,
    pin: PinCallback,
    use_existing: bool = False,
    pin_policy: str = "default",
    touch_policy: str = "default",
    management_key: SecretCallback | None = None,
    notice: NoticeCallback = no_notice,
    subject: str | None = None,
    now: dt.datetime | None = None,
) -> PivEd25519Key:
    """Generate an Ed25519 key (with a self-signed certificate) in the empty ``slot``, or with
    ``use_existing`` take the Ed25519 key already there. See the module's guarantees."""
    slot_id = parse_slot(slot)
    pin_p = choice_from(PIN_POLICIES, pin_policy, "PIN policy")
    touch_p = choice_from(TOUCH_POLICIES, touch_policy, "touch policy")
    where = f"slot {slot_name(slot_id)}"
    with open_connection() as connection, device_errors("YubiKey PIV"):
        session = piv_session(connection)
        serial = device_serial(session)
        require_ed25519_firmware(session, serial)
        existing = _slot_metadata(session, slot_id)
        if use_existing:
            if existing is None:
                raise SlotEmpty(f"{where} holds no key", hint="leave out the flag to generate one")
            if existing.key_type != KEY_TYPE.ED25519:
                raise YubiKeyError(
                    f"{where} holds an {KEY_TYPE_LABELS[existing.key_type]} key; a witness key "
                    "must be Ed25519", subject=where, hint="choose another slot with --slot")
            return PivEd25519Key(serial, slot_name(slot_id), _raw(existing))
        if existing is not None:
            kind = KEY_TYPE_LABELS.get(existing.key_type, "unknown")
            raise YubiKeyError(
                f"{where} already holds a key ({kind}); it is not replaced", subject=where,
                hint="use it with --use-existing if it is an Ed25519 key meant for this witness, "
                "or choose an empty slot with --slot (`airseal piv info` lists them)")
        session.check_key_support(KEY_TYPE.ED25519, pin_p, touch_p, True)
        given = pin()

        def once() -> str:
            return given

        verify_pin(session, once)  # a wrong PIN stops here, with nothing changed
        pin_verified = authenticate(session, pin=once, management_key=management_key,
                                    notice=notice)
        made = generate_in_slot(
            session, slot_id, KEY_TYPE.ED25519, pin_p, touch_p, pin=once,
            pin_verified=pin_verified, notice=notice, serial=serial, subject=subject, now=now,
        )
    raw: bytes = made.public_key.public_bytes_raw()
    return PivEd25519Key(serial, slot_name(slot_id), raw, generated=True)


def sign_ed25519(
    open_connection: SmartCardFactory,
    key: PivEd25519Key,
    message: bytes,
    *,
    pin: PinCallback,
    notice: NoticeCallback = no_notice,
) -> bytes:
    """``key``'s Ed25519 signature of ``message``, made by the YubiKey and verified here."""
    slot_id = parse_slot(key.slot)
    with open_connection() as connection, device_errors(key.describe()):
        session = piv_session(connection)
        serial = device_serial(session)
        if key.serial is not None and serial != key.serial:
            raise YubiKeyNotFound(
                f"the YubiKey attached has serial {serial}, the witness key is on {key.serial}",
                subject=key.describe())
        require_ed25519_firmware(session, serial)
        metadata = _slot_metadata(session, slot_id)
        if metadata is None:
            raise SlotEmpty(f"slot {key.slot} holds no key", subject=key.describe(),
                            hint="the witness key was deleted or the PIV application reset")
        if metadata.key_type != KEY_TYPE.ED25519 or _raw(metadata) != key.public_key:
            raise TokenKeyMismatch(
                f"slot {key.slot} no longer holds the witness's Ed25519 key",
                subject=key.describe(),
                hint="the slot's key was replaced; this station cannot cosign with it")
        if metadata.pin_policy != PIN_POLICY.NEVER:
            verify_pin(session, pin)
        touch_notice(notice, metadata.touch_policy, serial)
        try:
            signature = session.sign(slot_id, KEY_TYPE.ED25519, message, None)
        except ApduError as exc:
            if exc.sw == SW.CONDITIONS_NOT_SATISFIED:
                raise touch_error("sign") from None
            raise
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(signature, message)
    except InvalidSignature:
        raise YubiKeyError("the YubiKey's signature does not verify with the witness key",
                           subject=key.describe()) from None
    return signature
