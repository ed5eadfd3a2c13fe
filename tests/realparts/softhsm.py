"""A private SoftHSM2 for tests and benchmarks: its own configuration and token directory.

Real Debian SoftHSM2 (package ``softhsm2``), never a mock. Each :class:`SoftHsm` writes a
``softhsm2.conf`` (``directories.tokendir`` in its own directory, ``objectstore.backend = file``)
and initialises tokens with ``softhsm2-util --init-token --free``; point ``SOFTHSM2_CONF`` at it
(the fixtures do, with monkeypatch) and re-initialise the module (:meth:`SoftHsm.activate`).

Facts this relies on (SoftHSM 2.6, checked here): SoftHSM reads ``SOFTHSM2_CONF`` in
``C_Initialize``; it always shows one extra, uninitialised token; it offers CKM_ECDSA (raw r||s),
CKM_RSA_PKCS and CKM_RSA_PKCS_PSS; it never locks a PIN and raises only
``CKF_USER_PIN_COUNT_LOW`` after a wrong one; labels are not unique; session handles are never
reused; it reports neither free memory nor session counts.

The test PINs are passed to ``softhsm2-util`` in argv: they protect nothing (a throw-away token
in a temporary directory). Airseal's own code never puts a PIN in argv.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
DEBIAN_PACKAGE = "softhsm2"
USER_PIN = "Quokka-user-pin"  # no hex digits run: cannot appear by chance in serials or ids
SO_PIN = "Quokka-so-pin"
_TIMEOUT_S = 60


@dataclass(frozen=True)
class SoftHsmToken:
    label: str
    serial: str
    slot_id: int
    pin: str
    so_pin: str


def ensure_installed() -> tuple[str, str]:
    """(module path, softhsm2-util path), or a RuntimeError saying what to install."""
    util = shutil.which("softhsm2-util")
    if util is None or not os.path.exists(SOFTHSM_MODULE):
        raise RuntimeError(
            f"SoftHSM2 is not installed ({SOFTHSM_MODULE} or softhsm2-util missing): "
            f"run `apt-get install -y {DEBIAN_PACKAGE}` (Debian package {DEBIAN_PACKAGE})"
        )
    return SOFTHSM_MODULE, util


class SoftHsm:
    """A SoftHSM2 token store in ``root``; :attr:`module_path` is the real Debian module."""

    def __init__(self, root: Path) -> None:
        self.module_path, self._util = ensure_installed()
        self.root = root
        self.token_dir = root / "tokens"
        self.token_dir.mkdir(parents=True, exist_ok=True)
        self.conf = root / "softhsm2.conf"
        self.conf.write_text(
            f"directories.tokendir = {self.token_dir}\n"
            "objectstore.backend = file\n"
            "log.level = ERROR\n",
            encoding="utf-8",
        )
        self.tokens: list[SoftHsmToken] = []

    @property
    def environ(self) -> dict[str, str]:
        return {**os.environ, "SOFTHSM2_CONF": str(self.conf)}

    def _run(self, *args: str) -> str:
        done = subprocess.run(
            [self._util, *args], capture_output=True, text=True, env=self.environ,
            timeout=_TIMEOUT_S, check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"softhsm2-util {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def init_token(self, label: str, *, pin: str = USER_PIN, so_pin: str = SO_PIN) -> SoftHsmToken:
        """Initialise the free slot's token; call :meth:`activate` before using it in-process."""
        out = self._run(
            "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin
        )
        match = re.search(r"reassigned to slot (\d+)", out)
        if match is None:
            raise RuntimeError(f"softhsm2-util did not say which slot it used: {out!r}")
        slot_id = int(match.group(1))
        token = SoftHsmToken(label, self._serial_of(slot_id), slot_id, pin, so_pin)
        self.tokens.append(token)
        return token

    def _serial_of(self, slot_id: int) -> str:
        out = self._run("--show-slots")
        for block in re.split(r"\n(?=Slot \d+\n)", out):
            if block.startswith(f"Slot {slot_id}\n"):
                found = re.search(r"Serial number:\s*(\S+)", block)
                if found:
                    return found.group(1)
        raise RuntimeError(f"softhsm2-util --show-slots does not list slot {slot_id}")

    def activate(self) -> None:
        """Point this process at this store (SOFTHSM2_CONF) and re-read it if already loaded.

        Only call it while no session is open on the module: re-initialising closes them.
        """
        os.environ["SOFTHSM2_CONF"] = str(self.conf)
        lib = self.lib()
        lib.reinitialize()

    def lib(self) -> Any:
        """python-pkcs11's module object, keyed by the real path as Airseal keys it."""
        import pkcs11

        return pkcs11.lib(os.path.realpath(self.module_path))

    def open_session_handles(self, upto: int) -> list[int]:
        """Handles 1..upto that are open sessions in this process (independent of Airseal).

        SoftHSM never reuses a handle, so scanning up to a just-opened handle finds every
        session this process still has open.
        """
        dll = ctypes.CDLL(os.path.realpath(self.module_path))
        get_info = dll.C_GetSessionInfo
        get_info.restype = ctypes.c_ulong
        get_info.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
        info = (ctypes.c_ulong * 4)()  # CK_SESSION_INFO: slotID, state, flags, ulDeviceError
        return [h for h in range(1, upto + 1) if get_info(h, ctypes.byref(info)) == 0]

    def session_state(self, handle: int) -> int:
        """CKS_* state of an open session (0 = read-only public: nobody logged in)."""
        dll = ctypes.CDLL(os.path.realpath(self.module_path))
        get_info = dll.C_GetSessionInfo
        get_info.restype = ctypes.c_ulong
        get_info.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
        info = (ctypes.c_ulong * 4)()
        rv = get_info(handle, ctypes.byref(info))
        if rv != 0:
            raise RuntimeError(f"C_GetSessionInfo({handle}) returned {rv:#x}")
        return int(info[1])
