"""Loaded PKCS#11 modules and their open sessions and logins (process-wide, as PKCS#11 itself is).

python-pkcs11 keeps one loaded module per path, and ``C_Initialize`` reads a module's
configuration and token list once (SoftHSM2 reads ``SOFTHSM2_CONF`` there). Each operation that
starts while this process holds no session on a module therefore re-initialises it, so tokens
plugged in or created since are seen; it never does so while a signer is open. Other code in the
process should not hold its own sessions on a module it shares with this one.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

import pkcs11
from pkcs11 import exceptions as p11x

from airseal.appliance.errors import Pkcs11ModuleError
from airseal.appliance.signers.pkcs11.cryptoki import Cryptoki


@dataclass
class SharedLogin:
    """This process's login on one token, shared by every session that holds a share of it."""

    holders: int
    owned: bool  # we called C_Login, so we call C_Logout when the last holder leaves


@dataclass
class LoadedModule:
    """One PKCS#11 library as loaded here, with what this process holds open on it."""

    path: str  # as given (absolute)
    real_path: str
    lib: Any  # pkcs11._pkcs11.lib
    cryptoki: Cryptoki
    open_sessions: int = 0
    logins: dict[int, SharedLogin] = field(default_factory=dict)


MODULES_LOCK = threading.RLock()
_MODULES: dict[str, LoadedModule] = {}


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


def load_module(module_path: str | os.PathLike[str]) -> LoadedModule:
    """The loaded module, freshly initialised when this process holds no session on it.

    Caller holds ``MODULES_LOCK``.
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
        cryptoki = Cryptoki(real_path)
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
    module = LoadedModule(path=path, real_path=real_path, lib=lib, cryptoki=cryptoki)
    _MODULES[real_path] = module
    return module
