"""Registering hardware-held keys found through a given device connection, and where PKCS#11
modules usually live.

:func:`airseal.appliance.keystore.import_piv_key` finds the YubiKey itself; the functions here take
the
connection factory (a real YubiKey from :func:`airseal.appliance.signers.piv.yubikey`, or a test
card)
so that an interface which already chose the device registers exactly that one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlite_utils

from airseal.appliance.home import Home
from airseal.appliance.keystore import KeyRecord, check_name, register_key

MODULE_ENV = "AIRSEAL_PKCS11_MODULE"
COMMON_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/libykcs11.so",
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/libykcs11.so",
    "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
)


def known_pkcs11_modules() -> list[str]:
    """``AIRSEAL_PKCS11_MODULE`` first (if set), then the common Debian module paths present."""
    found: list[str] = []
    env = os.environ.get(MODULE_ENV)
    if env:
        found.append(env)
    for path in COMMON_MODULES:
        if Path(path).exists() and path not in found:
            found.append(path)
    return found


def register_piv_slot(
    home: Home,
    db: sqlite_utils.Database,
    name: str,
    open_connection: Callable[[], Any],
    *,
    slot: str = "9c",
) -> KeyRecord:
    """Register the key in ``slot`` of the YubiKey behind ``open_connection`` under ``name``."""
    from airseal.appliance.signers.hardware import piv_reference
    from airseal.appliance.signers.piv import read_key

    check_name(name)
    ref = read_key(open_connection, slot)
    return register_key(
        home, db, name, "piv", ref.public_key, piv_reference(ref), audit_action="key.import"
    )
