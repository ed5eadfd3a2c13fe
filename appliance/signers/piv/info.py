"""What a YubiKey's PIV application holds: PIN/PUK tries, management key state, and keyed slots.

Read-only: nothing here asks for a PIN. The warnings name factory defaults and blocked secrets,
so that screens and the CLI can say what to change first.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, cast

from cryptography import x509
from ykman.piv import get_pivman_data
from yubikit.core import BadResponseError, NotSupportedError
from yubikit.core.smartcard import SW, ApduError
from yubikit.piv import MANAGEMENT_KEY_TYPE, SLOT, PivSession, SlotMetadata

from airseal.appliance.signers.piv.access import pin_tries_left
from airseal.appliance.signers.piv.devices import (
    SmartCardFactory,
    device_errors,
    device_serial,
    piv_session,
)
from airseal.appliance.signers.piv.slots import (
    KEY_TYPE_LABELS,
    SIGNING_SLOTS,
    policy_name,
    slot_name,
)
from airseal.trustroot.keys import PublicKey, fingerprint


@dataclass(frozen=True)
class PivSlotInfo:
    slot: str
    algorithm: str | None
    pin_policy: str | None
    touch_policy: str | None
    origin: str | None  # "generated" (attestable) or "imported"
    public_key_fingerprint: str | None
    certificate_subject: str | None
    certificate_not_after: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class PivInfo:
    serial: int | None
    firmware: str
    pin_tries_left: int | None
    pin_tries_total: int | None
    pin_is_default: bool | None
    puk_tries_left: int | None
    puk_tries_total: int | None
    puk_is_default: bool | None
    management_key_algorithm: str
    management_key_is_default: bool | None
    management_key_protected: bool
    slots: tuple[PivSlotInfo, ...]

    @property
    def warnings(self) -> list[str]:
        notes = []
        if self.pin_is_default:
            notes.append("the PIN is the factory default (123456): change it with set-pin")
        if self.puk_is_default:
            notes.append("the PUK is the factory default (12345678): change it with set-puk")
        if self.management_key_is_default:
            notes.append("the management key is the factory default: set-management-key --random")
        if self.pin_tries_left == 0:
            notes.append("the PIN is blocked: unblock-pin with the PUK")
        if self.puk_tries_left == 0:
            notes.append("the PUK is blocked")
        return notes

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["slots"] = [s.to_dict() for s in self.slots]
        data["warnings"] = self.warnings
        return data


def _slot_info(session: PivSession, slot: SLOT) -> PivSlotInfo | None:
    metadata: SlotMetadata | None = None
    try:
        metadata = session.get_slot_metadata(slot)
    except ApduError as exc:
        if exc.sw != SW.REFERENCE_DATA_NOT_FOUND:
            raise
    except NotSupportedError:
        pass
    certificate: x509.Certificate | None = None
    try:
        certificate = session.get_certificate(slot)
    except (ApduError, BadResponseError, NotSupportedError):
        certificate = None
    if metadata is None and certificate is None:
        return None
    public_fp = None
    if metadata is not None:
        with contextlib.suppress(ValueError, TypeError):
            public_fp = fingerprint(metadata.public_key)
    elif certificate is not None:
        with contextlib.suppress(ValueError, TypeError):
            public_fp = fingerprint(cast(PublicKey, certificate.public_key()))
    return PivSlotInfo(
        slot=slot_name(slot),
        algorithm=KEY_TYPE_LABELS.get(metadata.key_type) if metadata else None,
        pin_policy=policy_name(metadata.pin_policy) if metadata else None,
        touch_policy=policy_name(metadata.touch_policy) if metadata else None,
        origin=("generated" if metadata.generated else "imported") if metadata else None,
        public_key_fingerprint=public_fp,
        certificate_subject=certificate.subject.rfc4514_string() if certificate else None,
        certificate_not_after=(
            certificate.not_valid_after_utc.isoformat() if certificate else None
        ),
    )


def piv_info(open_connection: SmartCardFactory) -> PivInfo:
    """Serial, firmware, PIN/PUK tries, management key state, and the slots that hold keys."""
    with open_connection() as connection, device_errors("YubiKey PIV"):
        session = piv_session(connection)
        pin = puk = None
        with contextlib.suppress(NotSupportedError):
            pin = session.get_pin_metadata()
            puk = session.get_puk_metadata()
        try:
            mgmt = session.get_management_key_metadata()
            mgmt_type, mgmt_default = mgmt.key_type, mgmt.default_value
        except NotSupportedError:
            mgmt_type, mgmt_default = MANAGEMENT_KEY_TYPE.TDES, None
        pivman = get_pivman_data(session)
        slots = tuple(
            info for info in (_slot_info(session, s) for s in SIGNING_SLOTS) if info is not None
        )
        return PivInfo(
            serial=device_serial(session),
            firmware=str(session.version),
            pin_tries_left=pin.attempts_remaining if pin else pin_tries_left(session),
            pin_tries_total=pin.total_attempts if pin else None,
            pin_is_default=pin.default_value if pin else None,
            puk_tries_left=puk.attempts_remaining if puk else None,
            puk_tries_total=puk.total_attempts if puk else None,
            puk_is_default=puk.default_value if puk else None,
            management_key_algorithm=mgmt_type.name.lower(),
            management_key_is_default=mgmt_default,
            management_key_protected=pivman.has_stored_key,
            slots=slots,
        )


