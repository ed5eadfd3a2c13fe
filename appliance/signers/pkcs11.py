"""Signing keys held on any PKCS#11 token: SoftHSM2, YubiKey (libykcs11), OpenSC cards, vendor HSMs.

What this module guarantees:

- **Keys never leave the token.** :func:`generate_key` makes an EC P-256 pair on the token with the
  private half ``CKA_SENSITIVE``, not ``CKA_EXTRACTABLE``, sign-only, stored as token objects, and
  checks afterwards that the token honoured that template (it destroys the pair if not). Both
  halves share a fresh random ``CKA_ID``; keys are always found by that id, never by label, because
  labels are not unique on most tokens (SoftHSM2 included).
- **The database holds a reference, not a secret.** :class:`Pkcs11KeyRef` names the module, the
  token (label and serial), the key id and label, and the public key. A :class:`Pkcs11Signer`
  opened from it checks that the token still holds *that* key under the id (a different key is a
  :class:`~airseal.appliance.errors.TokenKeyMismatch`), and verifies its first signature with the
  stored
  public key before handing it out.
- **Signatures are what cosign and our verifiers expect.** ECDSA signs the SHA-256 digest with
  ``CKM_ECDSA`` and converts the token's raw ``r||s`` into DER. RSA signs a ``DigestInfo(SHA-256)``
  with ``CKM_RSA_PKCS`` (PKCS#1 v1.5, what cosign and :mod:`airseal.trustroot.keys` verify). RSA-PSS
  (``CKM_RSA_PKCS_PSS``, MGF1-SHA-256, salt length 32) is available by choice,
  ``Pkcs11Signer(..., rsa_padding=RsaPadding.PSS)``, for consumers that require PSS: Sigstore
  bundles verified by :mod:`trustroot` and cosign must use PKCS#1 v1.5, so PSS is never the default.
- **PINs are asked for late and never kept.** A PIN comes from the caller's ``pin_provider`` only
  when the token needs a login (the CLI reads ``AIRSEAL_PIN`` or prompts; the TUI shows a dialog);
  it is encoded into a buffer that is wiped after ``C_Login`` and appears in no error, log, repr or
  database record. A rejected PIN says what the token tells about the remaining tries
  (``CKF_USER_PIN_COUNT_LOW`` / ``CKF_USER_PIN_FINAL_TRY``); a blocked PIN says it is locked.
- **Sessions are closed on every path.** Every operation opens its own session and closes it (and
  logs out when it held the last login) on success, on error and on ``KeyboardInterrupt``; a
  :class:`Pkcs11Signer` keeps one session and login across many signatures (an export signs many
  statements) and releases them in :meth:`Pkcs11Signer.close`, at the end of its ``with`` block,
  or when it is garbage-collected.

PKCS#11 facts this module is built around:

- Login state belongs to the *application* (this process) and the token, not to a session: every
  session of the process sees it. Signers on the same token therefore share one login, counted
  here; the PIN is asked for once, and the token is logged out when the last of them closes. A
  second signer on a token that is already unlocked by this process is not asked for the PIN.
- python-pkcs11 keeps one loaded module per path, and ``C_Initialize`` reads a module's
  configuration and token list once (SoftHSM2 reads ``SOFTHSM2_CONF`` there). Each operation
  that starts while this process holds no session on a module therefore re-initialises it, so
  tokens plugged in or created since are seen; it never does so while a signer is open. Other
  code in the process should not hold its own sessions on a module it shares with this one.
- python-pkcs11 cannot log in on an open session, and leaks the session when ``C_Login`` fails
  inside ``Token.open``; it does not report free token memory. The few Cryptoki calls it lacks
  (``C_Login``, ``C_Logout``, ``C_GetSessionInfo``, ``C_GetTokenInfo``) are made here through
  the module's own function list, on the same loaded library.
- Keys that demand ``CKA_ALWAYS_AUTHENTICATE`` (e.g. PIV slot 9c behind libykcs11 or OpenSC)
  need the PIN again before every signature: the signer calls ``pin_provider`` each time.
"""

from __future__ import annotations

import ctypes
import enum
import os
import secrets
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final

import pkcs11
from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass, TokenFlag
from pkcs11 import exceptions as p11x
from pkcs11.mechanisms import MGF

from airseal.appliance.errors import (
    AmbiguousKeyLabel,
    AmbiguousToken,
    MechanismNotOffered,
    PinError,
    PinLocked,
    Pkcs11ModuleError,
    TokenError,
    TokenKeyExists,
    TokenKeyMismatch,
    TokenKeyNotFound,
    TokenNotFound,
    WrongPin,
)
from airseal.trustroot.errors import InvalidSignature, TrustrootError, UnsupportedAlgorithm
from airseal.trustroot.keys import (
    KeyAlgorithm,
    PublicKey,
    key_algorithm,
    load_public_key,
    spki_der,
    spki_pem,
    verify_digest,
)
from airseal.trustroot.signer import sign_message_via_digest

__all__ = [
    "PinProvider",
    "Pkcs11KeyRef",
    "Pkcs11Signer",
    "RsaPadding",
    "TokenInfo",
    "find_key",
    "generate_key",
    "list_tokens",
    "pin_failure_error",
    "require_mechanism",
]

PinProvider = Callable[[], str]
"""Returns the user PIN when asked; called only when the token needs a login."""

MAX_LABEL_CHARS: Final = 64
KEY_ID_BYTES: Final = 16
_MAX_LISTED: Final = 12  # objects or tokens named in one error message

# DER of the named-curve OIDs, as tokens store them in CKA_EC_PARAMS.
_P256_PARAMS: Final = bytes.fromhex("06082a8648ce3d030107")
_P384_PARAMS: Final = bytes.fromhex("06052b81040022")
_CURVES: Final[dict[bytes, ec.EllipticCurve]] = {
    _P256_PARAMS: ec.SECP256R1(),
    _P384_PARAMS: ec.SECP384R1(),
}
# DigestInfo prefix for SHA-256 (RFC 8017 §9.2, note 1): CKM_RSA_PKCS signs DigestInfo || digest.
_SHA256_DIGEST_INFO: Final = bytes.fromhex("3031300d060960864801650304020105000420")
_PSS_SALT_BYTES: Final = 32


