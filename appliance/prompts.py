"""How services ask the operator for secrets and tell them what is happening.

Services never call ``print`` or ``input``: they take a :class:`Prompter`. The CLI answers from
the environment or a hidden terminal prompt; the TUI answers with masked modal dialogs.
Secrets are returned to the caller and never stored, logged or put in an exception.
"""

from __future__ import annotations

import os
from typing import Protocol

from airseal.appliance.errors import PasswordError

PASSWORD_ENV = "COSIGN_PASSWORD"  # noqa: S105  (the variable name, cosign's convention)
PIN_ENV = "AIRSEAL_PIN"
MANAGEMENT_KEY_ENV = "AIRSEAL_MANAGEMENT_KEY"


class Prompter(Protocol):
    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        """Ask for a secret (masked). With ``confirm``, ask twice and insist they match."""
        ...

    def notice(self, message: str) -> None:
        """Tell the operator something they must act on now (e.g. touch the key)."""
        ...


def key_password(prompter: Prompter, purpose: str, *, confirm: bool = False) -> bytes:
    """The key password: ``COSIGN_PASSWORD`` if set, else asked. Empty passwords are refused,
    because a key under an empty password is a key stored unencrypted."""
    value = os.environ.get(PASSWORD_ENV)
    if value is None:
        value = prompter.secret(purpose, confirm=confirm)
    if not value:
        raise PasswordError(
            "an empty password would leave the private key unprotected",
            hint=f"set {PASSWORD_ENV} or type a password",
        )
    return value.encode("utf-8")


def token_pin(prompter: Prompter, purpose: str) -> str:
    value = os.environ.get(PIN_ENV)
    if value is None:
        value = prompter.secret(purpose)
    return value


def piv_management_key(prompter: Prompter) -> str:
    """A YubiKey PIV management key (hex): ``AIRSEAL_MANAGEMENT_KEY`` if set, else asked (only
    when the YubiKey keeps neither the default nor a PIN-protected key)."""
    value = os.environ.get(MANAGEMENT_KEY_ENV)
    if value is None:
        value = prompter.secret("YubiKey PIV management key (hex)")
    return value
