"""What differs between Linux, macOS and Windows endpoints, as pure functions.

Everything here takes the operating system as an argument instead of asking the running one, so
Windows and macOS behaviour is unit-tested on Linux: state directory defaults, destination path
syntax, how a payload is started, what an exit code means, how a reboot is asked for and who may
run as whom. The I/O modules call these with :func:`current_os`.
"""

from __future__ import annotations

import ntpath
import posixpath
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import PurePath, PurePosixPath, PureWindowsPath
from typing import Literal

OperatingSystem = Literal["linux", "macos", "windows"]

STATE_ENV = "AIRSEAL_AGENT_HOME"
LINUX_STATE_DIR = "/var/lib/airseal-agent"
MACOS_STATE_DIR = "/Library/Application Support/Airseal Agent"
WINDOWS_PROGRAM_DATA_FALLBACK = "C:\\ProgramData"

WINDOWS_REBOOT_REQUIRED = 3010
"""ERROR_SUCCESS_REBOOT_REQUIRED: msiexec and most Windows installers' "done, please reboot"."""
WINDOWS_REBOOT_INITIATED = 1641
"""ERROR_SUCCESS_REBOOT_INITIATED: the installer started a reboot itself."""

_WINDOWS_RESERVED = re.compile(r"^(CON|PRN|AUX|NUL|COM[1-9]|LPT[1-9])(\..*)?$", re.IGNORECASE)
_WINDOWS_DRIVE_ABSOLUTE = re.compile(r"^[A-Za-z]:\\")


def current_os(platform: str = sys.platform) -> OperatingSystem:
    """The agent's name for ``sys.platform`` (anything Unix-like that is not macOS is linux)."""
    if platform.startswith("win"):
        return "windows"
    if platform == "darwin":
        return "macos"
    return "linux"


def default_state_dir(os_name: OperatingSystem, env: Mapping[str, str]) -> PurePath:
    """``$AIRSEAL_AGENT_HOME`` if set, else the system-wide default for ``os_name``.

    The agent is a system service, so its state is per machine, not per user:
    ``/var/lib/airseal-agent``, ``/Library/Application Support/Airseal Agent`` and
    ``%ProgramData%\\Airseal\\Agent``.
    """
    override = env.get(STATE_ENV)
    if os_name == "windows":
        if override:
            return PureWindowsPath(override)
        program_data = env.get("ProgramData") or env.get("PROGRAMDATA")
        return PureWindowsPath(program_data or WINDOWS_PROGRAM_DATA_FALLBACK, "Airseal", "Agent")
    if override:
        return PurePosixPath(override)
    return PurePosixPath(MACOS_STATE_DIR if os_name == "macos" else LINUX_STATE_DIR)


# -- download destinations ----------------------------------------------------------------------


def destination_problem(dest: str, os_name: OperatingSystem) -> str | None:
    """Why ``dest`` is not a safe download destination on ``os_name``, or ``None``.

    Safe: absolute, naming a file (not a folder, not the root), no ``.``/``..``/empty components,
    no NUL; on Windows also a drive path (no UNC share, no ``\\\\?\\`` device path), no alternate
    data stream (``:``) and no reserved device name.
    """
    if not dest:
        return "is empty"
    if "\x00" in dest:
        return "contains a NUL character"
    if len(dest) > 4096:
        return "is longer than 4096 characters"
    if os_name == "windows":
        return _windows_destination_problem(dest)
    if not dest.startswith("/"):
        return "is not an absolute path (/...)"
    if dest.endswith("/"):
        return "names a folder, not a file"
    parts = dest.split("/")[1:]
    for part in parts:
        if part in ("", ".", ".."):
            return f"has an {'empty' if not part else repr(part)} component"
    return None


def _windows_destination_problem(dest: str) -> str | None:
    if dest.startswith(("\\\\", "//")):
        return "is a UNC or device path; use a local drive path (C:\\...)"
    if "/" in dest:
        return "uses '/'; Windows destinations use '\\'"
    if not _WINDOWS_DRIVE_ABSOLUTE.match(dest):
        return "is not an absolute Windows path (C:\\...)"
    if dest.endswith("\\"):
        return "names a folder, not a file"
    for part in dest[3:].split("\\"):
        if part in ("", ".", ".."):
            return f"has an {'empty' if not part else repr(part)} component"
        if ":" in part:
            return f"component {part!r} names an alternate data stream (':')"
        if part[-1] in ". ":
            return f"component {part!r} ends with a dot or space (Windows strips them)"
        if _WINDOWS_RESERVED.match(part.split(".")[0].rstrip(" ")):
            return f"component {part!r} is a reserved device name"
        if any(c in '<>"|?*' or ord(c) < 0x20 for c in part):
            return f"component {part!r} has characters Windows does not allow"
    return None


def split_destination(dest: str, os_name: OperatingSystem) -> tuple[str, str]:
    """(parent folder, file name) of a destination cleared by :func:`destination_problem`."""
    module = ntpath if os_name == "windows" else posixpath
    parent, name = module.split(dest)
    return parent, name


# -- running payloads ---------------------------------------------------------------------------

_POSIX_SHELL_SCRIPTS = (".sh",)


