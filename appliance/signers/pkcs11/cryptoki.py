"""Cryptoki itself: the calls python-pkcs11 lacks, return codes, and the token's raw vocabulary.

python-pkcs11 cannot log in on an open session, and leaks the session when ``C_Login`` fails
inside ``Token.open``; it does not report free token memory. The few Cryptoki calls it lacks
(``C_Login``, ``C_Logout``, ``C_GetSessionInfo``, ``C_GetTokenInfo``) are made here through the
module's own function list, on the same loaded library. The rest of the package speaks to tokens
through python-pkcs11 and this module's helpers: attribute reads that tolerate what a token
withholds, object searches, mechanism checks, and the mapping of every Cryptoki failure (a
python-pkcs11 exception or a ``CKR_*`` code) to a typed error that never carries a PIN.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterable
from typing import Any, Final

from pkcs11 import Attribute, Mechanism
from pkcs11 import exceptions as p11x

from airseal.appliance.errors import MechanismNotOffered, PinError, TokenError

_CK_ULONG = ctypes.c_ulong
_CK_UNAVAILABLE_INFORMATION: Final = (1 << (ctypes.sizeof(_CK_ULONG) * 8)) - 1
_CKU_USER: Final = 1
CKS_RO_USER_FUNCTIONS: Final = 1
CKS_RW_USER_FUNCTIONS: Final = 3
CKS_RW_SO_FUNCTIONS: Final = 4

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


class Cryptoki:
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


def device_error(exc: BaseException, subject: str, doing: str) -> TokenError:
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


def rv_error(rv: int, subject: str, doing: str) -> TokenError:
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


def read_attribute(obj: Any, attribute: Attribute, default: Any = None) -> Any:
    try:
        return obj[attribute]
    except (p11x.AttributeTypeInvalid, p11x.AttributeSensitive, NotImplementedError):
        return default


def find_objects(session: Any, attrs: dict[Attribute, Any], subject: str) -> list[Any]:
    try:
        return list(session.get_objects(attrs))
    except p11x.PKCS11Error as exc:
        raise device_error(exc, subject, "searching the token") from None

