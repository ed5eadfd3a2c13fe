"""Asking a YubiKey to attest a slot's key.

The device returns certificates; what they prove is decided in
:mod:`airseal.appliance.piv_attestation`, which never talks to a device.
"""

from __future__ import annotations

from yubikit.core.smartcard import SW, ApduError
from yubikit.piv import SLOT

from airseal.appliance.errors import YubiKeyError
from airseal.appliance.piv_attestation import PivAttestation
from airseal.appliance.signers.piv.devices import (
    SmartCardFactory,
    device_errors,
    device_serial,
    piv_session,
)
from airseal.appliance.signers.piv.keys import slot_public_key
from airseal.appliance.signers.piv.slots import parse_slot, slot_name
from airseal.trustroot.keys import spki_pem


def attestation(open_connection: SmartCardFactory, slot: str = "9c") -> PivAttestation:
    """Ask the YubiKey to attest the key in ``slot`` (only keys generated on it can be)."""
    slot_id = parse_slot(slot)
    with open_connection() as connection, device_errors("YubiKey PIV"):
        session = piv_session(connection)
        public_key = slot_public_key(session, slot_id)
        try:
            attested = session.attest_key(slot_id)
        except ApduError as exc:
            if exc.sw in (SW.INCORRECT_PARAMETERS, SW.REFERENCE_DATA_NOT_FOUND):
                raise YubiKeyError(
                    f"slot {slot_name(slot_id)}'s key cannot be attested: only keys generated on "
                    "the YubiKey can be (this one was imported)",
                ) from None
            raise
        device = session.get_certificate(SLOT.ATTESTATION)
        return PivAttestation(
            slot_name(slot_id),
            device_serial(session),
            attested,
            device,
            spki_pem(public_key).decode("ascii"),
        )