class RsaPadding(enum.Enum):
    """How an RSA token key signs. ECDSA keys ignore this."""

    PKCS1V15 = "pkcs1v15"
    """``CKM_RSA_PKCS`` over DigestInfo(SHA-256): what cosign and :mod:`trustroot` verify."""
    PSS = "pss"
    """``CKM_RSA_PKCS_PSS``, SHA-256, MGF1-SHA-256, 32-byte salt; for PSS-only consumers."""


# --------------------------------------------------------------------------------------------
# Data shapes


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


@dataclass(frozen=True)
class Pkcs11KeyRef:
    """Where a token key lives and what its public key is. Holds no secret: store it as is.

    The token is found again by serial (labels can repeat); the key by its ``CKA_ID`` (hex).
    Validated on construction: the public key must parse and be of a supported algorithm.
    """

    module_path: str
    token_label: str
    token_serial: str
    key_id: str
    key_label: str
    public_key_pem: bytes

    def __post_init__(self) -> None:
        if not self.module_path or not os.path.isabs(self.module_path):
            raise ValueError("module_path must be an absolute path")
        if not (self.token_serial or self.token_label):
            raise ValueError("a token key reference needs the token's serial or label")
        try:
            raw_id = bytes.fromhex(self.key_id)
        except ValueError:
            raise ValueError("key_id must be hex") from None
        if raw_id.hex() != self.key_id:
            raise ValueError("key_id must be lowercase hex")
        load_public_key(self.public_key_pem, subject="token public key")

    @property
    def key_id_bytes(self) -> bytes:
        return bytes.fromhex(self.key_id)

    def public_key(self) -> PublicKey:
        return load_public_key(self.public_key_pem, subject="token public key")

    @property
    def token_selector(self) -> str:
        """Serial when the token has one (unique), else its label."""
        return self.token_serial or self.token_label

    def to_record(self) -> dict[str, str]:
        """Plain strings for a database row or JSON."""
        return {
            "module_path": self.module_path,
            "token_label": self.token_label,
            "token_serial": self.token_serial,
            "key_id": self.key_id,
            "key_label": self.key_label,
            "public_key_pem": self.public_key_pem.decode("ascii"),
        }

    @classmethod
    def from_record(cls, record: dict[str, str]) -> Pkcs11KeyRef:
        return cls(
            module_path=record["module_path"],
            token_label=record["token_label"],
            token_serial=record["token_serial"],
            key_id=record["key_id"],
            key_label=record["key_label"],
            public_key_pem=record["public_key_pem"].encode("ascii"),
        )


# --------------------------------------------------------------------------------------------
# The Cryptoki calls python-pkcs11 does not expose, through the module's own function list.

_CK_ULONG = ctypes.c_ulong
_CK_UNAVAILABLE_INFORMATION: Final = (1 << (ctypes.sizeof(_CK_ULONG) * 8)) - 1
_CKU_USER: Final = 1
_CKS_RO_USER_FUNCTIONS: Final = 1
_CKS_RW_USER_FUNCTIONS: Final = 3
_CKS_RW_SO_FUNCTIONS: Final = 4

CKR_OK: Final = 0x000
CKR_FUNCTION_CANCELED: Final = 0x050
CKR_DEVICE_ERROR: Final = 0x030
CKR_DEVICE_REMOVED: Final = 0x032
CKR_PIN_INCORRECT: Final = 0x0A0
CKR_PIN_INVALID: Final = 0x0A1
CKR_PIN_LEN_RANGE: Final = 0x0A2
CKR_PIN_EXPIRED: Final = 0x0A3
CKR_PIN_LOCKED: Final = 0x0A4
CKR_SESSION_CLOSED: Final = 0x0B0
CKR_SESSION_HANDLE_INVALID: Final = 0x0B3
CKR_TOKEN_NOT_PRESENT: Final = 0x0E0
CKR_USER_ALREADY_LOGGED_IN: Final = 0x100
CKR_USER_NOT_LOGGED_IN: Final = 0x101
CKR_USER_PIN_NOT_INITIALIZED: Final = 0x102
CKR_USER_ANOTHER_ALREADY_LOGGED_IN: Final = 0x104
CKR_USER_TOO_MANY_TYPES: Final = 0x105


class _CkVersion(ctypes.Structure):
    if sys.platform == "win32":  # Cryptoki headers pack every structure to 1 byte on Windows
        _pack_ = 1
    _fields_ = [("major", ctypes.c_ubyte), ("minor", ctypes.c_ubyte)]


class _CkTokenInfo(ctypes.Structure):
    if sys.platform == "win32":
        _pack_ = 1
    _fields_ = [
        ("label", ctypes.c_char * 32),
        ("manufacturerID", ctypes.c_char * 32),
        ("model", ctypes.c_char * 16),
        ("serialNumber", ctypes.c_char * 16),
        ("flags", _CK_ULONG),
        ("ulMaxSessionCount", _CK_ULONG),
        ("ulSessionCount", _CK_ULONG),
        ("ulMaxRwSessionCount", _CK_ULONG),
        ("ulRwSessionCount", _CK_ULONG),
        ("ulMaxPinLen", _CK_ULONG),
        ("ulMinPinLen", _CK_ULONG),
        ("ulTotalPublicMemory", _CK_ULONG),
        ("ulFreePublicMemory", _CK_ULONG),
        ("ulTotalPrivateMemory", _CK_ULONG),
        ("ulFreePrivateMemory", _CK_ULONG),
        ("hardwareVersion", _CkVersion),
        ("firmwareVersion", _CkVersion),
        ("utcTime", ctypes.c_char * 16),
    ]


