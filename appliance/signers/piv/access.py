"""Unlocking a YubiKey's PIV application: PIN, PUK, touch and the management key.

PINs are asked for late, through a ``pin`` callback, passed to the card and never kept, logged or
put into an error; a PIN or PUK that cannot be right is refused before it is sent (every send
costs a try). A wrong PIN says how many tries remain; a blocked PIN says to use the PUK; a missed
touch is :class:`~airseal.appliance.errors.TouchNotConfirmed`.

**Management keys as ykman keeps them.** A random management key is stored on the YubiKey in
ykman's PIN-protected object (``ykman.piv.pivman_set_mgm_key(..., store_on_device=True)``), so
later changes need only the PIN; a default, PIN-derived or operator-held key also works.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ykman.piv import (
    derive_management_key,
    generate_random_management_key,
    get_pivman_data,
    get_pivman_protected_data,
    pivman_change_pin,
    pivman_set_mgm_key,
)
from yubikit.core import BadResponseError, InvalidPinError, NotSupportedError
from yubikit.core.smartcard import SW, ApduError
from yubikit.piv import DEFAULT_MANAGEMENT_KEY, MANAGEMENT_KEY_TYPE, TOUCH_POLICY, PivSession

from airseal.appliance.errors import (
    ManagementKeyError,
    PinBlocked,
    PinError,
    PukBlocked,
    TouchNotConfirmed,
    UsageError,
    WrongPin,
    WrongPuk,
)
from airseal.appliance.signers.piv.devices import SmartCardFactory, device_errors, piv_session
from airseal.appliance.signers.piv.slots import MANAGEMENT_KEY_ALGORITHMS, choice_from

PinCallback = Callable[[], str]
"""Returns the PIV PIN when the YubiKey needs it; asked late, never kept."""
NoticeCallback = Callable[[str], None]
"""Tells the operator something to do now (touch the key)."""
SecretCallback = Callable[[], str]
"""Returns an operator-held management key (hex) when one is needed."""


def no_notice(_message: str) -> None:
    """The default notice: say nothing."""


# --- errors ----------------------------------------------------------------------------------


def pin_error(exc: InvalidPinError, what: str) -> Exception:
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


def touch_error(doing: str) -> TouchNotConfirmed:
    return TouchNotConfirmed(
        f"the YubiKey was not touched, so it did not {doing}: "
        "touch the key when it blinks and retry"
    )


def pin_tries_left(session: PivSession) -> int | None:
    try:
        return session.get_pin_metadata().attempts_remaining
    except NotSupportedError:
        return None


def verify_pin(session: PivSession, pin: PinCallback) -> None:
    """Ask for the PIN and verify it; the PIN is not kept."""
    if pin_tries_left(session) == 0:
        raise PinBlocked("the PIN is blocked (no tries left)")
    value = _check_given(pin(), "PIN")
    try:
        session.verify_pin(value)
    except InvalidPinError as exc:
        raise pin_error(exc, "PIN") from None


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


def authenticate(
    session: PivSession,
    *,
    pin: PinCallback,
    management_key: SecretCallback | None,
    notice: NoticeCallback,
) -> bool:
    """Authenticate with the management key however this YubiKey keeps it.

    Returns whether the PIN was verified on the way (a PIN-protected key needs it)."""
    with device_errors("YubiKey PIV"):
        pivman = get_pivman_data(session)
        try:
            metadata = session.get_management_key_metadata()
            is_default, touch = metadata.default_value, metadata.touch_policy
        except NotSupportedError:
            is_default, touch = False, TOUCH_POLICY.NEVER
    pin_verified = False
    if pivman.has_stored_key:
        verify_pin(session, pin)
        pin_verified = True
        with device_errors("YubiKey PIV"):
            key = get_pivman_protected_data(session).key
        if key is None:
            raise ManagementKeyError("the YubiKey's PIN-protected management key object is empty")
    elif pivman.has_derived_key:
        value = _check_given(pin(), "PIN")
        try:
            session.verify_pin(value)
        except InvalidPinError as exc:
            raise pin_error(exc, "PIN") from None
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
            raise touch_error("accept the management key") from None
        raise ManagementKeyError("the YubiKey refused the management key") from None
    except (BadResponseError, ValueError):
        raise ManagementKeyError("the YubiKey refused the management key") from None
    return pin_verified


# --- administration --------------------------------------------------------------------------


def piv_reset(open_connection: SmartCardFactory, *, confirm: bool = False) -> None:
    """Erase the PIV application: every key and certificate, PIN/PUK/management key to defaults.

    Refuses unless ``confirm`` is exactly True: this cannot be undone."""
    if confirm is not True:
        raise UsageError(
            "resetting the PIV application erases every key on the YubiKey; it was not confirmed",
            hint="confirm explicitly (`airseal piv reset --yes`, or type the confirmation)",
        )
    with open_connection() as connection, device_errors("YubiKey PIV"):
        session = piv_session(connection)
        session.reset()


def _change_secret(
    open_connection: SmartCardFactory,
    *,
    given: str,
    given_what: str,
    new: str,
    new_what: str,
    change: Callable[[PivSession], None],
) -> None:
    """Check both secrets before anything is sent, then ``change``; a rejected ``given`` says
    how many tries it has left."""
    _check_given(given, given_what)
    _check_new_secret(new, new_what)
    with open_connection() as connection, device_errors("YubiKey PIV"):
        session = piv_session(connection)
        try:
            change(session)
        except InvalidPinError as exc:
            raise pin_error(exc, given_what) from None


def set_pin(open_connection: SmartCardFactory, old_pin: str, new_pin: str) -> None:
    """Change the PIN (keeping ykman's PIN-derived management key in step, if one is used)."""
    _change_secret(
        open_connection, given=old_pin, given_what="PIN", new=new_pin, new_what="PIN",
        change=lambda session: pivman_change_pin(session, old_pin, new_pin),
    )


def set_puk(open_connection: SmartCardFactory, old_puk: str, new_puk: str) -> None:
    _change_secret(
        open_connection, given=old_puk, given_what="PUK", new=new_puk, new_what="PUK",
        change=lambda session: session.change_puk(old_puk, new_puk),
    )


def unblock_pin(open_connection: SmartCardFactory, puk: str, new_pin: str) -> None:
    """Set a new PIN with the PUK (what a blocked PIN needs)."""
    _change_secret(
        open_connection, given=puk, given_what="PUK", new=new_pin, new_what="PIN",
        change=lambda session: session.unblock_pin(puk, new_pin),
    )


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
    notice: NoticeCallback = no_notice,
) -> ManagementKeyChange:
    """Replace the management key.

    With ``random=True`` a fresh random key is stored on the YubiKey PIN-protected, exactly as
    ``ykman piv access change-management-key --generate --protect`` does, and is never shown.
    With ``new_key`` (hex) the operator keeps the key; any protected copy is removed."""
    if random == (new_key is not None):
        raise UsageError("give either a new management key or random=True, not both or neither")
    with open_connection() as connection, device_errors("YubiKey PIV"):
        session = piv_session(connection)
        if algorithm is None:
            key_type = (
                MANAGEMENT_KEY_TYPE.AES256
                if session.version >= (5, 4, 0)
                else MANAGEMENT_KEY_TYPE.TDES
            )
        else:
            key_type = choice_from(MANAGEMENT_KEY_ALGORITHMS, algorithm, "management key algorithm")
        if new_key is not None:
            key = _parse_management_key(new_key)
            if len(key) != key_type.key_len:
                raise UsageError(
                    f"a {key_type.name} management key is {key_type.key_len} bytes, not {len(key)}"
                )
        else:
            key = generate_random_management_key(key_type)
        pin_verified = authenticate(session, pin=pin, management_key=management_key, notice=notice)
        if not pin_verified and (random or get_pivman_data(session).has_stored_key):
            verify_pin(session, pin)  # the protected object is written (or cleared) under the PIN
        pivman_set_mgm_key(session, key, key_type, touch=require_touch, store_on_device=random)
        return ManagementKeyChange(key_type.name.lower(), random, require_touch)


def _needs_touch(policy: TOUCH_POLICY) -> bool:
    return policy in (TOUCH_POLICY.ALWAYS, TOUCH_POLICY.CACHED)


def touch_notice(notice: NoticeCallback, policy: TOUCH_POLICY, serial: int | None) -> None:
    if not _needs_touch(policy):
        return
    which = f"YubiKey {serial}" if serial is not None else "your YubiKey"
    if policy == TOUCH_POLICY.CACHED:
        notice(f"Touch {which} now if it blinks (it is waiting for a touch to sign).")
    else:
        notice(f"Touch {which} now: it blinks until touched, then signs.")


