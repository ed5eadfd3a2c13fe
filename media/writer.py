"""The export writer: atomic, streamed, split for FAT32, read back before it is signed.

Order of work, and why a crash at any moment is safe:

1. **Plan and check, write nothing** (:mod:`airseal.media.export_plan`). Names and paths are
   checked for FAT32/exFAT, each action bundle is matched with its payload, and the space needed
   (clusters, folders, a margin) is compared with the free space (:mod:`airseal.media.capacity`).
   A refusal leaves the media untouched.
2. **Stage.** Leftovers of interrupted exports are removed, then every file is written under
   ``<mount>/.airseal-staging-<export-id>/`` in the final layout: streamed in 1 MiB chunks,
   SHA-256 computed on the way in, payloads above ``split_threshold`` written as ``.partNNN``
   files (by default FAT32's 4 GiB limit on FAT or an unidentified filesystem, no split on exFAT
   and others: :mod:`airseal.media.filesystem`), each file fsynced and read back from the media
   (:mod:`airseal.media.readback`).
3. **Sign.** Only when every byte has read back correctly is the statement (subjects = every
   file) built and handed to ``sign``; the signed bundle is written to the staging folder,
   fsynced and read back.
4. **Swap, file by file, with the statement as the commit point.** The previous statement is
   moved out first (into ``.airseal-old-<export-id>/``), so from that instant ``airseal/`` no
   longer looks like an export; the previous files are deleted (``receipts/`` stays); the new
   files are moved in; the new statement is moved in *last*; then the staging and old folders
   are removed.

``airseal/export.sigstore.json`` therefore only ever sits next to exactly the files it lists:
the previous export's, untouched, before step 4, and the new export's after its last rename.
Between the two there is no statement and a staging folder exists, which the check reports as
incomplete. Leftover staging or old folders (a crash in step 2-4) also make the check report
"incomplete", and the next successful export removes them.

Folders are never renamed: FUSE's fusefat 0.1a loses a folder's contents when it is renamed
(checked on this project's test machine), and renaming files works on every FAT implementation.
Against power loss, files and folders are fsynced before each step that depends on them; FAT
itself has no journal, so a torn folder update after power loss can still damage the media, and
the check then reports it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import shutil
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from airseal._internal.atomic import fsync_dir
from airseal.media import layout
from airseal.media.capacity import Capacity, probe_capacity
from airseal.media.errors import (
    InsufficientSpace,
    MediaWriteError,
    PayloadMismatch,
    ReadBackMismatch,
)
from airseal.media.export_plan import (
    ActionToExport,
    CapacityProbe,
    ExportHeader,
    ExportPlan,
    ExtraFile,
    PlannedSource,
    check_capacity,
    check_header,
    check_target,
    export_predicate,
    plan_export,
)
from airseal.media.filesystem import identify_filesystem
from airseal.media.limits import MAX_EXPORT_BUNDLE_BYTES, MiB
from airseal.media.names import collision_key
from airseal.media.parity import (
    ParityResult,
    PayloadFile,
    PayloadParity,
    create_parity,
    estimate_parity_files,
    par2_tool,
)
from airseal.media.readback import WINDOW_BYTES, ReadBack
from airseal.media.statement import (
    ExportedAction,
    ExportFile,
    PayloadRef,
    export_statement,
)
from airseal.trustroot.bundle import parse_bundle
from airseal.trustroot.digest import chunk_buffer, read_chunks
from airseal.trustroot.dsse import Statement

__all__ = [
    "CHUNK_SIZE",
    "ActionToExport",
    "CapacityProbe",
    "ExportHeader",
    "ExportResult",
    "ExtraFile",
    "ProgressCallback",
    "SignCallback",
    "StepCallback",
    "WrittenFile",
    "write_export",
]

CHUNK_SIZE = MiB
SignCallback = Callable[[Statement], bytes]
"""Signs the export statement; returns the Sigstore bundle JSON bytes (one signature)."""
ProgressCallback = Callable[[int, int], None]
PhaseCallback = Callable[[int, int, int], None]
"""``(written, read_back, total)`` bytes: the two phases of an export, which overlap (each file
is read back while the next is written), for a progress display that names them."""
"""``(bytes_done, bytes_total)``; the total counts every payload byte twice (write, read-back)."""
StepCallback = Callable[[str], None]
"""Called before each change to the media, with a short description (logging, crash tests)."""

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)


@dataclass(frozen=True)
class WrittenFile:
    path: str
    """Relative to ``airseal/``."""
    size: int
    sha256: str


@dataclass(frozen=True)
class ExportResult:
    export_id: str
    sequence: int
    mount: Path
    files: tuple[WrittenFile, ...]
    bytes_written: int
    duration_seconds: float
    read_back_ok: bool
    statement: Statement
    bundle_sha256: str
    capacity: Capacity
    space_needed: int
    removed_leftovers: tuple[str, ...]
    parity: ParityResult | None = None
    """The PAR2 repair data written beside the export (``airseal-repair/``), if any."""


@dataclass
class _Copied:
    """What :meth:`_ExportWriter.copy_item` wrote; digests are final once the read-back drained."""

    item: PlannedSource
    files: list[tuple[str, int]]
    writer_digest: str | None
    """The whole source's digest as written, when the writer hashed it."""
    readback_whole: hashlib._Hash | None


