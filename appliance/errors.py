"""Errors the appliance raises, each with a message written for the operator.

`trustroot` errors (verification results) pass through unchanged; these cover everything else
the appliance decides: its home, keys, tokens, media. The CLI maps classes to exit codes in one
place (:mod:`appliance.cli.exit_codes`). Messages never contain passwords or PINs.
"""

from __future__ import annotations

from trustroot.errors import TrustrootError


class ApplianceError(TrustrootError):
    """Base of appliance errors (same title/detail/subject/hint shape as trustroot's)."""

    title = "Error"


class HomeError(ApplianceError):
    title = "Appliance home"
    hint = "run `airseal init` (or set AIRSEAL_HOME to an initialised home)"


class KeyNotFound(ApplianceError):
    title = "Key not found"
    hint = "`airseal key list` shows the keys this appliance holds"


class KeyExists(ApplianceError):
    title = "Key exists"
    hint = "choose another name; keys are never overwritten"


class PasswordError(ApplianceError):
    title = "Password"


class TokenError(ApplianceError):
    """A PKCS#11 token or YubiKey could not be used."""

    title = "Token"


class PinError(TokenError):
    title = "PIN"


class AuditChainBroken(ApplianceError):
    title = "Audit chain broken"
    hint = "the audit log was edited outside Airseal; keep the database for investigation"


class UsageError(ApplianceError):
    title = "Usage"
