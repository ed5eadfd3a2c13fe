"""Step 1 of an export: plan and check everything, write nothing.

What the operator asked for (:class:`ActionToExport`, :class:`ExtraFile`, :class:`ExportHeader`)
is turned into an :class:`ExportPlan`: every source with the media file(s) it becomes, payloads
above the split threshold cut into ``.partNNN`` files for FAT32. Names and paths are checked for
FAT32/exFAT, each action bundle is matched with its payload, the target is checked, and the space
needed (clusters, folders, a margin) is compared with the free space
(:mod:`airseal.media.capacity`). Any refusal here leaves the media untouched; the writer
(:mod:`airseal.media.writer`) carries the plan out.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from airseal.media import layout
from airseal.media.capacity import Capacity, space_needed
from airseal.media.errors import (
    BadMedia,
    InsufficientSpace,
    InvalidExportStatement,
    MediaWriteError,
    PayloadMismatch,
    UnknownCapacity,
    UnsafeName,
)
from airseal.media.limits import MAX_ACTION_BUNDLE_BYTES, MAX_SUBJECTS, MiB
from airseal.media.names import check_name, check_unique, collision_key, safe_relative_path
from airseal.media.statement import (
    ExportedAction,
    ExportFile,
    ExportPredicate,
    read_action_statement,
)
from airseal.media.vendor import MAX_VENDOR_BYTES
from airseal.trustroot.bundle import parse_bundle
from airseal.trustroot.dsse import Statement
from airseal.trustroot.errors import VerificationError

CapacityProbe = Callable[[Path], Capacity]


@dataclass(frozen=True)
class ActionToExport:
    """One signed action to put on the media: its bundle bytes and its payload file."""

    id: str
    version: int
    name: str
    bundle: bytes
    payload: Path
    payload_name: str
    vendor: bytes | None = None
    """The vendor evidence (:mod:`airseal.media.vendor`) to carry with the action, if any."""


@dataclass(frozen=True)
class ExtraFile:
    """Another file to carry under ``airseal/`` (e.g. ``tuf/metadata/root.json``); listed too."""

    path: str
    source: Path


@dataclass(frozen=True)
class ExportHeader:
    export_id: str
    sequence: int
    created: datetime
    expires: datetime
    appliance_id: str
    distributor: str
    """Fingerprint (hex SHA-256 of the DER SPKI) of the key that signs the export."""


@dataclass
class PlannedSource:
    """One source to copy: to one file, or to several parts of a split payload."""

    targets: list[tuple[str, int]]
    """``(path relative to airseal/, size)`` of each file it becomes."""
    source: Path | bytes
    size: int
    action: ActionToExport | None = None
    signed_sha256: str | None = None
    """The digest the action signed for this payload: the read-back is checked against it, so
    the writer need not hash the payload on the way out (one SHA-256 pass instead of two)."""


@dataclass(frozen=True)
class ExportPlan:
    """Every source of an export with the media files it becomes, in writing order."""

    items: tuple[PlannedSource, ...]
    total_bytes: int
    """Bytes of all sources (the statement excluded)."""


def export_predicate(
    header: ExportHeader, actions: Sequence[ExportedAction], files: Sequence[ExportFile]
) -> ExportPredicate:
    """The signed predicate of an export with this header (validated on construction)."""
    return ExportPredicate(
        export_id=header.export_id,
        sequence=header.sequence,
        created=header.created,
        expires=header.expires,
        appliance_id=header.appliance_id,
        distributor=header.distributor,
        actions=tuple(actions),
        files=tuple(files),
    )


def check_header(header: ExportHeader) -> None:
    """Refuse a header the export statement could not carry (:class:`ValueError`)."""
    try:
        export_predicate(header, (), (ExportFile(path="probe", size=0),))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"export header: {where}: {first['msg']}") from None


def plan_export(
    actions: Sequence[ActionToExport],
    extra_files: Sequence[ExtraFile],
    *,
    split_threshold: int | None,
) -> ExportPlan:
    """Check names, bundles and payloads, and place every source on the media.

    Payloads above ``split_threshold`` bytes are split into parts; ``None`` writes every payload
    whole (a filesystem without FAT32's 4 GiB limit: :mod:`airseal.media.filesystem`).
    """
    if split_threshold is not None and split_threshold < 1:
        raise ValueError("split_threshold must be at least 1 byte")
    check_unique((a.id for a in actions), subject="actions")
    items: list[PlannedSource] = []
    for action in actions:
        items.extend(_plan_action(action, split_threshold))
    reserved = {collision_key(layout.ACTIONS_DIR), collision_key(layout.RECEIPTS_DIR)}
    for extra in extra_files:
        safe_relative_path(extra.path)
        top = extra.path.split("/", 1)[0]
        if collision_key(top) in reserved or collision_key(extra.path) == collision_key(
            layout.STATEMENT_NAME
        ):
            raise UnsafeName(
                "extra files cannot go under actions/ or receipts/ or replace the statement",
                subject=extra.path,
            )
        size = _source_size(extra.source, extra.path)
        items.append(PlannedSource([(extra.path, size)], extra.source, size))
    paths = [path for item in items for path, _ in item.targets]
    check_unique(paths, subject="export")
    if len(paths) > MAX_SUBJECTS:
        raise ValueError(f"an export holds at most {MAX_SUBJECTS} files, not {len(paths)}")
    if not items:
        raise ValueError("nothing to export: give at least one action or extra file")
    return ExportPlan(tuple(items), sum(item.size for item in items))


def _source_size(path: Path, label: str) -> int:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise MediaWriteError(f"cannot read {path}: {exc.strerror}", subject=label) from None
    if not stat.S_ISREG(st.st_mode):
        raise MediaWriteError(f"{path} is not a regular file", subject=label)
    return st.st_size


def _plan_action(action: ActionToExport, split_threshold: int | None) -> list[PlannedSource]:
    """The action's bundle and its payload (split when above the threshold), checked."""
    bundle_path = layout.action_bundle_path(action.id)
    if not layout.is_identifier(action.id):
        raise UnsafeName(f"{action.id!r} is not a valid action id", subject=bundle_path)
    check_name(action.payload_name, subject=layout.payload_path(action.id, "<payload>"))
    if len(action.bundle) > MAX_ACTION_BUNDLE_BYTES:
        raise InvalidExportStatement(
            f"action bundle is {len(action.bundle)} bytes, over the "
            f"{MAX_ACTION_BUNDLE_BYTES} byte limit",
            subject=bundle_path,
        )
    size = _source_size(action.payload, layout.payload_path(action.id, action.payload_name))
    try:
        bundle = parse_bundle(action.bundle, subject=bundle_path)
        if bundle.dsse_envelope is None:
            raise InvalidExportStatement("not a DSSE bundle", subject=bundle_path)
        statement = Statement.from_payload(bundle.dsse_envelope.payload, subject=bundle_path)
        signed = read_action_statement(statement, subject=bundle_path)
    except VerificationError as exc:
        if isinstance(exc, BadMedia):
            raise
        raise InvalidExportStatement(exc.detail, subject=bundle_path) from None
    mismatches = [
        label
        for label, ours, theirs in (
            ("id", action.id, signed.id),
            ("version", action.version, signed.version),
            ("payload name", action.payload_name, signed.payload.name),
            ("payload size", size, signed.payload.size),
        )
        if ours != theirs
    ]
    if mismatches:
        raise PayloadMismatch(
            f"the signed action differs in {', '.join(mismatches)}", subject=bundle_path
        )
    if split_threshold is not None and size > split_threshold:
        count = -(-size // split_threshold)
        if count > layout.MAX_PARTS:
            raise ValueError(
                f"{action.payload_name}: {count} parts exceed the {layout.MAX_PARTS} limit"
            )
        paths = layout.part_paths(action.id, action.payload_name, count)
        sizes = [split_threshold] * (count - 1) + [size - split_threshold * (count - 1)]
        targets = list(zip(paths, sizes, strict=True))
    else:
        targets = [(layout.payload_path(action.id, action.payload_name), size)]
    planned = [
        PlannedSource([(bundle_path, len(action.bundle))], action.bundle, len(action.bundle)),
        PlannedSource(targets, action.payload, size, action, statement.subject[0].sha256),
    ]
    if action.vendor is not None:
        vendor_path = layout.vendor_evidence_path(action.id)
        if len(action.vendor) > MAX_VENDOR_BYTES:
            raise InvalidExportStatement(
                f"vendor evidence is {len(action.vendor)} bytes, over {MAX_VENDOR_BYTES}",
                subject=vendor_path,
            )
        planned.append(
            PlannedSource([(vendor_path, len(action.vendor))], action.vendor, len(action.vendor))
        )
    return planned


def check_target(mount: Path) -> tuple[list[Path], int]:
    """The mount must be a folder and ``airseal`` a real folder; returns the leftovers of
    interrupted exports and the bytes removing them frees."""
    live = mount / layout.MEDIA_DIR
    if not mount.is_dir():
        raise MediaWriteError("the media folder does not exist", subject=str(mount))
    try:
        st = os.lstat(live)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise MediaWriteError(
            "airseal/ on the media is not a plain folder (a symlink or a file); remove it",
            subject=layout.MEDIA_DIR,
        )
    leftovers = sorted(mount / name for name in os.listdir(mount) if layout.is_leftover_name(name))
    reclaimable = sum(_tree_size(p) for p in leftovers)
    return leftovers, reclaimable


def check_capacity(
    mount: Path,
    plan: ExportPlan,
    *,
    new_dirs: int,
    reclaimable: int,
    probe: CapacityProbe,
    allow_unknown_capacity: bool,
    also: Sequence[tuple[str, int]] = (),
) -> tuple[Capacity, int]:
    """Refuse an export that does not fit; returns the capacity and the bytes needed.

    ``also`` are files written beside the export (the repair data), as ``(name, size)``.

    ``new_dirs`` is the number of folders the export creates; staging doubles them.
    """
    live = mount / layout.MEDIA_DIR
    capacity = probe(mount)
    files = [(path.rsplit("/", 1)[-1], size) for item in plan.items for path, size in item.targets]
    files.append((layout.STATEMENT_NAME, 4096 + 1024 * len(files)))
    files.extend(also)
    dirs = 2 * new_dirs + _count_dirs(live) + 2
    need = space_needed(files, dirs, capacity.cluster_size)
    if capacity.free_bytes is None:
        if not allow_unknown_capacity:
            raise UnknownCapacity(
                f"cannot tell whether {need} bytes fit ({capacity.method})", subject=str(mount)
            )
        return capacity, need
    free = capacity.free_bytes + reclaimable
    if free < need:
        in_use = _tree_size(live) if live.is_dir() else 0
        raise InsufficientSpace(
            f"the export needs {need} bytes ({_mib(need)}), the media has {free} bytes free "
            f"({_mib(free)}, measured by {capacity.method})"
            + (
                f"; the previous export ({_mib(in_use)}) stays until the new one is complete"
                if in_use
                else ""
            ),
            subject=str(mount),
        )
    return capacity, need


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path, followlinks=False):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISREG(st.st_mode):
                    total += st.st_size
    return total


def _count_dirs(path: Path) -> int:
    return sum(1 for _ in os.walk(path, followlinks=False)) if path.is_dir() else 0


def _mib(n: int) -> str:
    return f"{n / MiB:.1f} MiB"
