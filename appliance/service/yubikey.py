"""PIV management of one YubiKey, behind the service: front ends never touch the PIV backend.

A :class:`YubiKeyPiv` is bound to one connection factory (a real YubiKey over PC/SC, or the one the
options inject) and forwards to :mod:`airseal.appliance.signers.piv`; results and errors are the
backend's own typed ones.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airseal.appliance.signers import piv as _piv
from airseal.appliance.signers.piv import (
    ALGORITHMS,
    MANAGEMENT_KEY_ALGORITHMS,
    PIN_POLICIES,
    TOUCH_POLICIES,
    GeneratedPivKey,
    ManagementKeyChange,
    PivAttestation,
    PivInfo,
    PivKeyRef,
)

if TYPE_CHECKING:
    from airseal.appliance.piv_attestation import VerifiedAttestation
    from airseal.appliance.service.options import ApplianceOptions
    from airseal.trustroot.keys import PublicKey

Secret = Callable[[], str]


def _quiet(_message: str) -> None:
    """No one to tell."""


class YubiKeyPiv:
    def __init__(self, open_connection: Callable[[], Any], options: ApplianceOptions) -> None:
        self.open_connection = open_connection
        self._options = options

    def info(self) -> PivInfo:
        return _piv.piv_info(self.open_connection)

    def reset(self, *, confirm: bool = False) -> None:
        """Erase every PIV key and credential (only with ``confirm=True``)."""
        _piv.piv_reset(self.open_connection, confirm=confirm)

    def set_pin(self, old_pin: str, new_pin: str) -> None:
        _piv.set_pin(self.open_connection, old_pin, new_pin)

    def set_puk(self, old_puk: str, new_puk: str) -> None:
        _piv.set_puk(self.open_connection, old_puk, new_puk)

    def unblock_pin(self, puk: str, new_pin: str) -> None:
        _piv.unblock_pin(self.open_connection, puk, new_pin)

    def set_management_key(
        self,
        *,
        pin: Secret,
        random: bool = False,
        new_key: str | None = None,
        algorithm: str | None = None,
        require_touch: bool = False,
        management_key: Secret | None = None,
        notice: Callable[[str], None] = _quiet,
    ) -> ManagementKeyChange:
        return _piv.set_management_key(
            self.open_connection, pin=pin, random=random, new_key=new_key, algorithm=algorithm,
            require_touch=require_touch, management_key=management_key, notice=notice,
        )

    def generate_key(
        self,
        *,
        pin: Secret,
        slot: str = "9c",
        algorithm: str = "ecdsa-p256",
        pin_policy: str = "default",
        touch_policy: str = "default",
        management_key: Secret | None = None,
        notice: Callable[[str], None] = _quiet,
        subject: str | None = None,
        now: datetime | None = None,
    ) -> GeneratedPivKey:
        """A new key in ``slot`` with a self-signed certificate (replacing what was there)."""
        return _piv.generate_key(
            self.open_connection, pin=pin, slot=slot, algorithm=algorithm,
            pin_policy=pin_policy, touch_policy=touch_policy, management_key=management_key,
            notice=notice, subject=subject, now=now if now is not None else self._options.clock(),
        )

    def attestation(self, slot: str = "9c") -> PivAttestation:
        return _piv.attestation(self.open_connection, slot)

    def verify_attested(self, attested: PivAttestation) -> VerifiedAttestation:
        """``attested`` chained to the configured anchors (default: Yubico's), now."""
        return attested.verify(now=self._options.clock(), anchors=self._options.attestation_anchors)


def key_fingerprint(public_key: PublicKey) -> str:
    """The key's SHA-256 fingerprint, as the key list shows it."""
    from airseal.trustroot.keys import fingerprint

    return fingerprint(public_key)


__all__ = [
    "ALGORITHMS",
    "MANAGEMENT_KEY_ALGORITHMS",
    "PIN_POLICIES",
    "TOUCH_POLICIES",
    "GeneratedPivKey",
    "ManagementKeyChange",
    "PivAttestation",
    "PivInfo",
    "PivKeyRef",
    "YubiKeyPiv",
    "key_fingerprint",
]
