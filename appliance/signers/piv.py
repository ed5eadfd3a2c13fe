"""Signing keys on a YubiKey's PIV application, over yubikey-manager (``yubikit.piv``, ``ykman``).

The equivalent of ``cosign piv-tool``: inspect, reset, set the PIN/PUK/management key, generate a
key (with a self-signed certificate in the slot, as ykman does), attest it, and sign with it through
:class:`PivSigner`, a :class:`airseal.trustroot.signer.Signer`.

What this module guarantees:

- **No terminal I/O.** Every function takes a connection factory (:func:`yubikey` selects a real
  YubiKey by serial over PC/SC; tests pass a software card) and callbacks: ``pin`` returns the PIN
  when the YubiKey needs it, ``notice`` tells the operator to touch the key now. PINs are asked for
  late, passed to the card, and never kept, logged or put into an error.
- **The slot's policies are honoured, not assumed.** Before a signature the signer reads the slot's
  metadata: PIN policy ALWAYS (slot 9c's default) means a PIN verification right before every
  signature, ONCE means once per connection; touch ALWAYS or CACHED means a notice first. A missed
  touch is :class:`~airseal.appliance.errors.TouchNotConfirmed` ("touch the key ... and retry"); a
  wrong PIN
  says how many tries remain; a blocked PIN says to use the PUK.
- **The registered key is the key that signs.** A :class:`PivSigner` checks that the slot still
  holds the public key of its :class:`PivKeyRef` (else
  :class:`~airseal.appliance.errors.TokenKeyMismatch`)
  and verifies each signature with it before returning it.
- **One process owns a YubiKey at a time.** PC/SC connections are exclusive, and all Airseal YubiKey
  work on a machine is serialised by one lock (a thread lock plus an ``flock``); a caller that
  cannot get it within the timeout gets :class:`~airseal.appliance.errors.YubiKeyBusy`, never a
  hang.
  Several YubiKeys attached is not an error: :func:`yubikey` picks by serial (or asks ``choose``).
- **Management keys as ykman keeps them.** A random management key is stored on the YubiKey in
  ykman's PIN-protected object (``ykman.piv.pivman_set_mgm_key(..., store_on_device=True)``), so
  later changes need only the PIN; a default, PIN-derived or operator-held key also works.

Unlike ``ykman.device.list_all_devices``, discovery here opens readers itself through
``ykman.pcsc``: ykman's own open path kills ``scdaemon``/``yubikey-agent`` when a reader is busy,
and an appliance must report a busy YubiKey instead.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID
from ykman.piv import (
    derive_management_key,
    generate_random_management_key,
    get_pivman_data,
    get_pivman_protected_data,
    pivman_change_pin,
    pivman_set_mgm_key,
    sign_certificate_builder,
)
from yubikit.core import (
    TRANSPORT,
    BadResponseError,
    InvalidPinError,
    NotSupportedError,
)
from yubikit.core.smartcard import SW, ApduError, SmartCardConnection
from yubikit.piv import (
    DEFAULT_MANAGEMENT_KEY,
    KEY_TYPE,
    MANAGEMENT_KEY_TYPE,
    PIN_POLICY,
    SLOT,
    TOUCH_POLICY,
    PivSession,
    SlotMetadata,
)

from airseal.appliance.errors import (
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
    YubiKeyError,
    YubiKeyNotFound,
)
from airseal.appliance.piv_attestation import TrustAnchors, VerifiedAttestation, verify_attestation
from airseal.trustroot.errors import UnsupportedAlgorithm
from airseal.trustroot.keys import (
    KeyAlgorithm,
    PublicKey,
    fingerprint,
    key_algorithm,
    load_public_key,
    spki_pem,
    verify_digest,
)
from airseal.trustroot.signer import sign_message_via_digest

SmartCardFactory = Callable[[], SmartCardConnection]
PinCallback = Callable[[], str]
NoticeCallback = Callable[[str], None]
SecretCallback = Callable[[], str]

LOCK_TIMEOUT_SECONDS: Final = 30.0
LOCK_FILE_ENV: Final = "AIRSEAL_YUBIKEY_LOCK"
CERTIFICATE_DAYS: Final = 3650

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


def _quiet(_message: str) -> None:
    """The default notice: say nothing."""


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


def _choice(table: dict[str, Any], value: str, what: str) -> Any:
    try:
        return table[value.lower()]
    except KeyError:
        raise UsageError(
            f"{value!r} is not a {what}", hint=f"choose one of: {', '.join(table)}"
        ) from None


def _policy_name(policy: PIN_POLICY | TOUCH_POLICY) -> str:
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


# --- errors ----------------------------------------------------------------------------------


def _pin_error(exc: InvalidPinError, what: str) -> Exception:
    left = exc.attempts_remaining
    if what == "PUK":
        if left == 0:
            return PukBlocked("the PUK is blocked (no tries left)")
        return WrongPuk(
            f"wrong PUK: {left} {'try' if left == 1 else 'tries'} left before it blocks"
        )
    if left == 0:
        return PinBlocked("the PIN is blocked (no tries left)")
    return WrongPin(
        f"wrong PIN: {left} {'try' if left == 1 else 'tries'} left before the PIN is blocked",
        hint="retype the YubiKey's PIV PIN; when it is blocked only the PUK can set a new one",
    )


def _touch_error(doing: str) -> TouchNotConfirmed:
    return TouchNotConfirmed(
        f"the YubiKey was not touched, so it did not {doing}: "
        "touch the key when it blinks and retry"
    )


@contextlib.contextmanager
def _device_errors(subject: str) -> Iterator[None]:
    """Turn what yubikit and PC/SC raise into the appliance's typed errors."""
    try:
        yield
    except NotSupportedError as exc:
        raise YubiKeyError(f"this YubiKey does not support that: {exc}", subject=subject) from None
    except BadResponseError as exc:
        raise YubiKeyError(f"unexpected answer from the YubiKey: {exc}", subject=subject) from None
    except ApduError as exc:
        if exc.sw == SW.AUTH_METHOD_BLOCKED:
            raise PinBlocked("the PIN is blocked", subject=subject) from None
        raise YubiKeyError(f"the YubiKey refused the command ({exc})", subject=subject) from None
    except _PCSC_ERRORS as exc:
        raise YubiKeyError(
            f"the YubiKey stopped answering ({type(exc).__name__}): was it removed?",
            subject=subject,
            hint="plug it in again and retry",
        ) from None


