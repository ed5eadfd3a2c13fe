"""A real exFAT filesystem for tests: an image made by mkfs.exfat, on a loop device, mounted with
exfat-fuse.

Sticks above 32 GB come formatted exFAT. The kernel on the test machines has no exfat module, and
exfat-fuse mounts with FUSE's ``blkdev`` option (its built-in options are
``allow_other,big_writes,blkdev,default_permissions``), i.e. as ``fuseblk``: the kernel then
requires the source to be a block device and refuses an image file ("fuse: mount failed: Block
device required"). So the image is attached to a loop device first (``losetup --find
--show``). Where a container has ``/dev/loop-control`` but no ``/dev/loopN`` nodes, the free
index is asked of loop-control (``LOOP_CTL_GET_FREE``) and the node is made with ``mknod``.

    with exfat_mount(tmp_path, size_mib=64) as ex:
        ...  # ex.mount is a directory on a real exFAT filesystem, ex.device its loop device

This helper installs nothing: when a tool is missing it fails with the Debian packages to install
(``scripts/setup --test`` installs them).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

TOOLS = {
    "truncate": "coreutils",
    "mkfs.exfat": "exfatprogs",
    "fsck.exfat": "exfatprogs",
    "mount.exfat-fuse": "exfat-fuse",
    "losetup": "util-linux",
    "fusermount": "fuse3 (or fuse)",
}
LOOP_MAJOR = 7
LOOP_CTL_GET_FREE = 0x4C82
MOUNT_TIMEOUT_SECONDS = 10.0


class ExfatUnavailable(RuntimeError):
    """A tool or device needed for an exFAT test filesystem is missing or failed."""


@dataclass(frozen=True)
class Exfat:
    image: Path
    device: str
    mount: Path
    size_mib: int


def require_tools() -> None:
    missing = {tool: pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None}
    if "fusermount" in missing and shutil.which("fusermount3"):
        del missing["fusermount"]
    if missing:
        packages = sorted({p.split(" ")[0] for p in missing.values()})
        raise ExfatUnavailable(
            f"exFAT tests need {', '.join(sorted(missing))}; install the Debian packages: "
            f"apt-get install -y {' '.join(packages)}"
        )
    for needed in ("/dev/fuse", "/dev/loop-control"):
        if not os.path.exists(needed):
            raise ExfatUnavailable(f"exFAT tests need {needed}, which this machine lacks")


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def make_image(image: Path, size_mib: int) -> None:
    for argv in (
        ["truncate", "-s", f"{size_mib}M", str(image)],
        ["mkfs.exfat", str(image)],
    ):
        done = _run(argv)
        if done.returncode != 0:
            raise ExfatUnavailable(f"{' '.join(argv)} failed: {done.stderr.strip()}")


def _make_loop_node() -> str:
    """Ask loop-control for a free loop index and make its device node if it is missing."""
    fd = os.open("/dev/loop-control", os.O_RDWR)
    try:
        index = fcntl.ioctl(fd, LOOP_CTL_GET_FREE)
    finally:
        os.close(fd)
    node = f"/dev/loop{index}"
    if not os.path.exists(node):
        os.mknod(node, 0o600 | stat.S_IFBLK, os.makedev(LOOP_MAJOR, index))
    return node


def attach_loop(image: Path) -> str:
    """Attach ``image`` to a free loop device and return the device's path."""
    done = _run(["losetup", "--find", "--show", str(image)])
    if done.returncode == 0:
        return done.stdout.strip()
    first_error = done.stderr.strip()
    for _ in range(5):  # other tests may take the index between our ioctl and losetup
        node = _make_loop_node()
        done = _run(["losetup", node, str(image)])
        if done.returncode == 0:
            return node
    raise ExfatUnavailable(
        f"no loop device for {image}: losetup --find said {first_error!r}, "
        f"then {done.stderr.strip()!r}"
    )


def detach_loop(device: str) -> None:
    for _ in range(20):
        if _run(["losetup", "-d", device]).returncode == 0:
            return
        time.sleep(0.1)
    raise ExfatUnavailable(f"could not detach {device}")


def _is_mounted(mount: Path) -> bool:
    target = os.path.realpath(mount)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return any(line.split(" ")[4] == target for line in f)


def unmount(mount: Path) -> None:
    for argv in (
        ["fusermount", "-u", str(mount)],
        ["fusermount3", "-u", str(mount)],
        ["umount", str(mount)],
        ["umount", "-l", str(mount)],
    ):
        if not _is_mounted(mount):
            return
        if shutil.which(argv[0]) is None:
            continue
        for _ in range(20):
            if _run(argv).returncode == 0 or not _is_mounted(mount):
                break
            time.sleep(0.1)
    if _is_mounted(mount):
        raise ExfatUnavailable(f"could not unmount {mount}")


@contextmanager
def exfat_mount(workdir: Path, size_mib: int = 64, *, name: str = "usb") -> Iterator[Exfat]:
    """Make an exFAT image under ``workdir``, attach and mount it, yield it, always detach it."""
    require_tools()
    image = workdir / f"{name}.exfat.img"
    mount = workdir / f"{name}.mnt"
    make_image(image, size_mib)
    mount.mkdir()
    device = attach_loop(image)
    try:
        done = _run(["mount.exfat-fuse", device, str(mount)])
        if done.returncode != 0:
            raise ExfatUnavailable(
                f"mount.exfat-fuse {device} failed: {done.stderr.strip() or done.stdout.strip()}"
            )
        try:
            deadline = time.monotonic() + MOUNT_TIMEOUT_SECONDS
            while not _is_mounted(mount):
                if time.monotonic() > deadline:
                    raise ExfatUnavailable(f"exfat-fuse did not mount {device} on {mount}")
                time.sleep(0.05)
            yield Exfat(image, device, mount, size_mib)
        finally:
            unmount(mount)
    finally:
        detach_loop(device)


def fsck(image: Path) -> tuple[bool, str]:
    """``fsck.exfat -n`` on an unmounted, detached image (read-only): (clean, output)."""
    done = _run(["fsck.exfat", "-n", str(image)])
    return done.returncode == 0, done.stdout + done.stderr