class _CkSessionInfo(ctypes.Structure):
    if sys.platform == "win32":
        _pack_ = 1
    _fields_ = [
        ("slotID", _CK_ULONG),
        ("state", _CK_ULONG),
        ("flags", _CK_ULONG),
        ("ulDeviceError", _CK_ULONG),
    ]


# The first entries of CK_FUNCTION_LIST, in the order every PKCS#11 version (2.x, 3.x) keeps.
_FUNCTION_ORDER: Final = (
    "C_Initialize", "C_Finalize", "C_GetInfo", "C_GetFunctionList", "C_GetSlotList",
    "C_GetSlotInfo", "C_GetTokenInfo", "C_GetMechanismList", "C_GetMechanismInfo",
    "C_InitToken", "C_InitPIN", "C_SetPIN", "C_OpenSession", "C_CloseSession",
    "C_CloseAllSessions", "C_GetSessionInfo", "C_GetOperationState", "C_SetOperationState",
    "C_Login", "C_Logout",
)  # fmt: skip


class _CkFunctionList(ctypes.Structure):
    if sys.platform == "win32":
        _pack_ = 1
    _fields_ = [("version", _CkVersion)] + [(name, ctypes.c_void_p) for name in _FUNCTION_ORDER]


class _Cryptoki:
    """Direct calls into an already loaded module (same library image as python-pkcs11's)."""

    def __init__(self, real_path: str) -> None:
        # Loading runs the library's initialisers, exactly as python-pkcs11's own dlopen would.
        self._dll = ctypes.CDLL(real_path)
        get_function_list = self._dll.C_GetFunctionList  # AttributeError: not a PKCS#11 module
        get_function_list.restype = _CK_ULONG
        get_function_list.argtypes = [ctypes.POINTER(ctypes.POINTER(_CkFunctionList))]
        functions = ctypes.POINTER(_CkFunctionList)()
        rv = get_function_list(ctypes.byref(functions))
        if rv != CKR_OK or not functions:
            raise OSError(f"C_GetFunctionList returned {rv:#x}")
        self._functions = functions
        table = functions.contents

        def bind(name: str, *argtypes: Any) -> Any:
            address = getattr(table, name)
            if not address:
                raise OSError(f"the module's function list has no {name}")
            return ctypes.CFUNCTYPE(_CK_ULONG, *argtypes)(address)

        self._get_token_info = bind("C_GetTokenInfo", _CK_ULONG, ctypes.POINTER(_CkTokenInfo))
        self._get_session_info = bind(
            "C_GetSessionInfo", _CK_ULONG, ctypes.POINTER(_CkSessionInfo)
        )
        self._login = bind("C_Login", _CK_ULONG, _CK_ULONG, ctypes.c_void_p, _CK_ULONG)
        self._logout = bind("C_Logout", _CK_ULONG)

    def token_memory(self, slot_id: int) -> tuple[int | None, int | None, int | None, int | None]:
        """(free public, free private, total public, total private) or None where unavailable."""
        info = _CkTokenInfo()
        if self._get_token_info(slot_id, ctypes.byref(info)) != CKR_OK:
            return (None, None, None, None)

        def known(value: int) -> int | None:
            return None if value == _CK_UNAVAILABLE_INFORMATION else int(value)

        return (
            known(info.ulFreePublicMemory),
            known(info.ulFreePrivateMemory),
            known(info.ulTotalPublicMemory),
            known(info.ulTotalPrivateMemory),
        )

    def session_state(self, handle: int) -> tuple[int, int]:
        """(rv, CKS_* state) of an open session."""
        info = _CkSessionInfo()
        rv = self._get_session_info(handle, ctypes.byref(info))
        return int(rv), int(info.state)

    def login_user(self, handle: int, pin: bytearray | None) -> int:
        """C_Login(CKU_USER); ``pin`` None means the token's own PIN pad. Returns the CKR code."""
        if pin is None:
            return int(self._login(handle, _CKU_USER, None, 0))
        buffer = (ctypes.c_ubyte * len(pin)).from_buffer(pin)
        try:
            address = ctypes.cast(buffer, ctypes.c_void_p)
            return int(self._login(handle, _CKU_USER, address, len(pin)))
        finally:
            del buffer

    def logout(self, handle: int) -> int:
        return int(self._logout(handle))


# --------------------------------------------------------------------------------------------
# Loaded modules, their open sessions and logins (process-wide, as PKCS#11 itself is).


@dataclass
class _Login:
    holders: int
    owned: bool  # we called C_Login, so we call C_Logout when the last holder leaves


@dataclass
class _Module:
    path: str  # as given (absolute)
    real_path: str
    lib: Any  # pkcs11._pkcs11.lib
    cryptoki: _Cryptoki
    open_sessions: int = 0
    logins: dict[int, _Login] = field(default_factory=dict)


_LOCK = threading.RLock()
_MODULES: dict[str, _Module] = {}


def _module_error(path: str, detail: str) -> Pkcs11ModuleError:
    return Pkcs11ModuleError(detail, subject=path)


def _cached_pkcs11_lib(real_path: str) -> Any:
    """python-pkcs11's loaded module for this file, whatever path string loaded it.

    python-pkcs11 caches by the path *string*; loading the same file under a second string
    (a symlink such as /usr/lib/softhsm/libsofthsm2.so) would call C_Initialize twice and fail.
    """
    loaded: dict[str, Any] = getattr(pkcs11, "_loaded", {})
    for key in list(loaded):
        if os.path.realpath(key) == real_path:
            return pkcs11.lib(key)
    return pkcs11.lib(real_path)


def _still_loaded(lib: Any) -> bool:
    """False once python-pkcs11 has unloaded this module object (its function table is gone)."""
    loaded: dict[str, Any] | None = getattr(pkcs11, "_loaded", None)
    if loaded is None:  # a python-pkcs11 without the cache: nothing to check against
        return True
    return any(candidate is lib for candidate in loaded.values())