class _Steps:
    """Every change to the media goes through here, so a hook sees each one before it happens."""

    def __init__(self, hook: StepCallback | None) -> None:
        self._hook = hook
        self.count = 0

    def __call__(self, what: str) -> None:
        self.count += 1
        if self._hook is not None:
            self._hook(what)


def _fsync_dir(path: Path) -> None:
    """fsync a folder where the OS allows it; a real I/O error fails the export."""
    try:
        fsync_dir(path)
    except OSError as exc:
        raise MediaWriteError(f"fsync failed: {exc.strerror}", subject=str(path)) from None


def _write_all(fd: int, data: memoryview, label: str) -> None:
    while data:
        try:
            n = os.write(fd, data)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise InsufficientSpace(
                    "the media filled up while writing", subject=label
                ) from None
            raise MediaWriteError(exc.strerror or str(exc), subject=label) from None
        data = data[n:]


class _ExportWriter:
    def __init__(
        self,
        mount: Path,
        actions: Sequence[ActionToExport],
        header: ExportHeader,
        sign: SignCallback,
        *,
        split_threshold: int | None,
        on_progress: ProgressCallback | None,
        capacity: CapacityProbe,
        allow_unknown_capacity: bool,
        extra_files: Sequence[ExtraFile],
        on_step: StepCallback | None,
        readback_window: int,
        on_phases: PhaseCallback | None = None,
        parity_percent: int = 0,
        parity_scratch: Path | None = None,
    ) -> None:
        self.mount = mount
        self.parity_percent = parity_percent
        self.parity_scratch = parity_scratch
        self.actions = list(actions)
        self.header = header
        self.sign = sign
        self.split_threshold = split_threshold
        self.on_progress = on_progress
        self.on_phases = on_phases
        self.capacity_probe = capacity
        self.allow_unknown_capacity = allow_unknown_capacity
        self.extra_files = list(extra_files)
        self.steps = _Steps(on_step)
        self.readback_window = readback_window
        self.live = mount / layout.MEDIA_DIR
        self.staging = mount / layout.staging_dir_name(header.export_id)
        self.old = mount / layout.old_dir_name(header.export_id)
        self.plan = ExportPlan((), 0)
        self.written_bytes = 0
        self.verified_bytes = 0
        self.readback: ReadBack | None = None

    # -- 2. stage ------------------------------------------------------------------------------

    def remove_tree(self, path: Path) -> None:
        """Remove a folder and everything in it, following no links (or a lone file/link)."""
        self.steps(f"remove {path.name}")
        try:
            if stat.S_ISDIR(os.lstat(path).st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise MediaWriteError(
                f"cannot remove {path.name}: {exc.strerror}", subject=str(path)
            ) from None

    def mkdir(self, path: Path) -> None:
        self.steps(f"mkdir {path.relative_to(self.mount)}")
        try:
            os.mkdir(path)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                raise MediaWriteError("exists and is not a folder", subject=str(path)) from None
        except OSError as exc:
            raise MediaWriteError(exc.strerror or str(exc), subject=str(path)) from None

    def makedirs(self, base: Path, relative_dir: str) -> None:
        current = base
        for part in relative_dir.split("/") if relative_dir else []:
            current = current / part
            if not current.is_dir() or current.is_symlink():
                self.mkdir(current)

    def progress(self) -> None:
        if self.on_progress is None and self.on_phases is None:
            return
        verified = self.readback.verified_bytes if self.readback else self.verified_bytes
        if self.on_progress is not None:
            self.on_progress(self.written_bytes + verified, 2 * self.plan.total_bytes)
        if self.on_phases is not None:
            self.on_phases(self.written_bytes, verified, self.plan.total_bytes)

    def copy_item(
        self, item: PlannedSource, readback: ReadBack, *, counted: bool = True
    ) -> _Copied:
        """Copy one source to its file(s) on the media, handing each to the read-back.

        A payload whose signed digest is known is not hashed here: the read-back hashes what
        the media returns, and :meth:`stage` compares that with the signed digest. Anything
        else (bundles, extra files, the statement) is hashed on the way out and the read-back
        must agree with it."""
        stream: BinaryIO
        if isinstance(item.source, bytes):
            stream = io.BytesIO(item.source)
        else:
            try:
                stream = open(item.source, "rb", buffering=0)  # noqa: SIM115 (closed below)
            except OSError as exc:
                raise MediaWriteError(
                    f"cannot read {item.source}: {exc.strerror}", subject=item.targets[0][0]
                ) from None
        hash_here = item.signed_sha256 is None
        whole = hashlib.sha256()
        readback_whole = None if hash_here else hashlib.sha256()
        buffer = chunk_buffer(CHUNK_SIZE)
        files: list[tuple[str, int]] = []
        with stream:
            for relative, size in item.targets:
                label = layout.on_mount(relative)
                path = self.staging / relative
                self.makedirs(self.staging, relative.rpartition("/")[0])
                self.steps(f"write {relative}")
                try:
                    fd = os.open(
                        path,
                        os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY,
                        0o644,
                    )
                except OSError as exc:
                    raise MediaWriteError(exc.strerror or str(exc), subject=label) from None
                tracked = readback.track(path, fd, label, whole=readback_whole)
                file_hash = hashlib.sha256() if hash_here else None
                done = 0
                synced = 0
                for chunk in read_chunks(stream, buffer=buffer, limit=size):
                    n = len(chunk)
                    if file_hash is not None:
                        file_hash.update(chunk)
                        whole.update(chunk)
                    _write_all(fd, chunk, label)
                    done += n
                    if done - synced >= self.readback_window:
                        readback.written(tracked, done)
                        synced = done
                    if counted:
                        self.written_bytes += n
                        self.progress()
                if done < size:
                    raise MediaWriteError(
                        f"the source ended after {done} of {size} bytes (it changed?)",
                        subject=label,
                    )
                readback.finish(tracked, size, file_hash.hexdigest() if file_hash else None)
                files.append((relative, size))
            if stream.read(1):
                raise MediaWriteError(
                    "the source grew while it was being exported", subject=item.targets[0][0]
                )
        return _Copied(item, files, whole.hexdigest() if hash_here else None, readback_whole)

    # -- 3. sign -------------------------------------------------------------------------------

    def build_statement(
        self, written: list[WrittenFile], payload_digests: dict[str, str]
    ) -> Statement:
        exported = []
        for action in self.actions:
            item = next(i for i in self.plan.items if i.action is action)
            parts = [p for p, _ in item.targets] if len(item.targets) > 1 else []
            exported.append(
                ExportedAction(
                    id=action.id,
                    version=action.version,
                    name=action.name,
                    bundle=layout.action_bundle_path(action.id),
                    vendor=(
                        layout.vendor_evidence_path(action.id)
                        if action.vendor is not None
                        else None
                    ),
                    payload=PayloadRef(
                        name=action.payload_name,
                        sha256=payload_digests[action.id],
                        size=item.size,
                        parts=tuple(parts),
                    ),
                )
            )
        predicate = export_predicate(
            self.header, exported, [ExportFile(path=f.path, size=f.size) for f in written]
        )
        return export_statement(predicate, {f.path: f.sha256 for f in written})

    def signed_bundle(self, statement: Statement) -> bytes:
        data = self.sign(statement)
        subject = layout.on_mount(layout.STATEMENT_NAME)
        if len(data) > MAX_EXPORT_BUNDLE_BYTES:
            raise MediaWriteError(
                f"the signed statement is {len(data)} bytes, over {MAX_EXPORT_BUNDLE_BYTES}",
                subject=subject,
            )
        bundle = parse_bundle(data, subject=subject)
        if bundle.dsse_envelope is None or bundle.dsse_envelope.payload != statement.to_payload():
            raise MediaWriteError(
                "the signer returned a bundle that does not carry this export's statement",
                subject=subject,
            )
        return data

    # -- 4. swap -------------------------------------------------------------------------------

    def move(self, source: Path, target: Path) -> None:
        self.steps(f"move {source.relative_to(self.mount)} -> {target.relative_to(self.mount)}")
        try:
            os.replace(source, target)
        except OSError as exc:
            raise MediaWriteError(
                f"cannot move {source.name}: {exc.strerror}", subject=str(source)
            ) from None

    def retire_previous(self) -> None:
        """Move the previous statement out first, then delete its files (receipts stay)."""
        self.mkdir(self.old)
        statement = self.live / layout.STATEMENT_NAME
        if os.path.lexists(statement):
            self.move(statement, self.old / layout.STATEMENT_NAME)
            _fsync_dir(self.live)
            _fsync_dir(self.old)
        receipts = collision_key(layout.RECEIPTS_DIR)
        for name in sorted(os.listdir(self.live)):
            if collision_key(name) == receipts:
                continue
            path = self.live / name
            if stat.S_ISDIR(os.lstat(path).st_mode):
                self.remove_tree(path)
            else:
                self.steps(f"delete {layout.MEDIA_DIR}/{name}")
                os.unlink(path)
        _fsync_dir(self.live)

    def swap(self, written: list[WrittenFile]) -> None:
        # Repair data belongs to the export it was made from: left beside a newer one, par2
        # would "repair" files back to the old export's bytes.
        repair = self.mount / layout.REPAIR_DIR
        if os.path.lexists(repair):
            self.remove_tree(repair)
        if os.path.lexists(self.live):
            self.retire_previous()
        else:
            self.mkdir(self.live)
        touched: set[Path] = {self.live}
        for f in written:
            parent = f.path.rpartition("/")[0]
            self.makedirs(self.live, parent)
            self.move(self.staging / f.path, self.live / f.path)
            touched.add((self.live / f.path).parent)
        for directory in sorted(touched, key=lambda p: -len(p.parts)):
            _fsync_dir(directory)
        # The commit point: from here on airseal/ is the new, complete export.
        self.move(self.staging / layout.STATEMENT_NAME, self.live / layout.STATEMENT_NAME)
        _fsync_dir(self.live)
        self.remove_tree(self.staging)
        self.remove_tree(self.old)
        _fsync_dir(self.mount)

    # -- the whole run -------------------------------------------------------------------------

    def run(self) -> ExportResult:
        started = time.monotonic()
        check_header(self.header)
        tool = par2_tool() if self.parity_percent else None
        self.plan = plan_export(
            self.actions, self.extra_files, split_threshold=self.split_threshold
        )
        sizes = [size for item in self.plan.items for _, size in item.targets]
        leftovers, reclaimable = check_target(self.mount)
        capacity, need = check_capacity(
            self.mount,
            self.plan,
            new_dirs=3 + 2 * len(self.actions) + len(self.extra_files),
            reclaimable=reclaimable,
            probe=self.capacity_probe,
            allow_unknown_capacity=self.allow_unknown_capacity,
            also=estimate_parity_files(sizes, self.parity_percent),
        )

        for leftover in leftovers:
            self.remove_tree(leftover)
        if leftovers:
            _fsync_dir(self.mount)
        self.mkdir(self.staging)
        payloads: PayloadParity | None = None
        try:
            if tool is not None:
                # par2 runs on the second core while the payloads are written and read back
                self.steps(f"write {self.staging.name}-repair")
                payloads = PayloadParity.start(
                    tool, self.payload_files(), self.parity_percent,
                    self.mount / f"{self.staging.name}-repair", scratch=self.parity_scratch,
                )
            written, statement, bundle = self.stage()
            if payloads is not None:
                payloads.wait()
        except BaseException:
            if payloads is not None:
                payloads.cancel()
            with contextlib.suppress(MediaWriteError, OSError):
                self.remove_tree(self.staging)
            if payloads is not None:
                with contextlib.suppress(MediaWriteError, OSError):
                    self.remove_tree(payloads.out)
            raise
        try:
            self.swap(written)
        except (MediaWriteError, OSError) as exc:
            detail = exc.detail if isinstance(exc, MediaWriteError) else str(exc)
            raise MediaWriteError(
                f"interrupted while replacing the previous export: {detail}",
                subject=str(self.mount),
                hint="the media now checks as incomplete; run the export again",
            ) from exc
        parity = None
        if tool is not None:
            self.steps(f"write {layout.REPAIR_DIR}")
            in_payloads = frozenset() if payloads is None else payloads.covered
            protected = [(f.path, f.size) for f in written if f.path not in in_payloads]
            parity = create_parity(
                self.mount,
                [*protected, (layout.STATEMENT_NAME, len(bundle))],
                self.parity_percent,
                tool=tool,
                payloads=payloads,
            )
        return ExportResult(
            export_id=self.header.export_id,
            sequence=self.header.sequence,
            mount=self.mount,
            files=tuple(written),
            bytes_written=self.written_bytes + len(bundle),
            duration_seconds=time.monotonic() - started,
            read_back_ok=True,
            statement=statement,
            bundle_sha256=hashlib.sha256(bundle).hexdigest(),
            capacity=capacity,
            space_needed=need,
            removed_leftovers=tuple(p.name for p in leftovers),
            parity=parity,
        )

    def payload_files(self) -> list[PayloadFile]:
        """Every file of every payload (whole, or its parts) and where its bytes are in the
        appliance's copy: what ``payloads.par2`` protects."""
        files = []
        for item in self.plan.items:
            if item.action is None or not isinstance(item.source, Path):
                continue
            offset = 0
            for relative, size in item.targets:
                files.append(PayloadFile(relative, item.source, offset, size))
                offset += size
        return files

    def stage(self) -> tuple[list[WrittenFile], Statement, bytes]:
        copied: list[_Copied] = []
        with ReadBack(window=self.readback_window) as readback:
            self.readback = readback
            for item in self.plan.items:
                copied.append(self.copy_item(item, readback))
            results = readback.drain(self.progress)
            self.verified_bytes = readback.verified_bytes
        self.readback = None
        self.progress()
        read_back = {r.label: r for r in results}
        written: list[WrittenFile] = []
        payload_digests: dict[str, str] = {}
        for copy in copied:
            for relative, size in copy.files:
                result = read_back.get(layout.on_mount(relative))
                if result is None or result.size != size:
                    raise ReadBackMismatch("the file was not read back", subject=relative)
                written.append(WrittenFile(relative, size, result.sha256))
            if copy.item.action is not None:
                whole = copy.readback_whole.hexdigest() if copy.readback_whole else None
                payload_digests[copy.item.action.id] = whole or copy.writer_digest or ""
        if len(read_back) != len(written):
            raise ReadBackMismatch("not every file was read back", subject=str(self.staging))
        self._check_payloads_signed(payload_digests)

        statement = self.build_statement(written, payload_digests)
        bundle = self.signed_bundle(statement)
        with ReadBack(window=self.readback_window) as readback:
            self.copy_item(
                PlannedSource([(layout.STATEMENT_NAME, len(bundle))], bundle, len(bundle)),
                readback,
                counted=False,
            )
            readback.drain()
        _fsync_dir(self.staging)
        return written, statement, bundle

    def _check_payloads_signed(self, payload_digests: dict[str, str]) -> None:
        for action in self.actions:
            bundle = parse_bundle(action.bundle)
            assert bundle.dsse_envelope is not None  # checked in plan()
            signed = Statement.from_payload(bundle.dsse_envelope.payload).subject[0].sha256
            if signed != payload_digests[action.id]:
                raise PayloadMismatch(
                    f"payload {action.payload} has sha256 {payload_digests[action.id]}, "
                    f"the action signed {signed}",
                    subject=layout.payload_path(action.id, action.payload_name),
                )


def write_export(
    mount: str | os.PathLike[str],
    actions: Sequence[ActionToExport],
    header: ExportHeader,
    sign: SignCallback,
    *,
    split_threshold: int | None = None,
    on_progress: ProgressCallback | None = None,
    capacity: CapacityProbe = probe_capacity,
    allow_unknown_capacity: bool = False,
    extra_files: Sequence[ExtraFile] = (),
    on_step: StepCallback | None = None,
    readback_window: int = WINDOW_BYTES,
    on_phases: PhaseCallback | None = None,
    parity_percent: int = 0,
    parity_scratch: str | os.PathLike[str] | None = None,
) -> ExportResult:
    """Write an export to ``<mount>/airseal/`` atomically (see the module docstring).

    Raises :class:`airseal.media.errors.BadMedia` subclasses for unsafe names or a payload that is
    not the one its action signed, :class:`InsufficientSpace` / :class:`UnknownCapacity` before
    anything is written, :class:`ReadBackMismatch` when the media returns other bytes than were
    written, and :class:`MediaWriteError` for other failures. Until the final rename of the
    statement, the previous export stays in place or the media checks as incomplete.

    ``split_threshold=None`` (the default) splits as the filesystem holding ``mount`` requires.
    ``parity_percent`` above 0 writes PAR2 repair data of that size beside the committed export
    (:mod:`airseal.media.parity`; needs Debian's ``par2``, checked before anything is written);
    ``parity_scratch`` is a private folder for copies of split payloads' parts meanwhile (best
    on the filesystem of the payloads: the default is the system's temporary folder).
    """
    if split_threshold is None:
        split_threshold = identify_filesystem(mount).split_threshold
    writer = _ExportWriter(
        Path(mount),
        actions,
        header,
        sign,
        split_threshold=split_threshold,
        on_progress=on_progress,
        capacity=capacity,
        allow_unknown_capacity=allow_unknown_capacity,
        extra_files=extra_files,
        on_step=on_step,
        readback_window=readback_window,
        on_phases=on_phases,
        parity_percent=parity_percent,
        parity_scratch=None if parity_scratch is None else Path(parity_scratch),
    )
    return writer.run()
