"""The tokens a module sees: what each reports (:class:`TokenInfo`) and choosing one by name.

A token is chosen by label or serial; several tokens are fine, several *matches* are
:class:`~airseal.appliance.errors.AmbiguousToken`. Nothing here logs in or asks for a PIN. A
rejected PIN is explained from the token's own flags (:func:`pin_failure_error`), because the
token, not the caller, knows how many tries remain.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Final

from pkcs11 import TokenFlag
from pkcs11 import exceptions as p11x

from airseal.appliance.errors import (
    AmbiguousToken,
    PinError,
    PinLocked,
    TokenError,
    TokenNotFound,
    WrongPin,
)
from airseal.appliance.signers.pkcs11.modules import MODULES_LOCK, LoadedModule, load_module

MAX_LISTED: Final = 12  # objects or tokens named in one error message


def _memory(free: int | None, total: int | None) -> str:
    if free is None:
        return "-"
    return f"{free}" if total is None else f"{free}/{total}"


@dataclass(frozen=True)
class TokenInfo:
    """One token as its module reports it. Memory figures are None where the token does not say."""

    slot_id: int
    slot_description: str
    label: str
    serial: str
    manufacturer: str
    model: str
    initialised: bool
    user_pin_initialised: bool
    login_required: bool
    protected_authentication_path: bool
    write_protected: bool
    pin_count_low: bool
    pin_final_try: bool
    pin_locked: bool
    pin_to_be_changed: bool
    free_public_memory: int | None = None
    free_private_memory: int | None = None
    total_public_memory: int | None = None
    total_private_memory: int | None = None

    def describe(self) -> str:
        """How errors and screens name the token: label and serial."""
        serial = self.serial or "no serial"
        return f"token {self.label!r} (serial {serial}, slot {self.slot_id})"

    @property
    def public_memory(self) -> str:
        """Free (and total) public memory as a table shows it, ``-`` when the token does not say."""
        return _memory(self.free_public_memory, self.total_public_memory)

    @property
    def private_memory(self) -> str:
        return _memory(self.free_private_memory, self.total_private_memory)

    @property
    def state(self) -> str:
        """Initialisation, PIN and protection flags in a few words, for tables and screens."""
        if not self.initialised:
            return "not initialised"
        parts = [f"PIN {self.pin_status}"]
        if self.login_required:
            parts.append("login required")
        if self.protected_authentication_path:
            parts.append("PIN pad")
        if self.write_protected:
            parts.append("read-only")
        return ", ".join(parts)

    @property
    def pin_status(self) -> str:
        """A short word for the PIN state, for tables and screens."""
        if self.pin_locked:
            return "locked"
        if self.pin_final_try:
            return "final try"
        if self.pin_count_low:
            return "tries low"
        if not self.user_pin_initialised:
            return "not set"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace").strip()
    return raw.strip()


def _meaningful_serial(serial: str) -> str:
    """OpenSC reports ``00000000`` for every PIV card without a CHUID: that names nothing, so
    treat it as absent and let the label choose the token instead."""
    return "" if serial.strip("0") == "" else serial


def _token_info(module: LoadedModule, token: Any) -> TokenInfo:
    flags = TokenFlag(token.flags)
    free_pub, free_priv, total_pub, total_priv = module.cryptoki.token_memory(token.slot.slot_id)
    return TokenInfo(
        slot_id=int(token.slot.slot_id),
        slot_description=_text(token.slot.slot_description),
        label=_text(token.label),
        serial=_meaningful_serial(_text(token.serial)),
        manufacturer=_text(token.manufacturer_id),
        model=_text(token.model),
        initialised=bool(flags & TokenFlag.TOKEN_INITIALIZED),
        user_pin_initialised=bool(flags & TokenFlag.USER_PIN_INITIALIZED),
        login_required=bool(flags & TokenFlag.LOGIN_REQUIRED),
        protected_authentication_path=bool(flags & TokenFlag.PROTECTED_AUTHENTICATION_PATH),
        write_protected=bool(flags & TokenFlag.WRITE_PROTECTED),
        pin_count_low=bool(flags & TokenFlag.USER_PIN_COUNT_LOW),
        pin_final_try=bool(flags & TokenFlag.USER_PIN_FINAL_TRY),
        pin_locked=bool(flags & TokenFlag.USER_PIN_LOCKED),
        pin_to_be_changed=bool(flags & TokenFlag.USER_PIN_TO_BE_CHANGED),
        free_public_memory=free_pub,
        free_private_memory=free_priv,
        total_public_memory=total_pub,
        total_private_memory=total_priv,
    )


def _present_tokens(module: LoadedModule) -> list[tuple[Any, TokenInfo]]:
    found: list[tuple[Any, TokenInfo]] = []
    try:
        slots = module.lib.get_slots(token_present=True)
    except p11x.PKCS11Error as exc:
        raise TokenError(
            f"the module cannot list its slots ({type(exc).__name__})",
            subject=module.path,
            hint="for smart cards and YubiKeys, check that pcscd is running and the reader or "
            "key is attached; for an HSM, check the module's own configuration",
        ) from None
    for slot in slots:
        try:
            token = slot.get_token()
        except (p11x.TokenNotPresent, p11x.TokenNotRecognised, p11x.DeviceRemoved):
            continue  # pulled out while we looked, or a card this module does not handle
        except p11x.PKCS11Error as exc:
            raise TokenError(
                f"slot {slot.slot_id} did not answer ({type(exc).__name__})", subject=module.path
            ) from None
        found.append((token, _token_info(module, token)))
    return found


def list_tokens(module_path: str | os.PathLike[str]) -> list[TokenInfo]:
    """Every token the module sees, in slot order. No login, no PIN."""
    with MODULES_LOCK:
        module = load_module(module_path)
        return [info for _, info in _present_tokens(module)]


def _listing(infos: Iterable[TokenInfo]) -> str:
    items = [f"{i.label!r} (serial {i.serial or 'none'})" for i in infos if i.initialised]
    if not items:
        return "no initialised token is present"
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return "present: " + ", ".join(items[:MAX_LISTED]) + more


def select_token(module: LoadedModule, selector: str) -> tuple[Any, TokenInfo]:
    """The one token whose label or serial is ``selector``. Several tokens are fine; several
    *matches* are :class:`AmbiguousToken`."""
    wanted = selector.strip()
    if not wanted:
        raise TokenNotFound("no token label or serial was given", subject=module.path)
    present = _present_tokens(module)
    matches = [
        (token, info)
        for token, info in present
        if info.label == wanted or (info.serial and info.serial.lower() == wanted.lower())
    ]
    if not matches:
        raise TokenNotFound(
            f"no token with label or serial {wanted!r}; "
            + _listing(info for _, info in present),
            subject=module.path,
        )
    if len(matches) > 1:
        listed = ", ".join(
            f"{info.label!r} serial {info.serial or 'none'} in slot {info.slot_id}"
            for _, info in matches
        )
        raise AmbiguousToken(
            f"{len(matches)} tokens match {wanted!r}: {listed}", subject=module.path
        )
    token, info = matches[0]
    if not info.initialised:
        raise TokenError("the token is not initialised", subject=info.describe())
    return token, info


def pin_failure_error(info: TokenInfo) -> PinError:
    """The error for a PIN the token just rejected, from the token's state *after* the attempt.

    Tokens only say "low" or "final try" (``CKF_USER_PIN_COUNT_LOW`` / ``..._FINAL_TRY``), never
    an exact count; when they say nothing, the message says so rather than guess.
    """
    subject = info.describe()
    if info.pin_locked:
        return PinLocked("the user PIN is locked after too many wrong PINs", subject=subject)
    if info.pin_final_try:
        tries = "one try remains: another wrong PIN locks the token"
    elif info.pin_count_low:
        tries = "the token reports that few tries remain"
    else:
        tries = "the token does not say how many tries remain"
    return WrongPin(f"the token rejected the PIN; {tries}", subject=subject)


def fresh_token_info(module: LoadedModule, token: Any, fallback: TokenInfo) -> TokenInfo:
    try:
        return _token_info(module, token.slot.get_token())
    except p11x.PKCS11Error:
        return fallback

