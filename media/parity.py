"""PAR2 repair data beside an export, and repairing damaged media with it (media-format.md, 12).

An export may carry Reed-Solomon parity in ``<mount>/airseal-repair/``, written by Debian's
``par2`` (par2cmdline), in two PAR2 sets. PAR2 is a public, well-kept format, so a courier with
no Airseal installed can run ``par2 repair`` too.

- ``payloads.par2``: the payloads (whole, or their parts). par2 computes it on the second core
  *while* the export writes and reads back, from the appliance's own copy of each payload
  (through a private folder of links that gives each the name it has on the media; a split
  payload's parts are copied out of it there first, as PAR2 protects files, not byte ranges).
  That is the same bytes as on the media: the export only commits once the read-back of every
  payload byte from the media matched the digest the action signed, and this set is only kept
  for a committed export.
- ``airseal.par2``: everything else the statement lists (bundles, vendor files, site files, a
  part there was no scratch space to copy) and the statement itself, from the files on the
  media, after the commit.

par2 writes both sets on the appliance; :func:`_install_set` puts them on the media in order
and reads them back, as the export does with its own files.

Why the repair data may be unsigned, and sits outside ``airseal/``:

- Readers ignore everything outside ``airseal/`` (section 1), so the reader rules are unchanged.
- Repair never weakens a check. Whatever par2 writes is judged afterwards exactly as a fresh
  export is: the courier's check hashes every file against the statement, and the agent verifies
  the statement's signature and every byte against the signed digests. Forged parity can at worst
  produce bytes that are then refused.
- What par2 is allowed to *touch* is checked first: PAR2 files name the files they protect, and a
  hostile set could name ``../../etc/passwd`` or a path through a symbolic link. Before par2 runs,
  every packet that names a file (wherever in any file of the folder it sits, since par2 scans for
  packets at any offset) must name a plain relative path under ``airseal/``, outside
  ``receipts/``, reached through no link; the folder itself holds only plain files.

The packet scan is written here, not taken from a library: it only has to find the file names
a set carries (the PAR2 2.0 packet header and the FileDesc packet), and no PAR2 library for
Python is packaged and maintained; everything else is par2cmdline's.

What par2 spends (measured with par2cmdline 0.8.1 on 1 GiB, one thread) is a hashing pass,
about 6.5 s of CPU per GiB whatever the block sizes, plus about 0.35 s per GiB per *recovery*
block; the number of source blocks barely matters (100 or 1000: the same time). So the plan
chooses the recovery block count (:func:`plan_parity`): at least :data:`MIN_RECOVERY_BLOCKS`,
more while data x blocks stays within :data:`RECOVERY_BUDGET`, blocks no smaller than
:data:`SMALLEST_BLOCK` once there are :data:`TARGET_SOURCE_BLOCKS` of them. Damage in up to that
many separate places, or lost files of up to that many blocks, is repairable; the percentage
sets the bytes (the block size), not the number of places (docs/media-format.md, 12, has the
figures for 1 MiB, 100 MiB and 1 GiB). On a USB stick the background set is hidden behind the
media's own speed (1 GiB on FAT32 over fusefat: 1.06x, the set read back on the stick 18 s
before the export's end); on a fast local disk par2cmdline 0.8.1's hashing alone takes longer
than the export (about 3x; par2cmdline-turbo's output, which Debian's par2 repairs, costs a
quarter of the CPU: bench/parity_bench.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from airseal.media import layout
from airseal.media.check import CheckReport, check_media
from airseal.media.errors import BadMedia, MediaIOError, MediaWriteError, ReadBackMismatch
from airseal.media.names import collision_key, is_safe_relative_path

PAR2_TOOL = "par2"
MIN_RECOVERY_BLOCKS = 10
"""Recovery blocks a set aims for at least, whatever the data's size and the percentage."""
RECOVERY_BUDGET = 4 << 30
"""Data bytes times recovery blocks allowed beyond :data:`MIN_RECOVERY_BLOCKS`: par2cmdline
0.8.1 spends about 0.35 s of CPU per GiB per recovery block (on top of about 6.5 s per GiB of
hashing), so 4 GiB-blocks is about 1.4 s, whatever the export's size."""
TARGET_SOURCE_BLOCKS = 100
"""At least this many source blocks (when the data is smaller than this many
:data:`SMALLEST_BLOCK`)."""
SMALLEST_BLOCK = 4096
"""No smaller blocks than a sector-sized damage site once there are enough of them."""
MAX_SOURCE_BLOCKS = 32768
"""par2cmdline's limit."""
MAX_REPAIR_ENTRIES = 1000
MAX_PERCENT = 100
PAYLOADS_INDEX = "payloads.par2"
INDEXES = (layout.REPAIR_INDEX, PAYLOADS_INDEX)
"""The sets, in the order repair runs them (``payloads.par2`` is absent without whole payloads)."""

