"""Errors the appliance raises, each with a message written for the operator.

`trustroot` errors (verification results) pass through unchanged; these cover everything else
the appliance decides: its home, keys, tokens, media. The CLI maps classes to exit codes in one
place (:mod:`airseal.appliance.cli.exit_codes`). Messages never contain passwords or PINs.

:class:`UsageError` is the one every front end shares (:class:`airseal.errors.UsageError`,
exit 2), re-exported here for the appliance's callers.
"""

from __future__ import annotations

from airseal.errors import AirsealError
from airseal.errors import UsageError as UsageError  # shared by every front end: exit 2


class ApplianceError(AirsealError):
    """Base of appliance errors (the shape is :class:`airseal.errors.AirsealError`'s)."""

    title = "Error"


class HomeError(ApplianceError):
    title = "Appliance home"
    hint = "run `airseal init` (or set AIRSEAL_HOME to an initialised home)"


class KeyNotFound(ApplianceError):
    title = "Key not found"
    hint = "`airseal key list` shows the keys this appliance holds"


class KeyRetired(ApplianceError):
    title = "Key retired"
    hint = "`airseal key retire` stopped this key from signing; sign with another key"


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


# PKCS#11 tokens (airseal.appliance.signers.pkcs11). Subjects name the module or the token; never a
# PIN.


class Pkcs11ModuleError(TokenError):
    title = "PKCS#11 module"
    hint = (
        "give the path of the token's PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so "
        "(Debian softhsm2), /usr/lib/x86_64-linux-gnu/libykcs11.so (ykcs11) or "
        "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so (opensc-pkcs11)"
    )


class TokenNotFound(TokenError):
    title = "Token not found"
    hint = (
        "`airseal token list --module PATH` shows the tokens present; select one by its label "
        "or serial, and check that it is plugged in"
    )


class AmbiguousToken(TokenError):
    title = "Ambiguous token"
    hint = "several tokens match: select one by its serial"


class WrongPin(PinError):
    title = "Wrong PIN"
    hint = (
        "check the PIN (AIRSEAL_PIN or the prompt); every wrong PIN brings the token closer "
        "to locking it"
    )


class PinLocked(PinError):
    title = "PIN locked"
    hint = (
        "the token refuses the user PIN until it is unblocked with the SO PIN or PUK "
        "(for a YubiKey: `airseal piv` with the PUK); nothing can be signed with it until then"
    )


class TokenKeyNotFound(TokenError):
    title = "Token key not found"
    hint = "check the key label (labels are case-sensitive) and that the right token is selected"


class TokenKeyExists(TokenError):
    title = "Token key exists"
    hint = "choose another label, or register the existing key instead of generating one"


class AmbiguousKeyLabel(TokenError):
    title = "Ambiguous key label"
    hint = "several keys carry this label: choose one by its key id (--key-id)"


class TokenKeyMismatch(TokenError):
    title = "Token key changed"
    hint = (
        "the token holds a different key under the registered id: the key was replaced or the "
        "wrong token is attached; register the key again only if the change is expected"
    )


class MechanismNotOffered(TokenError):
    title = "Mechanism not offered"
    hint = "this token cannot sign with this key the way Airseal needs; use an ECDSA P-256 key"


# --- YubiKey PIV (airseal.appliance.signers.piv, airseal.appliance.piv_attestation)
# -----------------------------

from airseal.trustroot.errors import VerificationError  # noqa: E402  (kept with the classes that use it)


class YubiKeyError(TokenError):
    """A YubiKey's PIV application could not be used (nothing was verified)."""

    title = "YubiKey"


class YubiKeyNotFound(YubiKeyError):
    title = "YubiKey not found"
    hint = "plug the YubiKey in and check `airseal piv info`; with several, pick one with --serial"


class YubiKeyBusy(YubiKeyError):
    title = "YubiKey busy"
    hint = "another program or Airseal command is using the YubiKey; let it finish, then retry"


class PinBlocked(PinLocked):
    title = "PIN blocked"
    hint = "set a new PIN with the PUK: `airseal piv unblock-pin`"


class WrongPuk(PinError):
    title = "Wrong PUK"
    hint = "type the YubiKey's PIV PUK again"


class PukBlocked(PinError):
    title = "PUK blocked"
    hint = (
        "with the PIN and PUK both blocked only `airseal piv reset` makes the YubiKey usable "
        "again, and it erases every PIV key on it"
    )


class TouchNotConfirmed(YubiKeyError):
    title = "Touch not confirmed"
    hint = "touch the YubiKey's contact when it blinks, then retry"


class ManagementKeyError(YubiKeyError):
    title = "Management key"
    hint = (
        "the PIV management key was refused; set AIRSEAL_MANAGEMENT_KEY (hex) or type it, or keep "
        "it PIN-protected on the YubiKey with `airseal piv set-management-key --random`"
    )


class SlotEmpty(YubiKeyError):
    title = "Empty slot"
    hint = "generate a key first: `airseal piv generate-key --slot SLOT`"


class FirmwareTooOld(YubiKeyError):
    """The YubiKey's firmware lacks what was asked (named in the message with the firmware)."""

    title = "YubiKey firmware too old"


class AttestationInvalid(ApplianceError, VerificationError):
    """A YubiKey attestation did not verify to the trusted roots: the key's origin is unproven."""

    title = "Attestation not verified"
    hint = (
        "the key cannot be shown to have been generated on a genuine YubiKey; do not register it "
        "(a re-generated key, a non-Yubico device or a wrong trust anchor also cause this)"
    )