def _pcsc_errors() -> tuple[type[BaseException], ...]:
    try:
        from smartcard.Exceptions import SmartcardException
    except ImportError:  # pragma: no cover  (pyscard is a dependency of yubikey-manager)
        return ()
    return (SmartcardException,)


_PCSC_ERRORS = _pcsc_errors()


# --- one owner at a time ---------------------------------------------------------------------


class _YubiKeyLock:
    """Serialises every Airseal use of YubiKeys on this machine: threads, then processes."""

    def __init__(self) -> None:
        self._thread_lock = threading.Lock()
        self._fd: int | None = None

    @staticmethod
    def path() -> Path:
        return Path(
            os.environ.get(LOCK_FILE_ENV) or Path(tempfile.gettempdir()) / "airseal-yubikey.lock"
        )

    def acquire(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if not self._thread_lock.acquire(timeout=timeout):
            raise YubiKeyBusy(
                "another Airseal operation in this process is using the YubiKey",
                hint="finish or close it (a PIV signer holds the YubiKey until closed), then retry",
            )
        try:
            fd = os.open(self.path(), os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError:
            self._thread_lock.release()
            raise
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    self._thread_lock.release()
                    raise YubiKeyBusy(
                        f"another Airseal process holds the YubiKey lock {self.path()}"
                    ) from None
                time.sleep(0.05)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock
            self._thread_lock.release()


_LOCK = _YubiKeyLock()


class _OwnedConnection(SmartCardConnection):
    """A PC/SC connection that holds the machine-wide YubiKey lock until closed."""

    def __init__(self, inner: SmartCardConnection, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release: Callable[[], None] | None = release

    @property
    def transport(self) -> TRANSPORT:
        return self._inner.transport

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        if self._release is None:
            raise YubiKeyError("the YubiKey connection is closed")
        with _device_errors("YubiKey"):
            return self._inner.send_and_receive(apdu)

    def close(self) -> None:
        release, self._release = self._release, None
        if release is None:
            return
        try:
            self._inner.close()
        finally:
            release()


# --- discovery -------------------------------------------------------------------------------


@dataclass(frozen=True)
class YubiKeyDevice:
    """A YubiKey seen over PC/SC. ``available`` is False when another program holds it."""

    reader: str
    serial: int | None
    firmware: str | None
    form_factor: str | None
    available: bool = True

    def describe(self) -> str:
        serial = self.serial if self.serial is not None else "serial unknown"
        return f"YubiKey {serial} (firmware {self.firmware or '?'}, reader {self.reader!r})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "reader": self.reader,
            "serial": self.serial,
            "firmware": self.firmware,
            "form_factor": self.form_factor,
            "available": self.available,
        }


@dataclass
class _Seen:
    device: YubiKeyDevice
    connection: SmartCardConnection | None = field(default=None, repr=False)


def _pcsc_readers() -> list[Any]:
    from smartcard.pcsc.PCSCExceptions import BaseSCardException
    from ykman.pcsc import list_devices

    try:
        devices: list[Any] = list_devices()  # type: ignore[no-untyped-call]
    except BaseSCardException as exc:
        raise YubiKeyNotFound(
            f"PC/SC is not available ({exc})",
            hint="start the smart card service (Debian: pcscd) and plug the YubiKey in",
        ) from None
    return devices


def _open_exclusive(device: Any) -> SmartCardConnection:
    from smartcard.Exceptions import CardConnectionException, NoCardException
    from smartcard.ExclusiveConnectCardConnection import ExclusiveConnectCardConnection
    from ykman.pcsc import ScardSmartCardConnection

    connection = device.reader.createConnection()
    try:
        return ScardSmartCardConnection(  # type: ignore[no-untyped-call]
            ExclusiveConnectCardConnection(connection)
        )
    except NoCardException:
        _discard_pyscard(connection)
        raise
    except CardConnectionException:
        _discard_pyscard(connection)
        raise YubiKeyBusy(
            f"the YubiKey in reader {device.reader.name!r} is in use by another program",
            hint="close the other program (gpg's scdaemon, a browser, another airseal), then retry",
        ) from None


def _discard_pyscard(connection: Any) -> None:
    """Drop a pyscard connection whose connect failed.

    pyscard's exclusive reconnect leaves a handle that was already disconnected; disconnecting it
    again raises SystemError (also from ``__del__``), so the handle is forgotten first."""
    component = connection
    while component is not None:
        if hasattr(component, "hcard"):
            component.hcard = None
        component = getattr(component, "component", None)
    with contextlib.suppress(Exception):
        release = getattr(connection, "release", None)
        if release is not None:
            release()


def _discover(keep: Callable[[YubiKeyDevice], bool]) -> list[_Seen]:
    """Open each YubiKey reader once, read its device info, keep open those ``keep`` wants."""
    from smartcard.Exceptions import NoCardException
    from yubikit.support import read_info

    seen: list[_Seen] = []
    for device in _pcsc_readers():
        name = str(device.reader.name)
        try:
            connection = _open_exclusive(device)
        except NoCardException:
            continue
        except YubiKeyBusy:
            seen.append(_Seen(YubiKeyDevice(name, None, None, None, available=False)))
            continue
        try:
            info = read_info(connection, device.pid)
        except Exception:  # not a YubiKey after all (or not answering): skip it, say nothing
            connection.close()
            continue
        found = YubiKeyDevice(
            name,
            info.serial,
            str(info.version),
            str(info.form_factor),
        )
        if keep(found):
            seen.append(_Seen(found, connection))
        else:
            connection.close()
            seen.append(_Seen(found))
    return seen


def list_yubikeys(*, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> list[YubiKeyDevice]:
    """The YubiKeys attached over PC/SC (none is an empty list, not an error)."""
    _LOCK.acquire(lock_timeout)
    try:
        return [s.device for s in _discover(lambda _d: False)]
    finally:
        _LOCK.release()


def yubikey(
    serial: int | None = None,
    *,
    choose: Callable[[list[YubiKeyDevice]], int] | None = None,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
) -> SmartCardFactory:
    """A connection factory for one YubiKey: the one with ``serial``; without a serial, the only
    one attached, or the one ``choose`` picks (by serial) when there are several."""

    def open_connection() -> SmartCardConnection:
        _LOCK.acquire(lock_timeout)
        try:
            return _OwnedConnection(_select(serial, choose), _LOCK.release)
        except BaseException:
            _LOCK.release()
            raise

    return open_connection


def _select(
    serial: int | None, choose: Callable[[list[YubiKeyDevice]], int] | None
) -> SmartCardConnection:
    seen = _discover(lambda d: serial is None or d.serial == serial)
    try:
        usable = [s for s in seen if s.device.available]
        busy = [s.device for s in seen if not s.device.available]
        candidates = [s for s in usable if serial is None or s.device.serial == serial]
        if not candidates:
            listing = ", ".join(d.describe() for d in (s.device for s in seen)) or "none"
            if busy:
                raise YubiKeyBusy(
                    f"no free YubiKey{f' with serial {serial}' if serial else ''}: "
                    f"{len(busy)} reader(s) are in use by another program; attached: {listing}"
                )
            wanted = f"with serial {serial} " if serial is not None else ""
            raise YubiKeyNotFound(f"no YubiKey {wanted}is attached (attached: {listing})")
        if len(candidates) > 1:
            devices = [s.device for s in candidates]
            if choose is None:
                serials = ", ".join(str(d.serial) for d in devices)
                raise UsageError(
                    f"{len(devices)} YubiKeys are attached (serials {serials})",
                    hint="choose one with --serial",
                )
            picked = choose(devices)
            candidates = [s for s in candidates if s.device.serial == picked]
            if len(candidates) != 1:
                raise YubiKeyNotFound(f"no attached YubiKey has serial {picked}")
        chosen = candidates[0]
        connection = chosen.connection
        assert connection is not None
        chosen.connection = None
        return connection
    finally:
        for s in seen:
            if s.connection is not None:
                s.connection.close()


# --- sessions, PIN and management key ----------------------------------------------------------


def _session(connection: SmartCardConnection) -> PivSession:
    with _device_errors("YubiKey PIV"):
        return PivSession(connection)


def _serial(session: PivSession) -> int | None:
    try:
        return session.get_serial()
    except (NotSupportedError, ApduError):
        return None


def _pin_tries_left(session: PivSession) -> int | None:
    try:
        return session.get_pin_metadata().attempts_remaining
    except NotSupportedError:
        return None


def _verify_pin(session: PivSession, pin: PinCallback) -> None:
    """Ask for the PIN and verify it; the PIN is not kept."""
    if _pin_tries_left(session) == 0:
        raise PinBlocked("the PIN is blocked (no tries left)")
    value = _check_given(pin(), "PIN")
    try:
        session.verify_pin(value)
    except InvalidPinError as exc:
        raise _pin_error(exc, "PIN") from None


def _check_given(value: object, what: str) -> str:
    """Refuse, without sending it, a PIN/PUK that cannot be right: every send costs a try."""
    if not isinstance(value, str) or not value:
        raise PinError(f"no {what} was given; nothing was sent to the YubiKey")
    if not 6 <= len(value.encode("utf-8")) <= 8:
        raise PinError(
            f"a PIV {what} has 6 to 8 characters; nothing was sent to the YubiKey",
            hint=f"retype the {what}",
        )
    return value


def _check_new_secret(value: str, what: str) -> str:
    if not 6 <= len(value.encode("utf-8")) <= 8:
        raise UsageError(f"a new PIV {what} must have 6 to 8 characters (bytes)")
    return value


def _parse_management_key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip().replace(":", "").replace(" ", ""))
    except ValueError:
        raise ManagementKeyError("the management key is not hexadecimal") from None
    if len(key) not in (16, 24, 32):
        raise ManagementKeyError("a management key is 16, 24 or 32 bytes (32, 48 or 64 hex digits)")
    return key


def _authenticate(
    session: PivSession,
    *,
    pin: PinCallback,
    management_key: SecretCallback | None,
    notice: NoticeCallback,
) -> bool:
    """Authenticate with the management key however this YubiKey keeps it.

    Returns whether the PIN was verified on the way (a PIN-protected key needs it)."""
    with _device_errors("YubiKey PIV"):
        pivman = get_pivman_data(session)
        try:
            metadata = session.get_management_key_metadata()
            is_default, touch = metadata.default_value, metadata.touch_policy
        except NotSupportedError:
            is_default, touch = False, TOUCH_POLICY.NEVER
    pin_verified = False
    if pivman.has_stored_key:
        _verify_pin(session, pin)
        pin_verified = True
        with _device_errors("YubiKey PIV"):
            key = get_pivman_protected_data(session).key
        if key is None:
            raise ManagementKeyError("the YubiKey's PIN-protected management key object is empty")
    elif pivman.has_derived_key:
        value = _check_given(pin(), "PIN")
        try:
            session.verify_pin(value)
        except InvalidPinError as exc:
            raise _pin_error(exc, "PIN") from None
        pin_verified = True
        assert pivman.salt is not None
        key = derive_management_key(value, pivman.salt)
    elif is_default:
        key = DEFAULT_MANAGEMENT_KEY
    elif management_key is not None:
        key = _parse_management_key(management_key())
    else:
        raise ManagementKeyError("this YubiKey's management key is needed and none was given")
    if touch != TOUCH_POLICY.NEVER:
        notice("Touch your YubiKey now to unlock its management key.")
    try:
        session.authenticate(key)
    except ApduError as exc:
        if exc.sw == SW.CONDITIONS_NOT_SATISFIED:
            raise _touch_error("accept the management key") from None
        raise ManagementKeyError("the YubiKey refused the management key") from None
    except (BadResponseError, ValueError):
        raise ManagementKeyError("the YubiKey refused the management key") from None
    return pin_verified


# --- information -----------------------------------------------------------------------------


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


_KEY_TYPE_LABELS: Final = {
    KEY_TYPE.ECCP256: "ecdsa-p256",
    KEY_TYPE.ECCP384: "ecdsa-p384",
    KEY_TYPE.RSA1024: "rsa-1024",
    KEY_TYPE.RSA2048: "rsa-2048",
    KEY_TYPE.RSA3072: "rsa-3072",
    KEY_TYPE.RSA4096: "rsa-4096",
    KEY_TYPE.ED25519: "ed25519",
    KEY_TYPE.X25519: "x25519",
}


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
        algorithm=_KEY_TYPE_LABELS.get(metadata.key_type) if metadata else None,
        pin_policy=_policy_name(metadata.pin_policy) if metadata else None,
        touch_policy=_policy_name(metadata.touch_policy) if metadata else None,
        origin=("generated" if metadata.generated else "imported") if metadata else None,
        public_key_fingerprint=public_fp,
        certificate_subject=certificate.subject.rfc4514_string() if certificate else None,
        certificate_not_after=(
            certificate.not_valid_after_utc.isoformat() if certificate else None
        ),
    )


def piv_info(open_connection: SmartCardFactory) -> PivInfo:
    """Serial, firmware, PIN/PUK tries, management key state, and the slots that hold keys."""
    with open_connection() as connection, _device_errors("YubiKey PIV"):
        session = _session(connection)
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
            serial=_serial(session),
            firmware=str(session.version),
            pin_tries_left=pin.attempts_remaining if pin else _pin_tries_left(session),
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


# --- administration --------------------------------------------------------------------------


def piv_reset(open_connection: SmartCardFactory, *, confirm: bool = False) -> None:
    """Erase the PIV application: every key and certificate, PIN/PUK/management key to defaults.

    Refuses unless ``confirm`` is exactly True: this cannot be undone."""
    if confirm is not True:
        raise UsageError(
            "resetting the PIV application erases every key on the YubiKey; it was not confirmed",
            hint="confirm explicitly (`airseal piv reset --yes`, or type the confirmation)",
        )
    with open_connection() as connection, _device_errors("YubiKey PIV"):
        session = _session(connection)
        session.reset()


def set_pin(open_connection: SmartCardFactory, old_pin: str, new_pin: str) -> None:
    """Change the PIN (keeping ykman's PIN-derived management key in step, if one is used)."""
    _check_given(old_pin, "PIN")
    _check_new_secret(new_pin, "PIN")
    with open_connection() as connection, _device_errors("YubiKey PIV"):
        session = _session(connection)
        try:
            pivman_change_pin(session, old_pin, new_pin)
        except InvalidPinError as exc:
            raise _pin_error(exc, "PIN") from None


def set_puk(open_connection: SmartCardFactory, old_puk: str, new_puk: str) -> None:
    _check_given(old_puk, "PUK")
    _check_new_secret(new_puk, "PUK")
    with open_connection() as connection, _device_errors("YubiKey PIV"):
        session = _session(connection)
        try:
            session.change_puk(old_puk, new_puk)
        except InvalidPinError as exc:
            raise _pin_error(exc, "PUK") from None


def unblock_pin(open_connection: SmartCardFactory, puk: str, new_pin: str) -> None:
    """Set a new PIN with the PUK (what a blocked PIN needs)."""
    _check_given(puk, "PUK")
    _check_new_secret(new_pin, "PIN")
    with open_connection() as connection, _device_errors("YubiKey PIV"):
        session = _session(connection)
        try:
            session.unblock_pin(puk, new_pin)
        except InvalidPinError as exc:
            raise _pin_error(exc, "PUK") from None


@dataclass(frozen=True)
class ManagementKeyChange:
    algorithm: str
    protected_by_pin: bool
    touch_required: bool


def set_management_key(
    open_connection: SmartCardFactory,
    *,
    pin: PinCallback,
    random: bool = False,
    new_key: str | None = None,
    algorithm: str | None = None,
    require_touch: bool = False,
    management_key: SecretCallback | None = None,
    notice: NoticeCallback = _quiet,
) -> ManagementKeyChange:
    """Replace the management key.

    With ``random=True`` a fresh random key is stored on the YubiKey PIN-protected, exactly as
    ``ykman piv access change-management-key --generate --protect`` does, and is never shown.
    With ``new_key`` (hex) the operator keeps the key; any protected copy is removed."""
    if random == (new_key is not None):
        raise UsageError("give either a new management key or random=True, not both or neither")
    with open_connection() as connection, _device_errors("YubiKey PIV"):
        session = _session(connection)
        if algorithm is None:
            key_type = (
                MANAGEMENT_KEY_TYPE.AES256
                if session.version >= (5, 4, 0)
                else MANAGEMENT_KEY_TYPE.TDES
            )
        else:
            key_type = _choice(MANAGEMENT_KEY_ALGORITHMS, algorithm, "management key algorithm")
        if new_key is not None:
            key = _parse_management_key(new_key)
            if len(key) != key_type.key_len:
                raise UsageError(
                    f"a {key_type.name} management key is {key_type.key_len} bytes, not {len(key)}"
                )
        else:
            key = generate_random_management_key(key_type)
        pin_verified = _authenticate(session, pin=pin, management_key=management_key, notice=notice)
        if not pin_verified and (random or get_pivman_data(session).has_stored_key):
            _verify_pin(session, pin)  # the protected object is written (or cleared) under the PIN
        pivman_set_mgm_key(session, key, key_type, touch=require_touch, store_on_device=random)
        return ManagementKeyChange(key_type.name.lower(), random, require_touch)


# --- keys ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GeneratedPivKey:
    ref: PivKeyRef
    algorithm: str
    pin_policy: str
    touch_policy: str
    certificate_pem: str


def _needs_touch(policy: TOUCH_POLICY) -> bool:
    return policy in (TOUCH_POLICY.ALWAYS, TOUCH_POLICY.CACHED)


def _touch_notice(notice: NoticeCallback, policy: TOUCH_POLICY, serial: int | None) -> None:
    if not _needs_touch(policy):
        return
    which = f"YubiKey {serial}" if serial is not None else "your YubiKey"
    if policy == TOUCH_POLICY.CACHED:
        notice(f"Touch {which} now if it blinks (it is waiting for a touch to sign).")
    else:
        notice(f"Touch {which} now: it blinks until touched, then signs.")


def generate_key(
    open_connection: SmartCardFactory,
    *,
    pin: PinCallback,
    slot: str = "9c",
    algorithm: str = "ecdsa-p256",
    pin_policy: str = "default",
    touch_policy: str = "default",
    management_key: SecretCallback | None = None,
    notice: NoticeCallback = _quiet,
    subject: str | None = None,
    now: dt.datetime | None = None,
) -> GeneratedPivKey:
    """Generate a key in ``slot`` on the YubiKey and write a self-signed certificate for it.

    Policies ``default`` are the YubiKey's own (9c: PIN always, touch never). Any key already in
    the slot is replaced. Returns the reference to store and the certificate written."""
    slot_id = parse_slot(slot)
    key_type = _choice(ALGORITHMS, algorithm, "PIV key algorithm")
    pin_p = _choice(PIN_POLICIES, pin_policy, "PIN policy")
    touch_p = _choice(TOUCH_POLICIES, touch_policy, "touch policy")
    moment = now or dt.datetime.now(dt.UTC)
    with open_connection() as connection, _device_errors("YubiKey PIV"):
        session = _session(connection)
        serial = _serial(session)
        session.check_key_support(key_type, pin_p, touch_p, True)
        pin_verified = _authenticate(session, pin=pin, management_key=management_key, notice=notice)
        public_key = session.generate_key(slot_id, key_type, pin_p, touch_p)
        try:
            metadata = session.get_slot_metadata(slot_id)
            effective_pin, effective_touch = metadata.pin_policy, metadata.touch_policy
        except NotSupportedError:
            effective_pin = pin_p if pin_p != PIN_POLICY.DEFAULT else PIN_POLICY.ONCE
            effective_touch = touch_p if touch_p != TOUCH_POLICY.DEFAULT else TOUCH_POLICY.NEVER
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
            _verify_pin(session, pin)
        _touch_notice(notice, effective_touch, serial)
        try:
            certificate = sign_certificate_builder(session, slot_id, key_type, builder)
        except ApduError as exc:
            if exc.sw == SW.CONDITIONS_NOT_SATISFIED:
                raise _touch_error("sign the key's certificate") from None
            raise
        session.put_certificate(slot_id, certificate)
    public_pem = spki_pem(cast(PublicKey, public_key)).decode("ascii")
    ref = PivKeyRef(serial, slot_name(slot_id), public_pem)
    return GeneratedPivKey(
        ref=ref,
        algorithm=_KEY_TYPE_LABELS[key_type],
        pin_policy=_policy_name(effective_pin),
        touch_policy=_policy_name(effective_touch),
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    )


def read_key(open_connection: SmartCardFactory, slot: str = "9c") -> PivKeyRef:
    """The reference for a key already in a slot (``airseal key import NAME --piv``)."""
    slot_id = parse_slot(slot)
    with open_connection() as connection, _device_errors("YubiKey PIV"):
        session = _session(connection)
        public_key = _slot_public_key(session, slot_id)
        return PivKeyRef(_serial(session), slot_name(slot_id), spki_pem(public_key).decode("ascii"))


def _slot_public_key(session: PivSession, slot_id: SLOT) -> PublicKey:
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


# --- attestation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PivAttestation:
    """A slot's attestation certificate and the device's attestation (F9) certificate."""

    slot: str
    serial: int | None
    attestation: x509.Certificate
    device_certificate: x509.Certificate
    slot_public_key_pem: str

    def verify(
        self, *, now: dt.datetime, anchors: TrustAnchors | None = None
    ) -> VerifiedAttestation:
        """Chain to ``anchors`` (default: Yubico's shipped roots) and check it is this key."""
        return verify_attestation(
            self.attestation,
            self.device_certificate,
            now=now,
            anchors=anchors,
            expected_public_key_pem=self.slot_public_key_pem,
            expected_serial=self.serial,
        )

    def chain_pem(self) -> str:
        return "".join(
            c.public_bytes(serialization.Encoding.PEM).decode("ascii")
            for c in (self.attestation, self.device_certificate)
        )


def attestation(open_connection: SmartCardFactory, slot: str = "9c") -> PivAttestation:
    """Ask the YubiKey to attest the key in ``slot`` (only keys generated on it can be)."""
    slot_id = parse_slot(slot)
    with open_connection() as connection, _device_errors("YubiKey PIV"):
        session = _session(connection)
        public_key = _slot_public_key(session, slot_id)
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
            _serial(session),
            attested,
            device,
            spki_pem(public_key).decode("ascii"),
        )


