"""Signing with a PIV slot: :class:`PivSigner`, the equivalent of ``cosign``'s PIV signing.

**The registered key is the key that signs.** The signer checks that the slot still holds the
public key of its :class:`PivKeyRef` (else :class:`~airseal.appliance.errors.TokenKeyMismatch`)
and verifies each signature with it before returning it. Before a signature it reads the slot's
metadata: PIN policy ALWAYS (slot 9c's default) means a PIN verification right before every
signature, ONCE means once per connection; touch ALWAYS or CACHED means a notice first.
"""

from __future__ import annotations

import weakref
from typing import cast

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from yubikit.core import NotSupportedError
from yubikit.core.smartcard import SW, ApduError, SmartCardConnection
from yubikit.piv import KEY_TYPE, PIN_POLICY, TOUCH_POLICY, PivSession, SlotMetadata

from airseal.appliance.errors import TokenKeyMismatch, UsageError, YubiKeyError, YubiKeyNotFound
from airseal.appliance.signers.hardware import HardwareSigner
from airseal.appliance.signers.piv.access import (
    NoticeCallback,
    PinCallback,
    no_notice,
    touch_error,
    touch_notice,
    verify_pin,
)
from airseal.appliance.signers.piv.devices import (
    SmartCardFactory,
    device_errors,
    device_serial,
    yubikey,
)
from airseal.appliance.signers.piv.keys import slot_public_key
from airseal.appliance.signers.piv.slots import PivKeyRef, parse_slot
from airseal.trustroot.keys import fingerprint, verify_digest


def _close_held(held: list[SmartCardConnection]) -> None:
    while held:
        held.pop().close()


class PivSigner(HardwareSigner[PivKeyRef]):
    """A :class:`airseal.trustroot.signer.Signer` over a YubiKey PIV slot.

    Holds the YubiKey (and the machine-wide YubiKey lock) from its first signature until
    :meth:`close` or the end of its ``with`` block, so that an export signing many statements
    opens the device once. Thread-safe."""

    def __init__(
        self,
        ref: PivKeyRef,
        *,
        pin: PinCallback,
        notice: NoticeCallback = no_notice,
        open_connection: SmartCardFactory | None = None,
    ) -> None:
        super().__init__(ref, ref.public_key)
        self._pin = pin
        self._notice = notice
        self._open = open_connection or yubikey(ref.serial)
        self._connection: SmartCardConnection | None = None
        # what the finalizer closes if the signer is dropped unclosed (it holds the YubiKey lock)
        self._held: list[SmartCardConnection] = []
        self._finalizer = weakref.finalize(self, _close_held, self._held)
        self._session: PivSession | None = None
        self._metadata: SlotMetadata | None = None
        self._key_type: KEY_TYPE | None = None
        self._pin_verified = False
        self._serial: int | None = ref.serial

    def _ensure_open(self) -> PivSession:
        if self._session is not None:
            return self._session
        slot_id = parse_slot(self._ref.slot)
        connection = self._open()
        try:
            with device_errors(self._ref.describe()):
                session = PivSession(connection)
                serial = device_serial(session)
                if self._ref.serial is not None and serial != self._ref.serial:
                    raise YubiKeyNotFound(
                        f"the YubiKey attached has serial {serial}, the key is on "
                        f"{self._ref.serial}",
                        subject=self._ref.describe(),
                    )
                current = slot_public_key(session, slot_id)
                if fingerprint(current) != fingerprint(self._public_key):
                    raise TokenKeyMismatch(
                        f"the slot holds key {fingerprint(current)[:16]}, the registered key is "
                        f"{fingerprint(self._public_key)[:16]}",
                        subject=self._ref.describe(),
                        hint="the slot's key was replaced (generate-key or reset); register the "
                        "new key if that was intended",
                    )
                try:
                    self._metadata = session.get_slot_metadata(slot_id)
                    self._key_type = self._metadata.key_type
                except NotSupportedError:
                    self._metadata = None
                    self._key_type = KEY_TYPE.from_public_key(self._public_key)
        except BaseException:
            connection.close()
            raise
        self._connection, self._session, self._serial = connection, session, serial
        self._held.append(connection)
        return session

    def sign_digest(self, sha256_digest: bytes) -> bytes:
        if len(sha256_digest) != 32:
            raise UsageError("sign_digest takes a SHA-256 digest (32 bytes)")
        with self._lock:
            session = self._ensure_open()
            metadata = self._metadata
            pin_policy = metadata.pin_policy if metadata else PIN_POLICY.ONCE
            touch_policy = metadata.touch_policy if metadata else TOUCH_POLICY.NEVER
            if pin_policy == PIN_POLICY.ALWAYS or (
                pin_policy == PIN_POLICY.ONCE and not self._pin_verified
            ):
                verify_pin(session, self._pin)
                self._pin_verified = True
            touch_notice(self._notice, touch_policy, self._serial)
            assert self._key_type is not None
            with device_errors(self._ref.describe()):
                try:
                    signature = session.sign(
                        parse_slot(self._ref.slot),
                        self._key_type,
                        sha256_digest,
                        cast(hashes.HashAlgorithm, Prehashed(hashes.SHA256())),
                        padding.PKCS1v15(),
                    )
                except ApduError as exc:
                    if exc.sw == SW.CONDITIONS_NOT_SATISFIED:
                        raise touch_error("sign") from None
                    if exc.sw == SW.SECURITY_CONDITION_NOT_SATISFIED:
                        self._pin_verified = False
                        raise YubiKeyError(
                            "the YubiKey wants the PIN verified again before it signs",
                            subject=self._ref.describe(),
                            hint="retry; the PIN is asked for again",
                        ) from None
                    raise
        verify_digest(self._public_key, signature, sha256_digest, subject=self._ref.describe())
        return signature

    def close(self) -> None:
        with self._lock:
            self._connection, self._session = None, None
            self._pin_verified = False
            _close_held(self._held)