def _module(module_path: str | os.PathLike[str]) -> _Module:
    """The loaded module, freshly initialised when this process holds no session on it.

    Caller holds ``_LOCK``.
    """
    path = os.path.abspath(os.fspath(module_path))
    if not os.path.exists(path):
        raise _module_error(path, "no file at this path")
    if not os.path.isfile(path):
        raise _module_error(path, "not a file")
    real_path = os.path.realpath(path)
    module = _MODULES.get(real_path)
    if module is not None and module.open_sessions == 0 and not _still_loaded(module.lib):
        del _MODULES[real_path]  # someone called pkcs11.unload(): its old object is unusable
        module = None
    if module is not None:
        if module.open_sessions == 0:
            module.logins.clear()
            try:
                if module.lib.initialized:
                    module.lib.reinitialize()
                else:
                    module.lib.initialize()
            except p11x.PKCS11Error as exc:
                raise _module_error(
                    path, f"the module failed to initialise ({type(exc).__name__})"
                ) from None
        return module
    try:
        cryptoki = _Cryptoki(real_path)
    except OSError as exc:
        raise _module_error(path, f"cannot be loaded as a library ({exc})") from None
    except AttributeError:
        raise _module_error(
            path, "not a PKCS#11 module (it has no C_GetFunctionList)"
        ) from None
    try:
        lib = _cached_pkcs11_lib(real_path)
    except p11x.PKCS11Error as exc:
        raise _module_error(
            path, f"the module failed to initialise ({type(exc).__name__}: {exc})"
        ) from None
    module = _Module(path=path, real_path=real_path, lib=lib, cryptoki=cryptoki)
    _MODULES[real_path] = module
    return module


