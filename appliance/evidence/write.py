"""Put evidence on disk atomically: every file goes into a staging folder beside the target,
is fsynced, and the folder is renamed into place at the end. A crash or a full disk leaves no
target (or the empty folder that was there), never half the evidence."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from airseal._internal.atomic import fsync_dir
from airseal.appliance.errors import UsageError


def check_target(target: Path) -> None:
    """The target must not exist yet, or be an empty folder: evidence never overwrites."""
    if target.is_symlink() or (target.exists() and (not target.is_dir() or any(target.iterdir()))):
        raise UsageError(f"{target} already exists and is not an empty folder",
                         subject="--to", hint="give a new folder for the evidence")
    if not target.parent.is_dir():
        raise UsageError(f"{target.parent} is not a folder", subject="--to")


def write_evidence(target: Path, files: dict[str, bytes]) -> int:
    """Write ``files`` (relative POSIX paths) as the folder ``target``; returns bytes written."""
    target = Path(target)
    check_target(target)
    staging = target.parent / f".{target.name}.staging-{secrets.token_hex(4)}"
    staging.mkdir(mode=0o755)
    total = 0
    try:
        for relative, data in sorted(files.items()):
            path = staging.joinpath(*relative.split("/"))
            if ".." in relative.split("/") or not path.resolve().is_relative_to(staging.resolve()):
                raise ValueError(f"unsafe evidence path {relative!r}")
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            total += len(data)
        for folder, _dirs, _files in os.walk(staging, topdown=False):
            fsync_dir(Path(folder))
        if target.is_dir():
            target.rmdir()  # empty (checked): rename needs it gone on every OS
        os.rename(staging, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return total