_MAGIC = b"PAR2\x00PKT"
_HEADER = struct.Struct("<8sQ16s16s16s")
_MAIN = b"PAR 2.0\x00Main\x00\x00\x00\x00"
_FILE_DESC = b"PAR 2.0\x00FileDesc"
_RECOVERY = b"PAR 2.0\x00RecvSlic"
_NAMED = (_FILE_DESC, b"PAR 2.0\x00UniFileN")
_KNOWN = (
    _MAIN, _FILE_DESC, _RECOVERY, b"PAR 2.0\x00IFSC\x00\x00\x00\x00", b"PAR 2.0\x00Creator\x00"
)
_TARGET = re.compile(r'^Target: "(.+)" - (found|damaged|missing)\.(?: Found (\d+) of (\d+) )?')
_SHORT = re.compile(r"You need (\d+) more recovery blocks")


class ParityToolMissing(MediaIOError):
    title = "par2 is not installed"
    check = "parity"
    hint = (
        "install Debian's par2 (apt-get install par2), or turn repair data off with "
        "`airseal config set export.parity-percent 0`"
    )


class NoRepairData(MediaIOError):
    title = "No repair data"
    check = "parity"
    hint = "this media carries no airseal-repair/ folder: export it again at the appliance"


class UnsafeRepairData(BadMedia):
    title = "Unsafe repair data"
    check = "parity"
    hint = (
        "the repair data names files outside airseal/ or reaches them through a link; it was "
        "not written by Airseal: delete airseal-repair/ and export again"
    )


def par2_tool() -> str:
    """The par2 program's path, or :class:`ParityToolMissing`."""
    found = shutil.which(PAR2_TOOL)
    if found is None:
        raise ParityToolMissing("par2 (Debian package par2) is not on PATH")
    return found


@dataclass(frozen=True)
class ParityPlan:
    block_size: int
    source_blocks: int
    recovery_blocks: int


