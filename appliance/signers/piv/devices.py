"""Finding and owning a YubiKey: PC/SC discovery, the machine-wide lock, and device errors.

**One process owns a YubiKey at a time.** PC/SC connections are exclusive, and all Airseal YubiKey
work on a machine is serialised by one lock (a thread lock plus an ``flock``); a caller that cannot
get it within the timeout gets :class:`~airseal.appliance.errors.YubiKeyBusy`, never a hang.
Several YubiKeys attached is not an error: :func:`yubikey` picks by serial (or asks ``choose``).

Unlike ``ykman.device.list_all_devices``, discovery here opens readers itself through
``ykman.pcsc``: ykman's own open path kills ``scdaemon``/``yubikey-agent`` when a reader is busy,
and an appliance must report a busy YubiKey instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from yubikit.core import TRANSPORT, BadResponseError, NotSupportedError
from yubikit.core.smartcard import SW, ApduError, SmartCardConnection
from yubikit.piv import PivSession

from airseal.appliance.errors import (
    PinBlocked,
    UsageError,
    YubiKeyBusy,
    YubiKeyError,
    YubiKeyNotFound,
)

SmartCardFactory = Callable[[], SmartCardConnection]

LOCK_TIMEOUT_SECONDS: Final = 30.0
LOCK_FILE_ENV: Final = "AIRSEAL_YUBIKEY_LOCK"

@contextlib.contextmanager
def device_errors(subject: str) -> Iterator[None]:
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
        with device_errors("YubiKey"):
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


# --- the PIV application on a connection ------------------------------------------------------


def piv_session(connection: SmartCardConnection) -> PivSession:
    """The PIV application selected on ``connection``, failures as typed errors."""
    with device_errors("YubiKey PIV"):
        return PivSession(connection)


def device_serial(session: PivSession) -> int | None:
    """The YubiKey's serial, or None where the firmware or configuration hides it."""
    try:
        return session.get_serial()
    except (NotSupportedError, ApduError):
        return None

