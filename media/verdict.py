"""Checking the files an export statement lists: the verdict shared by the courier and the agent.

:func:`verify_media_files` applies :mod:`airseal.media.rules` to a listing read through a
:class:`airseal.media.reader.MediaSource` and hashes what the rules clear, re-joining split
payloads; it reports findings rather than raising, so the courier sees every problem at once, and
:meth:`MediaVerdict.raise_first` turns them into typed errors for the agent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from airseal.media import layout
from airseal.media.errors import (
    BadMedia,
    MediaDigestMismatch,
    MediaReadError,
    MissingFile,
    OversizedFile,
    SizeMismatch,
    TooManyEntries,
    UnlistedFile,
    UnsafeEntry,
    UnsafeName,
    UnsafePath,
)
from airseal.media.limits import MiB
from airseal.media.reader import MediaSource
from airseal.media.rules import Finding, judge_listing
from airseal.media.statement import ExportContents
from airseal.trustroot.digest import chunk_buffer, read_chunks

CHUNK_SIZE = MiB
ProgressCallback = Callable[[int, int], None]
"""Called with ``(bytes_done, bytes_total)``."""


@dataclass
class MediaVerdict:
    """Findings about the files under ``airseal/`` against an export statement."""

    missing: list[Finding] = field(default_factory=list)
    damaged: list[Finding] = field(default_factory=list)
    extra: list[Finding] = field(default_factory=list)
    unsafe: list[Finding] = field(default_factory=list)
    files_checked: int = 0
    bytes_checked: int = 0
    receipts: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.damaged or self.extra or self.unsafe)

    def record(self, finding: Finding) -> None:
        """File a finding under missing, unsafe or damaged according to its check."""
        if finding.check == "present":
            self.missing.append(finding)
        elif finding.check in ("entry-type", "name", "path"):
            self.unsafe.append(finding)
        else:
            self.damaged.append(finding)

    def raise_first(self) -> None:
        """Raise the first finding as a typed :class:`BadMedia` error (for the agent)."""
        for findings in (self.unsafe, self.damaged, self.missing, self.extra):
            for finding in findings:
                raise _finding_error(finding)


def _finding_error(finding: Finding) -> BadMedia:
    classes: dict[str, type[BadMedia]] = {
        "entry-type": UnsafeEntry,
        "name": UnsafeName,
        "path": UnsafePath,
        "size": SizeMismatch,
        "size-limit": OversizedFile,
        "sha256": MediaDigestMismatch,
        "present": MissingFile,
        "listed": UnlistedFile,
        "entry-count": TooManyEntries,
    }
    error_class = classes.get(finding.check, BadMedia)
    return error_class(finding.reason, subject=finding.path, check=finding.check)


def _hash_into(
    source: MediaSource,
    path: str,
    size: int,
    sinks: list[hashlib._Hash],
    buffer: memoryview,
    progress: Callable[[int], None],
) -> int:
    total = 0
    with source.open(path, max_size=size) as stream:
        for chunk in read_chunks(stream, buffer=buffer):
            for sink in sinks:
                sink.update(chunk)
            n = len(chunk)
            total += n
            progress(n)
    return total


def verify_media_files(
    source: MediaSource,
    contents: ExportContents,
    *,
    on_progress: ProgressCallback | None = None,
) -> MediaVerdict:
    """Check every file under ``airseal/`` against ``contents`` (a read export statement).

    Every listed file must be a plain file with the listed size and sha256; nothing else may be
    there except the statement and valid receipts; split payloads are hashed part by part, in
    order, and the joined digest must equal the action's payload digest. Streamed, 1 MiB at a
    time. Whether ``contents`` is *authentic* is not decided here. One pass: the folders it
    reaches are held while it runs (:meth:`MediaSource.folders_held`).
    """
    with source.folders_held():
        return _verify_media_files(source, contents, on_progress)


def _verify_media_files(
    source: MediaSource, contents: ExportContents, on_progress: ProgressCallback | None
) -> MediaVerdict:
    verdict = MediaVerdict()
    listed = contents.by_path()
    try:
        entries = list(source.walk(layout.MEDIA_DIR))
    except (BadMedia, MediaReadError) as exc:
        verdict.record(Finding(exc.subject or layout.MEDIA_DIR, exc.check, exc.detail))
        return verdict
    listing = judge_listing(entries, {p: f.size for p, f in listed.items()})
    verdict.missing.extend(listing.missing)
    verdict.damaged.extend(listing.damaged)
    verdict.extra.extend(listing.extra)
    verdict.unsafe.extend(listing.unsafe)
    verdict.receipts = listing.receipts

    clear = set(listing.to_hash)
    total = sum(listed[p].size for p in clear)
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if on_progress is not None:
            on_progress(done, total)

    buffer = chunk_buffer(CHUNK_SIZE)
    groups: list[tuple[list[str], str | None, str]] = []
    in_payload: set[str] = set()
    for action in contents.predicate.actions:
        paths = list(action.payload_paths)
        in_payload.update(paths)
        joined = action.payload.sha256 if action.payload.parts else None
        groups.append((paths, joined, action.id))
    for path in listing.to_hash:
        if path not in in_payload:
            groups.append(([path], None, ""))
    for paths, joined_sha, action_id in groups:
        whole = hashlib.sha256()
        all_good = True
        for path in paths:
            if path not in clear:
                all_good = False
                continue
            file_hash = hashlib.sha256()
            where = layout.on_mount(path)
            try:
                # the joined digest is needed only for a split payload: hash once otherwise
                sinks = [file_hash, whole] if joined_sha is not None else [file_hash]
                n = _hash_into(source, where, listed[path].size, sinks, buffer, progress)
            except (BadMedia, MediaReadError) as exc:
                verdict.record(Finding(where, exc.check, exc.detail))
                all_good = False
                continue
            verdict.files_checked += 1
            verdict.bytes_checked += n
            if n != listed[path].size:
                verdict.damaged.append(
                    Finding(
                        where, "size", f"read {n} bytes, the statement lists {listed[path].size}"
                    )
                )
                all_good = False
            elif file_hash.hexdigest() != listed[path].sha256:
                verdict.damaged.append(
                    Finding(
                        where,
                        "sha256",
                        f"sha256 is {file_hash.hexdigest()}, the statement lists "
                        f"{listed[path].sha256}",
                    )
                )
                all_good = False
        if joined_sha is not None and all_good and whole.hexdigest() != joined_sha:
            first = layout.on_mount(paths[0])
            verdict.damaged.append(
                Finding(
                    first,
                    "sha256",
                    f"the {len(paths)} parts of action {action_id}'s payload join to sha256 "
                    f"{whole.hexdigest()}, the action lists {joined_sha}",
                )
            )
    return verdict
