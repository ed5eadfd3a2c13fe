"""Sessions on a token and the login they share.

Login state belongs to the *application* (this process) and the token, not to a session: every
session of the process sees it. Sessions on the same token therefore share one login, counted per
token; the PIN is asked for once, and the token is logged out when the last holder closes. A
session on a token that this process has already unlocked is not asked for the PIN.

A PIN comes from the caller's :data:`PinProvider` only when the token needs a login; it is
encoded into a buffer that is wiped after ``C_Login`` and appears in no error, log or repr.
Sessions are closed on every path: success, error and ``KeyboardInterrupt``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from pkcs11 import exceptions as p11x

from airseal.appliance.errors import TokenError
from airseal.appliance.signers.hardware import required_pin
from airseal.appliance.signers.pkcs11.cryptoki import (
    CKR_OK,
    CKR_PIN_INCORRECT,
    CKR_PIN_LOCKED,
    CKR_USER_ALREADY_LOGGED_IN,
    CKS_RO_USER_FUNCTIONS,
    CKS_RW_SO_FUNCTIONS,
    CKS_RW_USER_FUNCTIONS,
    device_error,
    rv_error,
)
from airseal.appliance.signers.pkcs11.modules import (
    MODULES_LOCK,
    LoadedModule,
    SharedLogin,
    load_module,
)
from airseal.appliance.signers.pkcs11.tokens import (
    TokenInfo,
    fresh_token_info,
    pin_failure_error,
    select_token,
)

PinProvider = Callable[[], str]
"""Returns the user PIN when asked; called only when the token needs a login."""


class TokenSession:
    """One session on one token, with at most one share of the token's login. Close once."""

    def __init__(self, module: LoadedModule, token: Any, info: TokenInfo, session: Any) -> None:
        self.module = module
        self.token = token
        self.info = info
        self.session = session
        self.login_held = False
        self.closed = False

    @property
    def subject(self) -> str:
        return self.info.describe()

    def close(self) -> None:
        with MODULES_LOCK:
            if self.closed:
                return
            self.closed = True
            try:
                self._release_login()
            finally:
                try:
                    self.session.close()
                except p11x.PKCS11Error:
                    pass  # the token is gone or closed it already: nothing left to release
                finally:
                    self.module.open_sessions -= 1

    def _release_login(self) -> None:
        if not self.login_held:
            return
        self.login_held = False
        slot_id = self.info.slot_id
        login = self.module.logins.get(slot_id)
        if login is None:
            return
        login.holders -= 1
        if login.holders > 0:
            return
        del self.module.logins[slot_id]
        if login.owned:
            self.module.cryptoki.logout(self.session.handle)

    def __enter__(self) -> TokenSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def mechanisms(self) -> set[Any]:
        """The mechanisms the token's slot offers."""
        try:
            return set(self.token.slot.get_mechanisms())
        except p11x.PKCS11Error as exc:
            raise device_error(exc, self.subject, "listing mechanisms") from None

    def login(self, pin_provider: PinProvider) -> None:
        """Share the token's login, logging in (and asking for the PIN) only if nobody has."""
        if self._join_login():
            return
        fresh = fresh_token_info(self.module, self.token, self.info)
        if fresh.pin_locked:
            raise pin_failure_error(fresh)
        pin = None if fresh.protected_authentication_path else _ask_pin(pin_provider)
        try:
            with MODULES_LOCK:
                if self._join_login():
                    return
                rv = self.module.cryptoki.login_user(self.session.handle, pin)
                if rv in (CKR_OK, CKR_USER_ALREADY_LOGGED_IN):
                    # Already logged in means someone else in this process did: not ours to end.
                    self.module.logins[self.info.slot_id] = SharedLogin(1, owned=rv == CKR_OK)
                    self.login_held = True
                    return
        finally:
            if pin is not None:
                pin[:] = bytes(len(pin))
        if rv in (CKR_PIN_INCORRECT, CKR_PIN_LOCKED):
            after = fresh_token_info(self.module, self.token, fresh)
            if rv == CKR_PIN_LOCKED:  # said by the return code even if the flags lag behind
                after = replace(after, pin_locked=True)
            raise pin_failure_error(after)
        raise rv_error(rv, self.subject, "login")

    def _join_login(self) -> bool:
        """True when the token is already logged in for this process (one more holder)."""
        with MODULES_LOCK:
            login = self.module.logins.get(self.info.slot_id)
            if login is not None:
                login.holders += 1
                self.login_held = True
                return True
            rv, state = self.module.cryptoki.session_state(self.session.handle)
            if rv != CKR_OK:
                raise rv_error(rv, self.subject, "reading the session state")
            if state == CKS_RW_SO_FUNCTIONS:
                raise TokenError("the security officer is logged in to this token",
                                 subject=self.subject)
            if state in (CKS_RO_USER_FUNCTIONS, CKS_RW_USER_FUNCTIONS):
                self.module.logins[self.info.slot_id] = SharedLogin(1, owned=False)
                self.login_held = True
                return True
            if not self.info.login_required:
                self.module.logins[self.info.slot_id] = SharedLogin(1, owned=False)
                self.login_held = True
                return True
            return False


def _ask_pin(pin_provider: PinProvider) -> bytearray:
    return bytearray(required_pin(pin_provider).encode("utf-8"))


def open_session(
    module_path: str | os.PathLike[str], selector: str, *, rw: bool
) -> TokenSession:
    with MODULES_LOCK:
        module = load_module(module_path)
        token, info = select_token(module, selector)
        try:
            session = token.open(rw=rw)
        except p11x.PKCS11Error as exc:
            raise device_error(exc, info.describe(), "opening a session") from None
        module.open_sessions += 1
        return TokenSession(module, token, info, session)


@contextmanager
def logged_in(
    module_path: str | os.PathLike[str], selector: str, pin_provider: PinProvider, *, rw: bool
) -> Iterator[TokenSession]:
    session = open_session(module_path, selector, rw=rw)
    try:
        session.login(pin_provider)
        yield session
    finally:
        session.close()