def plan_parity(sizes: Sequence[int], percent: int) -> ParityPlan:
    """Source blocks so the set holds about :func:`wanted_recovery_blocks` recovery blocks.

    par2's time is a hashing pass over the data plus the data times the recovery block count;
    how many *source* blocks there are barely matters. So the recovery block count is what is
    chosen: enough separate damage sites for a small export, a constant (so a cost proportional
    to the export itself) for a large one."""
    if not 1 <= percent <= MAX_PERCENT:
        raise ValueError("parity percent must be 1 to 100")
    sizes = [s for s in sizes if s > 0]
    total = sum(sizes)
    source = -(-wanted_recovery_blocks(total) * 100 // percent)
    source = min(source, max(TARGET_SOURCE_BLOCKS, total // SMALLEST_BLOCK))
    block = max(4, -(-total // source))
    while True:
        block = -(-block // 4) * 4  # PAR2 block sizes are multiples of 4
        count = sum(-(-s // block) for s in sizes)
        if count <= MAX_SOURCE_BLOCKS:
            break
        block *= 2
    return ParityPlan(block, count, max(1, -(-count * percent // 100)))


def wanted_recovery_blocks(total: int) -> int:
    """:data:`MIN_RECOVERY_BLOCKS`, or more while ``total`` times them stays within
    :data:`RECOVERY_BUDGET`."""
    return max(MIN_RECOVERY_BLOCKS, RECOVERY_BUDGET // max(total, 1))


def estimate_parity_files(sizes: Sequence[int], percent: int) -> list[tuple[str, int]]:
    """The repair files an export of ``sizes`` will get, as ``(name, size)``, for the capacity
    check (generous: file descriptions repeat in both files)."""
    if not percent:
        return []
    plan = plan_parity([*sizes, 64 * 1024], percent)
    described = 2048 * (len(sizes) + 1)
    return [
        (layout.REPAIR_INDEX, described),
        ("airseal.vol.par2", plan.recovery_blocks * (plan.block_size + 68) + 2 * described),
    ]


@dataclass(frozen=True)
class BackgroundRun:
    """When the background par2 ran (``time.monotonic()`` values) and its CPU time: shows that
    it overlapped the export's write and read-back (bench/parity_bench.py prints them)."""

    started: float
    finished: float
    """par2 done (the set then is copied onto the media and read back)."""
    on_media: float
    cpu_seconds: float
    """par2's user + system time."""


@dataclass(frozen=True)
class ParityResult:
    sets: tuple[ParityPlan, ...]
    bytes: int
    seconds: float
    """Time the export spent on repair data beyond its own work (waiting for par2)."""
    background: BackgroundRun | None = None
    """How ``payloads.par2`` ran beside the export (``None`` without whole payloads)."""


def _par2_create(
    tool: str, base: Path, index: Path, names: Sequence[str], plan: ParityPlan, *extra: str
) -> list[str]:
    return [
        tool, "c", "-q", "-q", f"-s{plan.block_size}", f"-c{plan.recovery_blocks}", "-n1", *extra,
        "-B", str(base), str(index), "--", *names,
    ]


def _failed(code: int, output: str) -> MediaWriteError:
    detail = output.strip().splitlines()
    return MediaWriteError(
        f"par2 could not create the repair data (exit {code}"
        f"{': ' + detail[-1] if detail else ''})",
        subject=layout.REPAIR_DIR,
        hint="export again, or set export.parity-percent 0",
    )


@dataclass(frozen=True)
class PayloadFile:
    """A file of a payload on the media and where its bytes are in the appliance's copy."""

    relative: str
    """Path relative to ``airseal/``: the payload, or one of its parts."""
    source: Path
    offset: int
    size: int


def _copy_slice(source: Path, offset: int, size: int, target: Path) -> None:
    """``size`` bytes of ``source`` from ``offset`` into a new file (a reflink or an in-kernel
    copy where the filesystems allow, else read and written)."""
    with open(source, "rb") as src, open(target, "xb") as dst:
        done = 0
        with contextlib.suppress(OSError):
            while done < size:
                n = os.copy_file_range(
                    src.fileno(), dst.fileno(), min(size - done, 1 << 30), offset + done
                )
                if n == 0:
                    break
                done += n
        src.seek(offset + done)
        dst.seek(done)
        while done < size:
            chunk = src.read(min(size - done, 1 << 20))
            if not chunk:
                raise OSError(f"{source} ended after {offset + done} bytes")
            dst.write(chunk)
            done += len(chunk)


def _install_set(built: Path, folder: Path) -> None:
    """Copy the files par2 wrote locally into ``folder`` on the media: written in order,
    fsynced, dropped from the page cache and read back (as every export byte is). par2 itself
    writes out of order, which a FAT driver may get wrong (fusefat loses all but the last write
    of an index file), and repair data nobody read back would fail only when it is needed."""
    buffer = bytearray(1 << 20)
    for name in sorted(os.listdir(built)):
        target = folder / name
        subject = f"{layout.REPAIR_DIR}/{name}"
        written = hashlib.sha256()
        try:
            with open(built / name, "rb") as src, open(target, "xb") as dst:
                while n := src.readinto(buffer):
                    written.update(buffer[:n])
                    dst.write(buffer[:n])
                dst.flush()
                os.fsync(dst.fileno())
                with contextlib.suppress(AttributeError, OSError):
                    os.posix_fadvise(dst.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            read = hashlib.sha256()
            with open(target, "rb") as back:
                while n := back.readinto(buffer):
                    read.update(buffer[:n])
        except OSError as exc:
            raise MediaWriteError(exc.strerror or str(exc), subject=subject) from None
        if read.digest() != written.digest():
            raise ReadBackMismatch("the media returned other bytes than were written",
                                   subject=subject)


class PayloadParity:
    """par2 computing ``payloads.par2`` in the background while the export is written.

    Everything runs in a thread: the parts of split payloads are first copied out of the
    appliance's copy (par2 protects files, not byte ranges), then par2 runs on one core. A part
    that cannot be copied (no space for the scratch copy), or a file the set does not name in
    the end, is left to ``airseal.par2``: :attr:`covered` says what this set protects."""

    def __init__(
        self, tool: str, files: Sequence[PayloadFile], percent: int, view: Path, out: Path
    ) -> None:
        self.tool = tool
        self.files = tuple(files)
        self.percent = percent
        self.plan = plan_parity([f.size for f in files], percent)
        self.view = view
        self.built = view / "built"
        """Where par2 writes the set, on the appliance (outside the view's ``airseal/``)."""
        self.out = out
        self.started = time.monotonic()
        self.covered: frozenset[str] = frozenset()
        """Paths (relative to ``airseal/``) that ``payloads.par2`` protects, once finished."""
        self.waited = 0.0
        """Seconds the export waited for par2 once its own work was done."""
        self.run: BackgroundRun | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode = 0
        self._output = b""
        self._error: OSError | BadMedia | MediaWriteError | None = None
        self._reaped = False
        self._cancelled = False
        self._lock = threading.Lock()
        """Held to start, reap or signal par2: a reaped (perhaps reused) id is never signalled."""
        self._worker = threading.Thread(target=self._work, name="par2-payloads", daemon=True)
        self._worker.start()

    @classmethod
    def start(
        cls,
        tool: str,
        files: Sequence[PayloadFile],
        percent: int,
        out: Path,
        *,
        scratch: Path | None = None,
    ) -> PayloadParity | None:
        """``out`` is a folder on the media named like a staging folder (a leftover if
        interrupted); ``scratch``, a private folder on the appliance (best on the filesystem
        of its copies) where the parts of split payloads are copied while par2 needs them."""
        import tempfile

        files = [f for f in files if f.size > 0]
        if not files:
            return None
        view = Path(tempfile.mkdtemp(prefix="airseal-parity-", dir=scratch))
        os.mkdir(out)
        return cls(tool, files, percent, view, out)

    def _work(self) -> None:
        try:
            names = self._prepare()
            with self._lock:
                if self._cancelled or not names:
                    return
                self.process = subprocess.Popen(
                    _par2_create(self.tool, self.view, self.built / PAYLOADS_INDEX, names,
                                 self.plan, "-t1", "-T1"),  # one core: the export has the other
                    cwd=self.view, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                )
            assert self.process.stdout is not None
            self._output = self.process.stdout.read()
            self.process.stdout.close()
            with self._lock:
                _, status, usage = os.wait4(self.process.pid, 0)
                self.returncode = self.process.returncode = os.waitstatus_to_exitcode(status)
                self._reaped = True
            if self.returncode == 0:  # what the set names, not what par2 was asked for
                named = _named_files(self.built / PAYLOADS_INDEX)
                self.covered = frozenset(
                    f for f in self.covered if layout.on_mount(f) in named
                )
                par2_done = time.monotonic()
                _install_set(self.built, self.out)
                self.run = BackgroundRun(
                    self.started, par2_done, time.monotonic(), usage.ru_utime + usage.ru_stime
                )
        except (OSError, BadMedia, MediaWriteError) as exc:
            self._error = exc

    def _prepare(self) -> list[str]:
        """The view par2 reads: a link to each whole payload, a copy of each part."""
        os.mkdir(self.built)
        names: list[str] = []
        covered: set[str] = set()
        for file in self.files:
            if self._cancelled:
                break
            name = layout.on_mount(file.relative)
            target = self.view / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if file.offset == 0 and os.stat(file.source).st_size == file.size:
                try:  # some PAR2 creators skip links (par2cmdline-turbo 1.4.0 does, silently)
                    os.link(file.source, target)
                except OSError:
                    os.symlink(os.path.abspath(file.source), target)
            else:
                try:
                    _copy_slice(file.source, file.offset, file.size, target)
                except OSError:
                    with contextlib.suppress(OSError):
                        os.unlink(target)
                    continue
            names.append(name)
            covered.add(file.relative)
        self.covered = frozenset(covered)
        if covered and len(covered) < len(self.files):
            self.plan = plan_parity(
                [f.size for f in self.files if f.relative in covered], self.percent
            )
        return names

    def wait(self) -> None:
        started = time.monotonic()
        try:
            self._worker.join()
            self.waited = time.monotonic() - started
        finally:
            shutil.rmtree(self.view, ignore_errors=True)
        if isinstance(self._error, MediaWriteError):
            raise self._error
        if self._error is not None:
            raise MediaWriteError(
                f"cannot prepare the repair data: {self._error}", subject=layout.REPAIR_DIR,
                hint="export again, or set export.parity-percent 0",
            )
        if self.returncode != 0:
            raise _failed(self.returncode, self._output.decode(errors="replace"))

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            if self.process is not None and not self._reaped:
                os.kill(self.process.pid, signal.SIGTERM)
        self._worker.join()
        shutil.rmtree(self.view, ignore_errors=True)


def remove_parity(mount: Path) -> bool:
    """Remove ``airseal-repair/`` (a stale set would 'repair' files back to an older export)."""
    path = mount / layout.REPAIR_DIR
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    try:
        if stat.S_ISDIR(mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except OSError as exc:
        raise MediaWriteError(
            f"cannot remove the old repair data: {exc.strerror}", subject=layout.REPAIR_DIR
        ) from None
    return True


def create_parity(
    mount: Path,
    files: Sequence[tuple[str, int]],
    percent: int,
    *,
    tool: str | None = None,
    payloads: PayloadParity | None = None,
) -> ParityResult:
    """Write ``airseal.par2`` for ``files`` (paths relative to ``airseal/``, with sizes), read
    from the media, into ``<mount>/airseal-repair/``, beside the finished ``payloads`` set."""
    started = time.monotonic()
    tool = tool or par2_tool()
    mount = Path(os.path.abspath(mount))
    protected = [(layout.on_mount(p), s) for p, s in files if s > 0]
    plan = plan_parity([s for _, s in protected], percent)
    remove_parity(mount)
    folder = mount / layout.REPAIR_DIR
    try:
        os.mkdir(folder)
        if payloads is not None:
            for name in sorted(os.listdir(payloads.out)):
                os.replace(payloads.out / name, folder / name)
            os.rmdir(payloads.out)
    except OSError as exc:
        raise MediaWriteError(exc.strerror or str(exc), subject=layout.REPAIR_DIR) from None
    import tempfile

    with tempfile.TemporaryDirectory(prefix="airseal-parity-") as built:
        argv = _par2_create(
            tool, mount, Path(built) / layout.REPAIR_INDEX, [p for p, _ in protected], plan
        )
        done = subprocess.run(argv, cwd=mount, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise _failed(done.returncode, done.stderr or done.stdout)
        _install_set(Path(built), folder)
    written = sum(entry.stat().st_size for entry in os.scandir(folder))
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    sets = (plan,) if payloads is None or not payloads.covered else (payloads.plan, plan)
    waited = 0.0 if payloads is None else payloads.waited
    background = None if payloads is None else payloads.run
    return ParityResult(sets, written, time.monotonic() - started + waited, background)


# -- repair --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepairSet:
    """What the repair folder holds, as its packets say (checked safe before par2 runs)."""

    names: tuple[str, ...]
    """Paths relative to the mount, each under ``airseal/``."""
    block_sizes: dict[str, int]
    """Each index file present (``airseal.par2``, ``payloads.par2``) with its set's block size."""
    recovery_blocks: int


def _packets(path: Path) -> list[tuple[bytes, bytes, bytes]]:
    """Every ``(type, set id, body)`` whose magic occurs in the file, at any offset (as par2
    scans); recovery packets' bodies are cut to their exponent."""
    found: list[tuple[bytes, bytes, bytes]] = []
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < _HEADER.size:
            return found
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            offset = data.find(_MAGIC)
            while offset != -1:
                if offset + _HEADER.size <= size:
                    _, length, _, set_id, kind = _HEADER.unpack_from(data, offset)
                    body_end = offset + length
                    if kind in _NAMED and (length > 64 * 1024 or body_end > size):
                        raise UnsafeRepairData(
                            "a file-name packet is oversized or truncated",
                            subject=f"{layout.REPAIR_DIR}/{path.name}",
                        )
                    if kind in (_MAIN, *_NAMED):
                        body = bytes(data[offset + _HEADER.size : body_end])
                        found.append((kind, set_id, body))
                    elif kind == _RECOVERY:
                        found.append((kind, set_id, bytes(data[offset + 64 : offset + 68])))
                    elif kind not in _KNOWN:
                        raise UnsafeRepairData(
                            f"an unknown PAR2 packet type {kind!r}",
                            subject=f"{layout.REPAIR_DIR}/{path.name}",
                        )
                offset = data.find(_MAGIC, offset + 1)
    return found


def _named_files(index: Path) -> set[str]:
    """The files a PAR2 file's FileDesc packets name."""
    return {
        body[56:].rstrip(b"\x00").decode("utf-8", errors="replace")
        for kind, _, body in _packets(index) if kind == _FILE_DESC
    }


def _check_name(raw: bytes, subject: str) -> str:
    try:
        name = raw.rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeRepairData("names a file that is not valid UTF-8", subject=subject) from None
    prefix = layout.MEDIA_DIR + "/"
    inner = name[len(prefix):]
    if (
        not name.startswith(prefix)
        or not is_safe_relative_path(inner)
        or collision_key(inner.split("/")[0]) == collision_key(layout.RECEIPTS_DIR)
    ):
        raise UnsafeRepairData(
            f"names {name!r}: not a plain path under airseal/ (outside receipts/)",
            subject=subject,
        )
    return name


def _check_reached_safely(mount: Path, name: str) -> None:
    """No component of ``name`` that exists is a link, and only the last may be a file."""
    current = mount
    parts = name.split("/")
    for i, part in enumerate(parts):
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return
        last = i == len(parts) - 1
        if not (stat.S_ISREG(mode) if last else stat.S_ISDIR(mode)):
            raise UnsafeRepairData(
                f"{'/'.join(parts[: i + 1])} is not a plain {'file' if last else 'folder'}",
                subject=name,
            )


def read_repair_set(mount: Path) -> RepairSet:
    """Read and judge ``<mount>/airseal-repair/`` before par2 is let near the media."""
    folder = mount / layout.REPAIR_DIR
    try:
        mode = os.lstat(folder).st_mode
    except FileNotFoundError:
        raise NoRepairData(
            "there is no airseal-repair/ folder", subject=layout.REPAIR_DIR
        ) from None
    if not stat.S_ISDIR(mode):
        raise UnsafeRepairData("is not a plain folder", subject=layout.REPAIR_DIR)
    entries = sorted(os.scandir(folder), key=lambda e: e.name)
    if len(entries) > MAX_REPAIR_ENTRIES:
        raise UnsafeRepairData("holds too many entries", subject=layout.REPAIR_DIR)
    indexes = [name for name in INDEXES if any(e.name == name for e in entries)]
    if not indexes:
        raise NoRepairData(
            f"there is no {' or '.join(INDEXES)}", subject=layout.REPAIR_DIR
        )
    names: set[str] = set()
    block_sizes: dict[str, int] = {}
    recovery: set[tuple[bytes, bytes]] = set()
    for entry in entries:
        subject = f"{layout.REPAIR_DIR}/{entry.name}"
        if not stat.S_ISREG(os.lstat(entry.path).st_mode):
            raise UnsafeRepairData("is not a plain file", subject=subject)
        for kind, set_id, body in _packets(Path(entry.path)):
            if kind in _NAMED:
                offset = 56 if kind == _FILE_DESC else 16
                names.add(_check_name(body[offset:], subject))
            elif kind == _MAIN and len(body) >= 8 and entry.name in indexes:
                block_sizes.setdefault(entry.name, struct.unpack_from("<Q", body)[0])
            elif kind == _RECOVERY:
                recovery.add((set_id, body))
    if not names or set(block_sizes) != set(indexes):
        raise UnsafeRepairData("is not a PAR2 set Airseal wrote", subject=layout.REPAIR_DIR)
    for name in sorted(names):
        _check_reached_safely(mount, name)
    for part in (layout.MEDIA_DIR, layout.REPAIR_DIR):
        if os.path.islink(mount / part):
            raise UnsafeRepairData("is a link", subject=part)
    return RepairSet(tuple(sorted(names)), block_sizes, len(recovery))


FileState = Literal["found", "damaged", "missing"]
Outcome = Literal["intact", "repaired", "beyond-limit"]


@dataclass(frozen=True)
class RepairedFile:
    path: str
    state: FileState
    """As par2 found it before repairing."""
    blocks_found: int | None = None
    blocks: int | None = None


@dataclass(frozen=True)
class RepairReport:
    """What ``airseal media repair`` did, and the courier's check afterwards."""

    outcome: Outcome
    mount: str
    block_size: int
    """The largest block size of the sets."""
    recovery_blocks: int
    files: tuple[RepairedFile, ...]
    blocks_short: int
    """Recovery blocks missing to repair everything (0 unless beyond the limit)."""
    bytes_short: int
    """``blocks_short`` times each short set's block size: about how much is beyond repair."""
    check: CheckReport

    @property
    def ok(self) -> bool:
        return self.outcome != "beyond-limit" and self.check.ok

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "mount": self.mount,
            "blockSize": self.block_size,
            "recoveryBlocks": self.recovery_blocks,
            "blocksShort": self.blocks_short,
            "bytesShort": self.bytes_short,
            "files": [
                {"path": f.path, "state": f.state, "blocksFound": f.blocks_found,
                 "blocks": f.blocks}
                for f in self.files if f.state != "found"
            ],
            "check": self.check.to_json_dict(),
        }


def _parse_par2_output(text: str) -> tuple[list[RepairedFile], int]:
    files: dict[str, RepairedFile] = {}
    for line in text.splitlines():
        if line.startswith("Verifying repaired files"):
            break
        match = _TARGET.match(line.strip())
        if match and match.group(1) not in files:
            found, blocks = match.group(3), match.group(4)
            files[match.group(1)] = RepairedFile(
                match.group(1), match.group(2),  # type: ignore[arg-type]
                int(found) if found else None, int(blocks) if blocks else None,
            )
    short = _SHORT.search(text)
    return list(files.values()), int(short.group(1)) if short else 0


def _remove_backups(mount: Path, names: Sequence[str], before: set[str]) -> None:
    """par2 renames each damaged file to ``NAME.1`` before writing the repaired one."""
    protected = set(names)
    for name in names:
        folder, _, base = name.rpartition("/")
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(mount / folder):
                relative = f"{folder}/{entry.name}"
                if (
                    re.fullmatch(re.escape(base) + r"\.\d+", entry.name)
                    and relative not in protected
                    and relative not in before
                    and entry.is_file(follow_symlinks=False)
                ):
                    os.unlink(entry.path)


def _existing(mount: Path, names: Sequence[str]) -> set[str]:
    seen: set[str] = set()
    for folder in {n.rpartition("/")[0] for n in names}:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            seen |= {f"{folder}/{e.name}" for e in os.scandir(mount / folder)}
    return seen


def repair_media(
    mount: str | os.PathLike[str], *, now: datetime | None = None, tool: str | None = None
) -> RepairReport:
    """Check the repair data, let par2 repair what it can, then run the courier's check.

    Raises :class:`NoRepairData` or :class:`ParityToolMissing` when nothing can be tried,
    :class:`UnsafeRepairData` (before par2 runs) when the set names anything it must not touch.
    """
    root = Path(os.path.abspath(mount))
    repair_set = read_repair_set(root)
    tool = tool or par2_tool()
    before = _existing(root, repair_set.names)
    files: list[RepairedFile] = []
    beyond = False
    blocks_short = bytes_short = 0
    try:
        for name, block_size in repair_set.block_sizes.items():
            index = root / layout.REPAIR_DIR / name
            done = subprocess.run(
                [tool, "r", "-q", "-B", str(root), "--", str(index)],
                cwd=root, capture_output=True, text=True, check=False,
            )
            found, short = _parse_par2_output(done.stdout)
            files += found
            if done.returncode in (2, 4, 5):
                beyond = True
                blocks_short += max(short, 1)
                bytes_short += max(short, 1) * block_size
            elif done.returncode != 0:
                lines = (done.stderr or done.stdout).strip().splitlines()
                raise MediaIOError(
                    f"par2 failed (exit {done.returncode}{': ' + lines[-1] if lines else ''})",
                    subject=f"{layout.REPAIR_DIR}/{name}", check="parity",
                )
    finally:
        _remove_backups(root, repair_set.names, before)
    outcome: Outcome = (
        "beyond-limit" if beyond
        else "repaired" if any(f.state != "found" for f in files)
        else "intact"
    )
    return RepairReport(
        outcome=outcome, mount=str(mount), block_size=max(repair_set.block_sizes.values()),
        recovery_blocks=repair_set.recovery_blocks, files=tuple(files),
        blocks_short=blocks_short, bytes_short=bytes_short, check=check_media(root, now=now),
    )