def command_line(os_name: OperatingSystem, program: str, args: Sequence[str]) -> list[str]:
    """The argv that starts ``program`` (a file the agent verified) with ``args``.

    Scripts and packages that are not executables themselves go through the system's own
    interpreter or installer: ``.sh`` through ``/bin/sh`` (POSIX); ``.pkg`` through ``installer``
    (macOS); ``.msi`` through ``msiexec /i ... /qn``, ``.ps1`` through PowerShell and
    ``.bat``/``.cmd`` through ``cmd /c`` (Windows). Everything else is executed directly.
    """
    lower = program.lower()
    if os_name == "windows":
        if lower.endswith(".msi"):
            return ["msiexec.exe", "/i", program, "/qn", "/norestart", *args]
        if lower.endswith(".ps1"):
            return [
                "powershell.exe",
                "-NoProfile",
                "-NonInteractive",
                "-ExecutionPolicy",
                "Bypass",
                "-File",
                program,
                *args,
            ]
        if lower.endswith((".bat", ".cmd")):
            return ["cmd.exe", "/d", "/c", program, *args]
        return [program, *args]
    if lower.endswith(_POSIX_SHELL_SCRIPTS):
        return ["/bin/sh", program, *args]
    if os_name == "macos" and lower.endswith(".pkg"):
        return ["/usr/sbin/installer", "-pkg", program, "-target", "/", *args]
    return [program, *args]


def memory_staging_candidates(os_name: OperatingSystem) -> tuple[str, ...]:
    """RAM-backed folders that may hold private staging folders: ``/dev/shm`` on Linux (a
    sticky tmpfs); none on macOS (no tmpfs by default) or Windows."""
    return ("/dev/shm",) if os_name == "linux" else ()  # noqa: S108 (only via mkdtemp, 0700)


def exit_code_succeeded(os_name: OperatingSystem, exit_code: int) -> bool:
    """Whether a run's exit code means success (Windows installers' reboot codes do too)."""
    if exit_code == 0:
        return True
    return os_name == "windows" and exit_code in (WINDOWS_REBOOT_REQUIRED, WINDOWS_REBOOT_INITIATED)


def reboot_requested(os_name: OperatingSystem, exit_code: int | None, flag_file: bool) -> bool:
    """Whether a finished run asked for a reboot.

    Everywhere: the action created the file named by ``$AIRSEAL_REBOOT_FILE``. On Windows also
    exit code 3010 (reboot required), the convention of msiexec and most installers.
    """
    if flag_file:
        return True
    return os_name == "windows" and exit_code == WINDOWS_REBOOT_REQUIRED


def default_reboot_command(os_name: OperatingSystem) -> tuple[str, ...]:
    if os_name == "windows":
        return ("shutdown.exe", "/r", "/t", "60", "/c", "Airseal: a signed action needs a reboot")
    if os_name == "macos":
        return ("/sbin/shutdown", "-r", "+1")
    return ("systemctl", "reboot")


def run_as_problem(
    os_name: OperatingSystem, account: str | None, *, privileged: bool, current_user: str
) -> str | None:
    """Why an action cannot run as ``account`` here, or ``None``.

    POSIX switches account with ``setuid``/``setgid``/``setgroups`` in the child, which needs
    root unless the account is the agent's own. Windows would need the account's credentials
    (``CreateProcessAsUser``); an unattended agent has none, so run-as is refused there: the
    agent service runs as the account that should run the actions.
    """
    if account is None or account == current_user:
        return None
    if os_name == "windows":
        return (
            f"cannot run as {account!r} on Windows: the agent holds no credentials for other "
            "accounts; run the agent service as that account"
        )
    if not privileged:
        return f"running as {account!r} needs root; the agent runs as {current_user!r}"
    return None


def owner_problem(os_name: OperatingSystem, owner: str | None, *, privileged: bool) -> str | None:
    """Why a downloaded file cannot be given to ``owner`` here, or ``None``."""
    if owner is None:
        return None
    if os_name == "windows":
        return "setting a file owner is not supported on Windows (files inherit folder ACLs)"
    if not privileged:
        return f"giving the file to {owner!r} needs root"
    return None


def file_mode_applies(os_name: OperatingSystem) -> bool:
    """POSIX permission bits mean something; on Windows only the read-only bit would."""
    return os_name != "windows"


_POSIX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_WINDOWS_KEEP = ("SystemRoot", "SystemDrive", "windir", "ComSpec", "PATHEXT", "PATH", "TEMP", "TMP")


def run_environment(
    os_name: OperatingSystem,
    inherited: Mapping[str, str],
    *,
    home: str | None,
    user: str | None,
    extra: Mapping[str, str],
) -> dict[str, str]:
    """A small, predictable environment for an action: nothing of the agent's secrets leaks.

    The agent key password (``AIRSEAL_AGENT_KEY_PASSWORD``), ``CREDENTIALS_DIRECTORY`` and the
    rest of the agent's environment are not passed on; only what programs need to start, the
    account's home and name, and ``extra`` (the ``AIRSEAL_*`` variables describing the action).
    """
    env: dict[str, str] = {}
    if os_name == "windows":
        for name in _WINDOWS_KEEP:
            for key, value in inherited.items():
                if key.upper() == name.upper():
                    env[name] = value
    else:
        env["PATH"] = _POSIX_PATH
        env["LANG"] = "C.UTF-8"
        env["SHELL"] = "/bin/sh"
        if home:
            env["HOME"] = home
        if user:
            env["USER"] = user
            env["LOGNAME"] = user
    env.update(extra)
    return env
