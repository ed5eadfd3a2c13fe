"""A real FAT32 filesystem for tests: an image file made by mkfs.vfat, mounted with fusefat.

The kernel on the test machines has no vfat module, but FUSE works as root (TESTING.md). This
helper installs nothing: when a tool is missing it fails with the Debian packages to install.

    with fat32_mount(tmp_path, size_mib=32) as fat:
        ...  # fat.mount is a directory on a real FAT32 filesystem, fat.image its backing file

fusefat is slow (about 35 MB/s) and buggy in places (renaming a folder loses its contents, and
creating a file whose name differs only in case from an existing one corrupts it), so keep images
small and exercise those paths deliberately, not by accident.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

TOOLS = {
    "truncate": "coreutils",
    "mkfs.vfat": "dosfstools",
    "fsck.vfat": "dosfstools",
    "fusefat": "fusefat",
    "fusermount": "fuse3 (or fuse)",
}
MAX_IMAGE_MIB = 64
MOUNT_TIMEOUT_SECONDS = 10.0


class Fat32Unavailable(RuntimeError):
    """A tool needed for a FAT32 test filesystem is missing or failed."""


@dataclass(frozen=True)
class Fat32:
    image: Path
    mount: Path
    size_mib: int


def missing_tools() -> dict[str, str]:
    """Tools that are not on PATH (``fusermount3`` stands in for ``fusermount``)."""
    missing = {tool: package for tool, package in TOOLS.items() if shutil.which(tool) is None}
    if "fusermount" in missing and shutil.which("fusermount3"):
        del missing["fusermount"]
    return missing


def require_tools() -> None:
    missing = missing_tools()
    if missing:
        packages = sorted(set(missing.values()))
        raise Fat32Unavailable(
            f"FAT32 tests need {', '.join(sorted(missing))}; install the Debian packages: "
            f"apt-get install -y {' '.join(p.split(' ')[0] for p in packages)}"
        )
    if not os.path.exists("/dev/fuse"):
        raise Fat32Unavailable("FAT32 tests need /dev/fuse (FUSE), which this machine lacks")


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def make_image(image: Path, size_mib: int) -> None:
    """A fresh FAT32 image. No volume label: fusefat lists the label entry as a file."""
    if not 33 <= size_mib <= MAX_IMAGE_MIB:
        # mkfs.vfat needs about 33 MiB for FAT32 with 512-byte clusters.
        raise ValueError(f"FAT32 test images are 33..{MAX_IMAGE_MIB} MiB, not {size_mib}")
    for argv in (
        ["truncate", "-s", f"{size_mib}M", str(image)],
        ["mkfs.vfat", "-F", "32", str(image)],
    ):
        done = _run(argv)
        if done.returncode != 0:
            raise Fat32Unavailable(f"{' '.join(argv)} failed: {done.stderr.strip()}")


def _is_mounted(mount: Path) -> bool:
    target = os.path.realpath(mount)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return any(line.split(" ")[4] == target for line in f)


def unmount(mount: Path) -> None:
    """Unmount, trying fusermount, fusermount3 and finally a lazy unmount."""
    attempts = [
        ["fusermount", "-u", str(mount)],
        ["fusermount3", "-u", str(mount)],
        ["fusermount", "-uz", str(mount)],
        ["fusermount3", "-uz", str(mount)],
    ]
    for argv in attempts:
        if not _is_mounted(mount):
            return
        if shutil.which(argv[0]) is None:
            continue
        for _ in range(20):
            if _run(argv).returncode == 0 or not _is_mounted(mount):
                break
            time.sleep(0.1)
    if _is_mounted(mount):
        raise Fat32Unavailable(f"could not unmount {mount}")


def _daemon_pids(image: Path) -> list[int]:
    """The fusefat daemons serving ``image`` (fusefat forks into the background)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"fusefat" and os.fsencode(image) in argv:
            pids.append(int(entry))
    return pids


def _wait_for_exit(pids: list[int], timeout: float = 30.0) -> None:
    """fusermount returns when the kernel lets go; the daemon then still writes the FAT's
    clean-unmount state. fsck before it exits sees the dirty bit (seen under pytest-xdist)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return
        time.sleep(0.05)
    raise Fat32Unavailable(f"fusefat ({pids}) did not exit within {timeout:.0f} s of unmounting")


@contextmanager
def fat32_mount(
    workdir: Path,
    size_mib: int = 40,
    *,
    name: str = "usb",
    fsname: bool = False,
    writable: bool = True,
) -> Iterator[Fat32]:
    """Make a FAT32 image under ``workdir``, mount it, yield it, always unmount it.

    ``fsname=True`` mounts with ``-o fsname=IMAGE`` (the mount table then names the image);
    by default the mount looks as a plain ``fusefat -o rw+ IMG MNT`` leaves it.
    ``writable=False`` mounts it read-only (``-o ro``): a write-protected stick.
    """
    require_tools()
    image = workdir / f"{name}.img"
    mount = workdir / f"{name}.mnt"
    make_image(image, size_mib)
    mount.mkdir()
    options = ("rw+" if writable else "ro") + (f",fsname={image}" if fsname else "")
    done = _run(["fusefat", "-o", options, str(image), str(mount)])
    if done.returncode != 0:
        raise Fat32Unavailable(f"fusefat failed: {done.stderr.strip() or done.stdout.strip()}")
    try:
        deadline = time.monotonic() + MOUNT_TIMEOUT_SECONDS
        while not _is_mounted(mount):
            if time.monotonic() > deadline:
                raise Fat32Unavailable(f"fusefat did not mount {image} on {mount}")
            time.sleep(0.05)
        yield Fat32(image, mount, size_mib)
    finally:
        daemons = _daemon_pids(image)
        unmount(mount)
        _wait_for_exit(daemons)


def fsck(image: Path) -> tuple[bool, str]:
    """``fsck.vfat -n`` on an unmounted image (read-only): (clean, output)."""
    done = _run(["fsck.vfat", "-n", str(image)])
    return done.returncode == 0, done.stdout + done.stderr