def _text(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace").strip()
    return raw.strip()


def _meaningful_serial(serial: str) -> str:
    """OpenSC reports ``00000000`` for every PIV card without a CHUID: that names nothing, so
    treat it as absent and let the label choose the token instead."""
    return "" if serial.strip("0") == "" else serial


def _token_info(module: _Module, token: Any) -> TokenInfo:
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


def _present_tokens(module: _Module) -> list[tuple[Any, TokenInfo]]:
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
    with _LOCK:
        module = _module(module_path)
        return [info for _, info in _present_tokens(module)]


def _listing(infos: Iterable[TokenInfo]) -> str:
    items = [f"{i.label!r} (serial {i.serial or 'none'})" for i in infos if i.initialised]
    if not items:
        return "no initialised token is present"
    more = f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return "present: " + ", ".join(items[:_MAX_LISTED]) + more


def _select_token(module: _Module, selector: str) -> tuple[Any, TokenInfo]:
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


# --------------------------------------------------------------------------------------------
# Errors


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


def require_mechanism(
    offered: Iterable[Any], mechanism: Mechanism, *, purpose: str, subject: str
) -> None:
    """Raise :class:`MechanismNotOffered` unless ``mechanism`` is among the token's mechanisms."""
    offered_set = set(offered)
    if mechanism in offered_set:
        return
    names = sorted(
        m.name
        for m in offered_set
        if isinstance(m, Mechanism) and ("ECDSA" in m.name or "RSA" in m.name)
    )
    available = ", ".join(names) if names else "no ECDSA or RSA mechanism"
    raise MechanismNotOffered(
        f"{purpose} needs CKM_{mechanism.name}, which the token does not offer "
        f"(it offers {available})",
        subject=subject,
    )


def _fresh_info(module: _Module, token: Any, fallback: TokenInfo) -> TokenInfo:
    try:
        return _token_info(module, token.slot.get_token())
    except p11x.PKCS11Error:
        return fallback


def _device_error(exc: BaseException, subject: str, doing: str) -> TokenError:
    """Map a python-pkcs11 failure (never carrying a PIN: only its class name is used)."""
    name = type(exc).__name__
    if isinstance(exc, (p11x.DeviceRemoved, p11x.TokenNotPresent)):
        return TokenError(f"{doing}: the token was removed", subject=subject,
                          hint="plug the token in again and retry")
    if isinstance(exc, (p11x.SessionClosed, p11x.SessionHandleInvalid)):
        return TokenError(f"{doing}: the token closed the session", subject=subject,
                          hint="the token was reset or removed; retry")
    if isinstance(exc, p11x.UserNotLoggedIn):
        return TokenError(f"{doing}: the token is no longer logged in", subject=subject,
                          hint="another program logged the token out; retry")
    if isinstance(exc, (p11x.MechanismInvalid, p11x.MechanismParamInvalid)):
        return MechanismNotOffered(f"{doing}: the token refused the mechanism ({name})",
                                   subject=subject)
    if isinstance(exc, p11x.SessionCount):
        return TokenError(f"{doing}: the token has no free session", subject=subject,
                          hint="close other programs using the token and retry")
    if isinstance(exc, p11x.FunctionCancelled):
        return TokenError(f"{doing}: cancelled on the token (PIN pad or touch)", subject=subject)
    if isinstance(exc, p11x.TokenWriteProtected):
        return TokenError(f"{doing}: the token is write-protected", subject=subject)
    if isinstance(exc, (p11x.DeviceMemory, p11x.HostMemory)):
        return TokenError(f"{doing}: the token is out of memory", subject=subject,
                          hint="delete unused objects from the token")
    return TokenError(f"{doing}: the token refused ({name})", subject=subject)


def _rv_error(rv: int, subject: str, doing: str) -> TokenError:
    codes = {
        CKR_PIN_INVALID: ("the PIN contains characters the token does not accept", PinError),
        CKR_PIN_LEN_RANGE: ("the PIN is too short or too long for this token", PinError),
        CKR_PIN_EXPIRED: ("the PIN has expired: change it with the token's tool", PinError),
        CKR_USER_PIN_NOT_INITIALIZED: ("the token has no user PIN yet: initialise it", PinError),
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN: (
            "the security officer is logged in to this token", TokenError),
        CKR_USER_TOO_MANY_TYPES: ("another user type is logged in to this token", TokenError),
        CKR_DEVICE_REMOVED: ("the token was removed", TokenError),
        CKR_TOKEN_NOT_PRESENT: ("the token was removed", TokenError),
        CKR_DEVICE_ERROR: ("the token reported a device error", TokenError),
        CKR_FUNCTION_CANCELED: ("cancelled on the token's PIN pad", TokenError),
        CKR_SESSION_CLOSED: ("the token closed the session", TokenError),
        CKR_SESSION_HANDLE_INVALID: ("the token closed the session", TokenError),
    }
    detail, cls = codes.get(rv, (f"the token returned CKR {rv:#x}", TokenError))
    return cls(f"{doing}: {detail}", subject=subject)


# --------------------------------------------------------------------------------------------
# Sessions


class _TokenSession:
    """One session on one token, with at most one share of the token's login. Close once."""

    def __init__(self, module: _Module, token: Any, info: TokenInfo, session: Any) -> None:
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
        with _LOCK:
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

    def __enter__(self) -> _TokenSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def login(self, pin_provider: PinProvider) -> None:
        """Share the token's login, logging in (and asking for the PIN) only if nobody has."""
        if self._join_login():
            return
        fresh = _fresh_info(self.module, self.token, self.info)
        if fresh.pin_locked:
            raise pin_failure_error(fresh)
        pin = None if fresh.protected_authentication_path else _ask_pin(pin_provider)
        try:
            with _LOCK:
                if self._join_login():
                    return
                rv = self.module.cryptoki.login_user(self.session.handle, pin)
                if rv in (CKR_OK, CKR_USER_ALREADY_LOGGED_IN):
                    # Already logged in means someone else in this process did: not ours to end.
                    self.module.logins[self.info.slot_id] = _Login(1, owned=rv == CKR_OK)
                    self.login_held = True
                    return
        finally:
            if pin is not None:
                pin[:] = bytes(len(pin))
        if rv in (CKR_PIN_INCORRECT, CKR_PIN_LOCKED):
            after = _fresh_info(self.module, self.token, fresh)
            if rv == CKR_PIN_LOCKED:  # said by the return code even if the flags lag behind
                after = replace(after, pin_locked=True)
            raise pin_failure_error(after)
        raise _rv_error(rv, self.subject, "login")

    def _join_login(self) -> bool:
        """True when the token is already logged in for this process (one more holder)."""
        with _LOCK:
            login = self.module.logins.get(self.info.slot_id)
            if login is not None:
                login.holders += 1
                self.login_held = True
                return True
            rv, state = self.module.cryptoki.session_state(self.session.handle)
            if rv != CKR_OK:
                raise _rv_error(rv, self.subject, "reading the session state")
            if state == _CKS_RW_SO_FUNCTIONS:
                raise TokenError("the security officer is logged in to this token",
                                 subject=self.subject)
            if state in (_CKS_RO_USER_FUNCTIONS, _CKS_RW_USER_FUNCTIONS):
                self.module.logins[self.info.slot_id] = _Login(1, owned=False)
                self.login_held = True
                return True
            if not self.info.login_required:
                self.module.logins[self.info.slot_id] = _Login(1, owned=False)
                self.login_held = True
                return True
            return False


def _ask_pin(pin_provider: PinProvider) -> bytearray:
    pin = pin_provider()
    if not isinstance(pin, str) or not pin:
        raise PinError("no PIN was given", hint="set AIRSEAL_PIN or type the PIN when asked")
    return bytearray(pin.encode("utf-8"))


def _open_session(
    module_path: str | os.PathLike[str], selector: str, *, rw: bool
) -> _TokenSession:
    with _LOCK:
        module = _module(module_path)
        token, info = _select_token(module, selector)
        try:
            session = token.open(rw=rw)
        except p11x.PKCS11Error as exc:
            raise _device_error(exc, info.describe(), "opening a session") from None
        module.open_sessions += 1
        return _TokenSession(module, token, info, session)


@contextmanager
def _logged_in(
    module_path: str | os.PathLike[str], selector: str, pin_provider: PinProvider, *, rw: bool
) -> Iterator[_TokenSession]:
    session = _open_session(module_path, selector, rw=rw)
    try:
        session.login(pin_provider)
        yield session
    finally:
        session.close()


# --------------------------------------------------------------------------------------------
# Keys on the token


def _attr(obj: Any, attribute: Attribute, default: Any = None) -> Any:
    try:
        return obj[attribute]
    except (p11x.AttributeTypeInvalid, p11x.AttributeSensitive, NotImplementedError):
        return default


def _check_label(label: str) -> str:
    if not isinstance(label, str) or not label.strip():
        raise TokenKeyNotFound("no key label was given")
    if len(label) > MAX_LABEL_CHARS or not label.isprintable():
        raise TokenError(
            f"a key label is at most {MAX_LABEL_CHARS} printable characters",
            hint="choose a shorter label",
        )
    return label


def _objects(session: Any, attrs: dict[Attribute, Any], subject: str) -> list[Any]:
    try:
        return list(session.get_objects(attrs))
    except p11x.PKCS11Error as exc:
        raise _device_error(exc, subject, "searching the token") from None


def _ids_for_label(ts: _TokenSession, label: str) -> list[bytes]:
    """CKA_IDs of private keys with this label, or (for tokens that label only the public half
    or the certificate, as some PIV modules do) of objects with this label that have a private
    key under the same id. Distinct, in token order."""
    ids: list[bytes] = []
    for obj in _objects(
        ts.session, {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: label}, ts.subject
    ):
        key_id = bytes(_attr(obj, Attribute.ID, b"") or b"")
        if key_id not in ids:
            ids.append(key_id)
    if ids:
        return ids
    for object_class in (ObjectClass.PUBLIC_KEY, ObjectClass.CERTIFICATE):
        for obj in _objects(
            ts.session, {Attribute.CLASS: object_class, Attribute.LABEL: label}, ts.subject
        ):
            key_id = bytes(_attr(obj, Attribute.ID, b"") or b"")
            if key_id in ids:
                continue
            if _objects(
                ts.session,
                {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: key_id},
                ts.subject,
            ):
                ids.append(key_id)
    return ids


def _private_key_listing(ts: _TokenSession) -> str:
    keys = _objects(ts.session, {Attribute.CLASS: ObjectClass.PRIVATE_KEY}, ts.subject)
    if not keys:
        return "the token holds no private key"
    items = [
        f"{_attr(k, Attribute.LABEL, '')!r} (id {bytes(_attr(k, Attribute.ID, b'') or b'').hex()})"
        for k in keys[:_MAX_LISTED]
    ]
    more = f" and {len(keys) - _MAX_LISTED} more" if len(keys) > _MAX_LISTED else ""
    return "private keys on the token: " + ", ".join(items) + more


def _single_private_key(ts: _TokenSession, key_id: bytes) -> Any:
    keys = _objects(
        ts.session, {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: key_id}, ts.subject
    )
    if not keys:
        raise TokenKeyNotFound(
            f"no private key with id {key_id.hex() or '(empty)'}; " + _private_key_listing(ts),
            subject=ts.subject,
            hint="the key was deleted or another token is attached; register the key again",
        )
    if len(keys) > 1:
        raise TokenError(
            f"{len(keys)} private keys share id {key_id.hex() or '(empty)'}",
            subject=ts.subject,
            hint="give each key its own CKA_ID with the token's tool (e.g. pkcs11-tool)",
        )
    return keys[0]


def _ec_point(raw: bytes, curve: ec.EllipticCurve) -> bytes:
    """The uncompressed point from CKA_EC_POINT: DER OCTET STRING (the standard) or raw."""
    size = 2 * ((curve.key_size + 7) // 8) + 1
    if len(raw) == size and raw[0] == 0x04:
        return raw
    if len(raw) == size + 2 and raw[0] == 0x04 and raw[1] == size and raw[2] == 0x04:
        return raw[2:]
    raise TokenError(
        f"the token returned an EC point of {len(raw)} bytes, not a {curve.name} point"
    )


def _public_key_from_object(obj: Any) -> PublicKey:
    key_type = _attr(obj, Attribute.KEY_TYPE)
    if key_type == KeyType.EC:
        params = bytes(obj[Attribute.EC_PARAMS])
        curve = _CURVES.get(params)
        if curve is None:
            raise UnsupportedAlgorithm(f"EC parameters {params.hex()} are not P-256 or P-384")
        point = _ec_point(bytes(obj[Attribute.EC_POINT]), curve)
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    if key_type == KeyType.RSA:
        modulus = int.from_bytes(bytes(obj[Attribute.MODULUS]), "big")
        exponent = int.from_bytes(bytes(obj[Attribute.PUBLIC_EXPONENT]), "big")
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    raise UnsupportedAlgorithm(f"key type {key_type!r} is not ECDSA or RSA")


def _token_public_key(ts: _TokenSession, key_id: bytes) -> PublicKey | None:
    """The public half under ``key_id``: the public key object, else the certificate's key."""
    try:
        publics = _objects(
            ts.session, {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.ID: key_id}, ts.subject
        )
        if len(publics) == 1:
            return _public_key_from_object(publics[0])
        certificates = _objects(
            ts.session, {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: key_id}, ts.subject
        )
        if len(certificates) == 1:
            der = bytes(certificates[0][Attribute.VALUE])
            key = x509.load_der_x509_certificate(der).public_key()
            if isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
                return key
            raise UnsupportedAlgorithm(f"{type(key).__name__} keys are not supported")
    except UnsupportedAlgorithm as exc:
        raise TokenError(
            f"key id {key_id.hex()}: {exc.detail}",
            subject=ts.subject,
            hint="Airseal signs with ECDSA P-256/P-384 or RSA (2048 bits or more) token keys",
        ) from None
    except (p11x.PKCS11Error, ValueError) as exc:
        raise TokenError(
            f"key id {key_id.hex()}: unreadable public key ({type(exc).__name__})",
            subject=ts.subject,
        ) from None
    return None


def _supported(key: PublicKey, ts: _TokenSession, what: str) -> KeyAlgorithm:
    try:
        return key_algorithm(key)
    except UnsupportedAlgorithm as exc:
        raise TokenError(
            f"{what}: {exc.detail}",
            subject=ts.subject,
            hint="Airseal signs with ECDSA P-256/P-384 or RSA (2048 bits or more) token keys",
        ) from None


def _ref(ts: _TokenSession, key_id: bytes, label: str, public: PublicKey) -> Pkcs11KeyRef:
    return Pkcs11KeyRef(
        module_path=ts.module.path,
        token_label=ts.info.label,
        token_serial=ts.info.serial,
        key_id=key_id.hex(),
        key_label=label,
        public_key_pem=spki_pem(public),
    )


def _mechanisms(ts: _TokenSession) -> set[Any]:
    try:
        return set(ts.token.slot.get_mechanisms())
    except p11x.PKCS11Error as exc:
        raise _device_error(exc, ts.subject, "listing mechanisms") from None


def generate_key(
    module_path: str | os.PathLike[str], *, token: str, label: str, pin_provider: PinProvider
) -> Pkcs11KeyRef:
    """Generate an EC P-256 signing key on the token; the private half never leaves it.

    ``token`` is the token's label or serial. A key with the same label already on the token is
    refused (:class:`TokenKeyExists`): labels are how operators name keys, and a duplicate would
    make :func:`find_key` ambiguous.
    """
    _check_label(label)
    with _logged_in(module_path, token, pin_provider, rw=True) as ts:
        if ts.info.write_protected:
            raise TokenError("the token is write-protected", subject=ts.subject)
        offered = _mechanisms(ts)
        require_mechanism(offered, Mechanism.EC_KEY_PAIR_GEN, purpose="generating an EC key",
                          subject=ts.subject)
        require_mechanism(offered, Mechanism.ECDSA, purpose="signing with ECDSA",
                          subject=ts.subject)
        existing = _ids_for_label(ts, label) or [
            bytes(_attr(obj, Attribute.ID, b"") or b"")
            for obj in _objects(
                ts.session, {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.LABEL: label},
                ts.subject,
            )
        ]
        if existing:
            raise TokenKeyExists(
                f"a key labelled {label!r} is already on the token (id "
                + ", ".join(i.hex() or "(empty)" for i in existing) + ")",
                subject=ts.subject,
            )
        key_id = _fresh_key_id(ts)
        try:
            public, private = ts.session.generate_keypair(
                KeyType.EC,
                store=True,
                id=key_id,
                label=label,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template={
                    Attribute.EC_PARAMS: _P256_PARAMS,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: False,
                    Attribute.VERIFY: True,
                    Attribute.ENCRYPT: False,
                    Attribute.WRAP: False,
                    Attribute.DERIVE: False,
                },
                private_template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                    Attribute.DECRYPT: False,
                    Attribute.UNWRAP: False,
                    Attribute.DERIVE: False,
                },
            )
        except (p11x.TemplateInconsistent, p11x.TemplateIncomplete,
                p11x.AttributeValueInvalid, p11x.AttributeTypeInvalid) as exc:
            raise TokenError(
                f"the token refused the key template ({type(exc).__name__})",
                subject=ts.subject,
                hint="some tokens fix key ids to slots (YubiKey PIV): generate with "
                "`airseal piv generate-key`, then register the key by label",
            ) from None
        except p11x.PKCS11Error as exc:
            raise _device_error(exc, ts.subject, "generating the key") from None
        try:
            _check_generated(ts, private, public)
            public_key = _public_key_from_object(public)
        except BaseException:
            for obj in (private, public):
                with suppress(p11x.PKCS11Error):
                    obj.destroy()
            raise
        return _ref(ts, key_id, label, public_key)


def _fresh_key_id(ts: _TokenSession) -> bytes:
    for _ in range(8):
        key_id = secrets.token_bytes(KEY_ID_BYTES)
        if not _objects(ts.session, {Attribute.ID: key_id}, ts.subject):
            return key_id
    raise TokenError("could not find an unused key id", subject=ts.subject)


def _check_generated(ts: _TokenSession, private: Any, public: Any) -> None:
    """Refuse a key the token did not make as asked (a token may ignore template attributes)."""
    expected = {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.SIGN: True,
    }
    for attribute, value in expected.items():
        actual = _attr(private, attribute)
        if actual is not None and bool(actual) != value:
            raise TokenError(
                f"the token created the private key with {attribute.name}={actual}; "
                "the key was deleted",
                subject=ts.subject,
                hint="this token cannot hold a non-extractable signing key; use another token",
            )
    if _attr(public, Attribute.TOKEN) is False:
        raise TokenError("the token did not store the public key; the key was deleted",
                         subject=ts.subject)


def find_key(
    module_path: str | os.PathLike[str],
    *,
    token: str,
    label: str,
    pin_provider: PinProvider,
    key_id: str | None = None,
) -> Pkcs11KeyRef:
    """Register a key that is already on the token, found by its label.

    Several keys with one label is :class:`AmbiguousKeyLabel`, listing their ids: pass one of
    them as ``key_id`` (hex) to choose. No such label is :class:`TokenKeyNotFound`, listing the
    private keys the token holds.
    """
    _check_label(label)
    wanted_id: bytes | None = None
    if key_id is not None:
        try:
            wanted_id = bytes.fromhex(key_id)
        except ValueError:
            raise TokenKeyNotFound(f"key id {key_id!r} is not hex") from None
    with _logged_in(module_path, token, pin_provider, rw=False) as ts:
        ids = _ids_for_label(ts, label)
        if wanted_id is not None:
            ids = [i for i in ids if i == wanted_id]
        if not ids:
            which = f" with id {wanted_id.hex()}" if wanted_id is not None else ""
            raise TokenKeyNotFound(
                f"no private key labelled {label!r}{which}; " + _private_key_listing(ts),
                subject=ts.subject,
            )
        if len(ids) > 1:
            raise AmbiguousKeyLabel(
                f"{len(ids)} keys are labelled {label!r}, with ids "
                + ", ".join(i.hex() or "(empty)" for i in ids),
                subject=ts.subject,
            )
        chosen = ids[0]
        private = _single_private_key(ts, chosen)
        if _attr(private, Attribute.SIGN) is False:
            raise TokenError(f"key {label!r} (id {chosen.hex()}) is not allowed to sign",
                             subject=ts.subject)
        public = _token_public_key(ts, chosen)
        if public is None:
            raise TokenKeyNotFound(
                f"key {label!r} (id {chosen.hex()}) has no public key or certificate on the token",
                subject=ts.subject,
                hint="store the public key or a certificate under the same CKA_ID, then retry",
            )
        _supported(public, ts, f"key {label!r}")
        return _ref(ts, chosen, label, public)


# --------------------------------------------------------------------------------------------
# Signing


class _SignerState:
    """Everything a signer must release; kept apart so a finaliser can release it."""

    def __init__(self) -> None:
        self.session: _TokenSession | None = None
        self.closed = False

    def close(self) -> None:
        self.closed = True
        session, self.session = self.session, None
        if session is not None:
            session.close()


class Pkcs11Signer:
    """A :class:`airseal.trustroot.signer.Signer` whose private key stays on a PKCS#11 token.

    Opening it selects the token, logs in (asking ``pin_provider`` if needed), finds the key by
    id and checks the token's public key against the reference. One session and one login then
    serve every signature until :meth:`close` (use it as a context manager).
    """

    def __init__(
        self,
        ref: Pkcs11KeyRef,
        pin_provider: PinProvider,
        *,
        rsa_padding: RsaPadding = RsaPadding.PKCS1V15,
    ) -> None:
        self._ref = ref
        self._pin_provider = pin_provider
        self._public_key = ref.public_key()
        self._algorithm = key_algorithm(self._public_key)
        self._rsa_padding = rsa_padding
        self._lock = threading.Lock()
        self._verified_once = False
        self._state = _SignerState()
        self._finalizer = weakref.finalize(self, self._state.close)
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        ref = self._ref
        ts = _open_session(ref.module_path, ref.token_selector, rw=False)
        self._state.session = ts
        ts.login(self._pin_provider)
        self._key = _single_private_key(ts, ref.key_id_bytes)
        on_token = _token_public_key(ts, ref.key_id_bytes)
        if on_token is not None and spki_der(on_token) != spki_der(self._public_key):
            raise TokenKeyMismatch(
                f"the key under id {ref.key_id} is not the registered key {ref.key_label!r}",
                subject=ts.subject,
            )
        self._always_authenticate = bool(_attr(self._key, Attribute.ALWAYS_AUTHENTICATE, False))
        offered = _mechanisms(ts)
        purpose = f"signing with key {ref.key_label!r}"
        self._mechanism_param: Any = None
        if isinstance(self._public_key, ec.EllipticCurvePublicKey):
            self._mechanism = Mechanism.ECDSA
            self._coordinate_bytes = (self._public_key.curve.key_size + 7) // 8
        elif self._rsa_padding is RsaPadding.PSS:
            self._mechanism = Mechanism.RSA_PKCS_PSS
            self._mechanism_param = (Mechanism.SHA256, MGF.SHA256, _PSS_SALT_BYTES)
        else:
            self._mechanism = Mechanism.RSA_PKCS
        require_mechanism(offered, self._mechanism, purpose=purpose, subject=ts.subject)

    # -- the Signer interface --

    @property
    def public_key(self) -> PublicKey:
        return self._public_key

    @property
    def algorithm(self) -> KeyAlgorithm:
        """The key's algorithm. With ``RsaPadding.PSS`` the signatures are PSS regardless."""
        return self._algorithm

    @property
    def ref(self) -> Pkcs11KeyRef:
        return self._ref

    @property
    def closed(self) -> bool:
        return self._state.closed

    def sign_digest(self, sha256_digest: bytes) -> bytes:
        """DER ECDSA, PKCS#1 v1.5 (or PSS, if chosen) signature over a SHA-256 digest."""
        if len(sha256_digest) != 32:
            raise ValueError("sha256_digest must be 32 bytes")
        with self._lock:
            ts = self._state.session
            if ts is None or self._state.closed:
                raise TokenError("the signer is closed", subject=self._ref.key_label,
                                 hint="open a new signer")
            data = sha256_digest
            if self._mechanism is Mechanism.RSA_PKCS:
                data = _SHA256_DIGEST_INFO + sha256_digest
            try:
                if self._always_authenticate:
                    raw = self._key.sign(data, mechanism=self._mechanism,
                                         mechanism_param=self._mechanism_param,
                                         pin=self._context_pin())
                else:
                    raw = self._key.sign(data, mechanism=self._mechanism,
                                         mechanism_param=self._mechanism_param)
            except (p11x.PinIncorrect, p11x.PinLocked) as exc:
                # A failed per-signature login can leave the operation half open: start afresh.
                after = _fresh_info(ts.module, ts.token, ts.info)
                if isinstance(exc, p11x.PinLocked):
                    after = replace(after, pin_locked=True)
                error = pin_failure_error(after)
                self._state.close()
                raise error from None
            except p11x.PKCS11Error as exc:
                raise _device_error(exc, ts.subject, "signing") from None
            signature = self._encode(raw, ts)
            if not self._verified_once:
                self._check_signature(signature, sha256_digest, ts)
                self._verified_once = True
            return signature

    def sign_message(self, message: bytes) -> bytes:
        return sign_message_via_digest(self, message)

    # -- internals --

    def _context_pin(self) -> str:
        pin = self._pin_provider()
        if not isinstance(pin, str) or not pin:
            raise PinError("no PIN was given", hint="set AIRSEAL_PIN or type the PIN when asked")
        return pin

    def _encode(self, raw: bytes, ts: _TokenSession) -> bytes:
        if self._mechanism is not Mechanism.ECDSA:
            return bytes(raw)
        n = self._coordinate_bytes
        if len(raw) != 2 * n:
            raise TokenError(
                f"the token returned a {len(raw)}-byte ECDSA signature, not raw r||s of {2 * n}",
                subject=ts.subject,
            )
        return encode_dss_signature(int.from_bytes(raw[:n], "big"), int.from_bytes(raw[n:], "big"))

    def _check_signature(self, signature: bytes, digest: bytes, ts: _TokenSession) -> None:
        """The first signature must verify with the registered key (covers tokens that expose
        no public key object, and tokens that sign differently than they advertise)."""
        try:
            if self._mechanism is Mechanism.RSA_PKCS_PSS:
                assert isinstance(self._public_key, rsa.RSAPublicKey)
                try:
                    self._public_key.verify(
                        signature, digest,
                        padding.PSS(padding.MGF1(hashes.SHA256()), _PSS_SALT_BYTES),
                        Prehashed(hashes.SHA256()),
                    )
                except _CryptoInvalidSignature:
                    raise InvalidSignature("PSS signature does not verify") from None
            else:
                verify_digest(self._public_key, signature, digest)
        except TrustrootError:
            self._state.close()
            raise TokenKeyMismatch(
                f"the token's signature does not verify with the registered key "
                f"{self._ref.key_label!r} (id {self._ref.key_id}); the signer was closed",
                subject=ts.subject,
            ) from None

    def close(self) -> None:
        """Log out (if this was the last signer on the token) and close the session. Idempotent."""
        self._finalizer()

    def __enter__(self) -> Pkcs11Signer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"<Pkcs11Signer {self._ref.key_label!r} id={self._ref.key_id} "
            f"token={self._ref.token_label!r} serial={self._ref.token_serial!r} {state}>"
        )
