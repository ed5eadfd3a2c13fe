"""PIV slots, key algorithms and policies by name, and :class:`PivKeyRef`, what the database keeps.

Operators and records name slots as ``9c``; yubikit names them ``SLOT.SIGNATURE``. This module
holds the one translation between the two, and refuses slot F9 (the attestation key) wherever a
signing slot is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from yubikit.piv import KEY_TYPE, MANAGEMENT_KEY_TYPE, PIN_POLICY, SLOT, TOUCH_POLICY

from airseal.appliance.errors import UsageError
from airseal.trustroot.errors import UnsupportedAlgorithm
from airseal.trustroot.keys import PublicKey, key_algorithm, load_public_key

ALGORITHMS: Final = {
    "ecdsa-p256": KEY_TYPE.ECCP256,
    "ecdsa-p384": KEY_TYPE.ECCP384,
    "rsa-2048": KEY_TYPE.RSA2048,
}
PIN_POLICIES: Final = {
    "default": PIN_POLICY.DEFAULT,
    "never": PIN_POLICY.NEVER,
    "once": PIN_POLICY.ONCE,
    "always": PIN_POLICY.ALWAYS,
}
TOUCH_POLICIES: Final = {
    "default": TOUCH_POLICY.DEFAULT,
    "never": TOUCH_POLICY.NEVER,
    "always": TOUCH_POLICY.ALWAYS,
    "cached": TOUCH_POLICY.CACHED,
}
MANAGEMENT_KEY_ALGORITHMS: Final = {
    "tdes": MANAGEMENT_KEY_TYPE.TDES,
    "aes128": MANAGEMENT_KEY_TYPE.AES128,
    "aes192": MANAGEMENT_KEY_TYPE.AES192,
    "aes256": MANAGEMENT_KEY_TYPE.AES256,
}
SIGNING_SLOTS: Final = tuple(s for s in SLOT if s != SLOT.ATTESTATION)


# --- slots and names -------------------------------------------------------------------------


def parse_slot(text: str | int | SLOT) -> SLOT:
    """A PIV key slot from ``9c``/``0x9c``/``signature``/an int. F9 (attestation) is refused."""
    if isinstance(text, SLOT):
        slot = text
    elif isinstance(text, int):
        slot = _slot_from_int(text, str(text))
    else:
        value = text.strip().lower()
        by_name = {s.name.lower(): s for s in SLOT}
        if value in by_name:
            slot = by_name[value]
        else:
            try:
                number = int(value.removeprefix("0x"), 16)
            except ValueError:
                raise UsageError(f"{text!r} is not a PIV slot", hint=_SLOT_HINT) from None
            slot = _slot_from_int(number, text)
    if slot == SLOT.ATTESTATION:
        raise UsageError("slot f9 holds the YubiKey's attestation key", hint=_SLOT_HINT)
    return slot


_SLOT_HINT = "PIV key slots are 9a, 9c (signature, the default), 9d, 9e and 82-95"


def _slot_from_int(number: int, text: str) -> SLOT:
    try:
        return SLOT(number)
    except ValueError:
        raise UsageError(f"{text!r} is not a PIV slot", hint=_SLOT_HINT) from None


def slot_name(slot: SLOT) -> str:
    return f"{int(slot):02x}"


def choice_from(table: dict[str, Any], value: str, what: str) -> Any:
    try:
        return table[value.lower()]
    except KeyError:
        raise UsageError(
            f"{value!r} is not a {what}", hint=f"choose one of: {', '.join(table)}"
        ) from None


def policy_name(policy: PIN_POLICY | TOUCH_POLICY) -> str:
    return policy.name.lower().replace("_", "-")


# --- the key reference -----------------------------------------------------------------------


@dataclass(frozen=True)
class PivKeyRef:
    """What the appliance stores to find a PIV key again: no secret, validated on construction."""

    serial: int | None
    slot: str
    public_key_pem: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "slot", slot_name(parse_slot(self.slot)))
        if self.serial is not None and not 0 < self.serial < 2**32:
            raise UsageError(f"{self.serial} is not a YubiKey serial number")
        algorithm = key_algorithm(self.public_key)
        if not algorithm.prehashed:
            raise UnsupportedAlgorithm("Airseal signs with PIV EC P-256/P-384 and RSA keys")

    @property
    def public_key(self) -> PublicKey:
        return load_public_key(self.public_key_pem.encode("ascii"), subject=self.describe())

    def describe(self) -> str:
        device = f"YubiKey {self.serial}" if self.serial is not None else "YubiKey"
        return f"{device} slot {self.slot}"

    def to_record(self) -> dict[str, Any]:
        return {"serial": self.serial, "slot": self.slot, "public_key_pem": self.public_key_pem}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PivKeyRef:
        serial = record.get("serial")
        return cls(
            serial=int(serial) if serial is not None else None,
            slot=str(record["slot"]),
            public_key_pem=str(record["public_key_pem"]),
        )


KEY_TYPE_LABELS: Final = {
    KEY_TYPE.ECCP256: "ecdsa-p256",
    KEY_TYPE.ECCP384: "ecdsa-p384",
    KEY_TYPE.RSA1024: "rsa-1024",
    KEY_TYPE.RSA2048: "rsa-2048",
    KEY_TYPE.RSA3072: "rsa-3072",
    KEY_TYPE.RSA4096: "rsa-4096",
    KEY_TYPE.ED25519: "ed25519",
    KEY_TYPE.X25519: "x25519",
}