# --- signing ---------------------------------------------------------------------------------


def _close_held(held: list[SmartCardConnection]) -> None:
    while held:
        held.pop().close()


class PivSigner:
    """A :class:`airseal.trustroot.signer.Signer` over a YubiKey PIV slot.

    Holds the YubiKey (and the machine-wide YubiKey lock) from its first signature until
    :meth:`close` or the end of its ``with`` block, so that an export signing many statements
    opens the device once. Thread-safe."""

    def __init__(
        self,
        ref: PivKeyRef,
        *,
        pin: PinCallback,
        notice: NoticeCallback = _quiet,
        open_connection: SmartCardFactory | None = None,
    ) -> None:
        self._ref = ref
        self._public_key = ref.public_key
        self._algorithm = key_algorithm(self._public_key)
        self._pin = pin
        self._notice = notice
        self._open = open_connection or yubikey(ref.serial)
        self._lock = threading.Lock()
        self._connection: SmartCardConnection | None = None
        # what the finalizer closes if the signer is dropped unclosed (it holds the YubiKey lock)
        self._held: list[SmartCardConnection] = []
        self._finalizer = weakref.finalize(self, _close_held, self._held)
        self._session: PivSession | None = None
        self._metadata: SlotMetadata | None = None
        self._key_type: KEY_TYPE | None = None
        self._pin_verified = False
        self._serial: int | None = ref.serial

    @property
    def ref(self) -> PivKeyRef:
        return self._ref

    @property
    def public_key(self) -> PublicKey:
        return self._public_key

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self._algorithm

    def _ensure_open(self) -> PivSession:
        if self._session is not None:
            return self._session
        slot_id = parse_slot(self._ref.slot)
        connection = self._open()
        try:
            with _device_errors(self._ref.describe()):
                session = PivSession(connection)
                serial = _serial(session)
                if self._ref.serial is not None and serial != self._ref.serial:
                    raise YubiKeyNotFound(
                        f"the YubiKey attached has serial {serial}, the key is on "
                        f"{self._ref.serial}",
                        subject=self._ref.describe(),
                    )
                current = _slot_public_key(session, slot_id)
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
                _verify_pin(session, self._pin)
                self._pin_verified = True
            _touch_notice(self._notice, touch_policy, self._serial)
            assert self._key_type is not None
            with _device_errors(self._ref.describe()):
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
                        raise _touch_error("sign") from None
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

    def sign_message(self, message: bytes) -> bytes:
        return sign_message_via_digest(self, message)

    def close(self) -> None:
        with self._lock:
            self._connection, self._session = None, None
            self._pin_verified = False
            _close_held(self._held)

    def __enter__(self) -> PivSigner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
