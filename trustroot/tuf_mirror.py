"""Verify a copy of a TUF repository (Sigstore's public-good root) the way a TUF client would.

The appliance lives in an air gap, so it cannot ask the Sigstore CDN for a fresh
``trusted_root.json``: an operator copies the whole repository on a connected machine and carries
it in. :func:`verify_mirror` then walks that copy exactly like python-tuf's ``ngclient.Updater``
walks the CDN (root N+1, N+2, ... from a pinned root; timestamp; the snapshot and targets it
names; every delegated targets role; every target file, hash-prefixed under ``targets/``), and
returns what it proved. The trust decisions are python-tuf's own ``TrustedMetadataSet`` (the
core ``Updater`` drives): signatures and thresholds, version links, hashes and lengths, rollback
and expiry. This module only walks the *whole* repository instead of one target path, which
``Updater`` has no call for, and turns python-tuf's exceptions into errors that name the role,
its expiry and what to do.

Guarantees:

* No I/O. Files come from a :data:`MirrorSource` the caller passes (a folder reader in the air
  gap, an HTTP reader on the connected machine), with the maximum length of each read, so the
  source can refuse before reading more (python-tuf's ``UpdaterConfig`` limits).
* Time is an argument. ``TrustedMetadataSet`` reads the clock in its constructor; the walk
  replaces that reference time with ``now`` before any expiry is checked.
* Rollback: the caller may pass the timestamp and snapshot it accepted last time; they are
  loaded first (as ``Updater`` loads its cache), so an older copy is refused.
* Fail closed: a :class:`VerifiedMirror` exists only if every role and every target verified.

``tuf.ngclient._internal.trusted_metadata_set`` is python-tuf's internal module; it is used
because ``Updater`` only fetches through URLs and a cache directory and reads the clock itself,
and because reimplementing TUF's checks by hand is exactly what this project must not do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, TargetFile, Targets
from tuf.ngclient._internal.trusted_metadata_set import TrustedMetadataSet
from tuf.ngclient.config import EnvelopeType, UpdaterConfig

from airseal.trustroot.errors import MirrorRefused

MirrorSource = Callable[[str, int], bytes | None]
"""(path relative to the repository, e.g. ``15.root.json`` or ``targets/<sha256>.x.json``;
maximum length) -> the bytes, or ``None`` when the repository has no such file."""

_CONFIG: Final = UpdaterConfig()
MAX_ROOT_ROTATIONS: Final = _CONFIG.max_root_rotations
MAX_DELEGATIONS: Final = _CONFIG.max_delegations
MAX_TARGET_BYTES: Final = 32 * 1024 * 1024

_FRESH_MIRROR: Final = (
    "fetch a fresh copy on a connected machine (`airseal trustroot fetch --to DIR`) and import "
    "that"
)

__all__ = [
    "MAX_TARGET_BYTES",
    "MirrorRefused",
    "MirrorSource",
    "PreviousImport",
    "VerifiedMirror",
    "metadata_version",
    "target_paths",
    "verify_mirror",
]


@dataclass(frozen=True)
class PreviousImport:
    """The timestamp and snapshot accepted last time: a new copy may not be older."""

    timestamp: bytes
    snapshot: bytes | None = None


@dataclass(frozen=True)
class VerifiedMirror:
    """Everything proven about a repository copy, and the verified bytes."""

    root_version: int
    root_expires: datetime
    timestamp_version: int
    timestamp_expires: datetime
    snapshot_version: int
    snapshot_expires: datetime
    targets_version: int
    targets_expires: datetime
    delegations: dict[str, int]
    """Delegated targets role -> its version."""
    metadata: dict[str, bytes]
    """Every metadata file the walk verified, by its path in the repository."""
    targets: dict[str, bytes]
    """Target name (``trusted_root.json``, ``registry.npmjs.org/keys.json``) -> verified bytes."""
    target_files: dict[str, str] = field(default_factory=dict)
    """Target name -> its path in the repository (``targets/<sha256>.<name>``)."""
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def root(self) -> bytes:
        """The final root's bytes, as the repository serves them."""
        return self.metadata[f"{self.root_version}.root.json"]


def metadata_version(raw: bytes, *, subject: str | None = None) -> int:
    """The version of a root (or any metadata) file, signatures *not* checked."""
    try:
        return Metadata.from_bytes(raw).signed.version
    except (ValueError, TypeError, KeyError, tuf_errors.RepositoryError) as exc:
        raise MirrorRefused(
            f"not TUF metadata ({exc})", subject=subject, check="root",
            hint="give a root.json of the repository (for example its N.root.json)",
        ) from exc


def target_paths(target: TargetFile, consistent: bool) -> list[str]:
    """Where a repository serves a target: hash-prefixed when snapshots are consistent, once
    per hash; the first is the one python-tuf's ``Updater.download_target`` asks for."""
    if not consistent:
        return [f"targets/{target.path}"]
    directory, sep, base = target.path.rpartition("/")
    return [f"targets/{directory}{sep}{digest}.{base}" for digest in target.hashes.values()]


def _safe_relative(path: str, what: str) -> str:
    parts = path.split("/")
    if (
        not path
        or "\\" in path
        or "\x00" in path
        or any(part in ("", ".", "..") or part.startswith(".") for part in parts)
    ):
        raise MirrorRefused(
            f"{what} {path!r} is not a plain relative name", check="layout",
            hint="the repository is malformed or hostile; " + _FRESH_MIRROR,
        )
    return path


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Walk:
    def __init__(
        self, source: MirrorSource, pinned_root: bytes, now: datetime
    ) -> None:
        self.source = source
        self.now = now
        self.metadata: dict[str, bytes] = {}
        self.roles: list[tuple[str, str, Targets]] = []
        """(role, delegator, verified metadata), in the order verified."""
        try:
            self.trusted = TrustedMetadataSet(pinned_root, EnvelopeType.METADATA)
        except (tuf_errors.RepositoryError, ValueError, TypeError, KeyError) as exc:
            raise MirrorRefused(
                f"the pinned root does not verify against itself ({exc})", check="root",
                hint="give the repository's root.json with --root, or reinstall sigstore",
            ) from exc
        # python-tuf reads the clock in the constructor; expiry is checked against `now`.
        self.trusted.reference_time = now

    def read(self, path: str, limit: int, role: str, *, required: bool = True) -> bytes | None:
        data = self.source(_safe_relative(path, "file"), limit)
        if data is None and required:
            raise MirrorRefused(
                f"the copy has no {path} (needed for the {role} role)", subject=path, check=role,
                hint="the copy is incomplete; " + _FRESH_MIRROR,
            )
        if data is not None and len(data) > limit:
            raise MirrorRefused(
                f"{path} is larger than {limit} bytes", subject=path, check=role,
                hint="the copy is damaged or hostile; " + _FRESH_MIRROR,
            )
        return data

    def refuse(
        self, exc: Exception, role: str, path: str, expires: datetime | None = None
    ) -> MirrorRefused:
        if isinstance(exc, tuf_errors.ExpiredMetadataError):
            when = f" at {_when(expires)}" if expires else ""
            return MirrorRefused(
                f"{role} metadata ({path}) expired{when}; checked at {_when(self.now)}",
                subject=path, check=f"{role} expiry",
                hint=f"this copy of the repository is too old: {_FRESH_MIRROR}",
            )
        if isinstance(exc, tuf_errors.BadVersionNumberError):
            return MirrorRefused(
                f"{role} metadata ({path}) has the wrong version: {exc}",
                subject=path, check=f"{role} version",
                hint="the copy mixes files of different repository versions, or is older than "
                "the one already imported (rollback); " + _FRESH_MIRROR,
            )
        if isinstance(exc, tuf_errors.LengthOrHashMismatchError):
            return MirrorRefused(
                f"{path} does not match the length and hashes its {role} entry names: {exc}",
                subject=path, check=f"{role} hash",
                hint="the file was altered or mixed in from another version; " + _FRESH_MIRROR,
            )
        if isinstance(exc, tuf_errors.UnsignedMetadataError):
            return MirrorRefused(
                f"{role} metadata ({path}) is not signed by its threshold of trusted keys: {exc}",
                subject=path, check=f"{role} signature",
                hint="the file was altered, or signed by keys this root does not trust; "
                + _FRESH_MIRROR,
            )
        return MirrorRefused(
            f"{role} metadata ({path}) is not valid: {exc}", subject=path, check=role,
            hint=_FRESH_MIRROR,
        )

    # -- the walk, in the order of the TUF client workflow (spec section 5) -------------------

    def roots(self) -> None:
        start = self.trusted.root.version
        for version in range(start + 1, start + MAX_ROOT_ROTATIONS + 1):
            path = f"{version}.root.json"
            data = self.read(path, _CONFIG.root_max_length, "root", required=False)
            if data is None:
                break
            try:
                self.trusted.update_root(data)
            except _TUF_FAILURES as exc:
                raise self.refuse(exc, "root", path) from exc
            self.metadata[path] = data
        final = self.trusted.root
        if final.is_expired(self.now):
            raise self.refuse(
                tuf_errors.ExpiredMetadataError(), "root", f"{final.version}.root.json",
                final.expires,
            )

    def timestamp(self, previous: bytes | None) -> None:
        if previous is not None:
            # As Updater loads its cached copy: for rollback protection only. A previous one
            # that no longer verifies (rotated keys) is not an error, an older new one is.
            with contextlib.suppress(*_TUF_FAILURES):
                self.trusted.update_timestamp(previous)
        path = "timestamp.json"
        data = self.read(path, _CONFIG.timestamp_max_length, "timestamp")
        assert data is not None
        try:
            self.trusted.update_timestamp(data)
        except tuf_errors.EqualVersionNumberError:
            pass  # the same version as last time: keep it (Updater does the same)
        except _TUF_FAILURES as exc:
            expires = _loaded_expiry(self.trusted, "timestamp")
            raise self.refuse(exc, "timestamp", path, expires) from exc
        if self.trusted.timestamp.is_expired(self.now):
            raise self.refuse(
                tuf_errors.ExpiredMetadataError(), "timestamp", path,
                self.trusted.timestamp.expires,
            )
        self.metadata[path] = data

    def snapshot(self, previous: bytes | None) -> None:
        if previous is not None:
            with contextlib.suppress(*_TUF_FAILURES):
                self.trusted.update_snapshot(previous, trusted=True)
        version = self.trusted.timestamp.snapshot_meta.version
        path = self._versioned(version, "snapshot")
        data = self.read(path, _CONFIG.snapshot_max_length, "snapshot")
        assert data is not None
        try:
            self.trusted.update_snapshot(data)
        except _TUF_FAILURES as exc:
            raise self.refuse(exc, "snapshot", path, _expiry_of(data)) from exc
        self.metadata[path] = data

    def targets(self) -> dict[str, int]:
        """Top-level targets, then every delegated role, breadth first."""
        delegations: dict[str, int] = {}
        queue: list[tuple[str, str]] = [(Targets.type, Root.type)]
        while queue:
            role, delegator = queue.pop(0)
            if self.trusted.get(role) is not None:
                continue  # delegated twice: verified once
            meta = self.trusted.snapshot.meta.get(f"{role}.json")
            if meta is None:
                raise MirrorRefused(
                    f"the snapshot lists no {role}.json, which {delegator} delegates to",
                    subject=f"{role}.json", check="snapshot",
                    hint="the repository is inconsistent; " + _FRESH_MIRROR,
                )
            path = self._versioned(meta.version, _safe_relative(role, "role"))
            data = self.read(path, _CONFIG.targets_max_length, role)
            assert data is not None
            try:
                signed = self.trusted.update_delegated_targets(data, role, delegator)
            except _TUF_FAILURES as exc:
                raise self.refuse(exc, role, path, _expiry_of(data)) from exc
            self.metadata[path] = data
            if role != Targets.type:
                delegations[role] = signed.version
            self.roles.append((role, delegator, signed))
            if signed.delegations is not None:
                names = (
                    list(signed.delegations.roles)
                    if signed.delegations.roles is not None
                    else list(signed.delegations.succinct_roles.get_roles())
                    if signed.delegations.succinct_roles is not None
                    else []
                )
                queue.extend((name, role) for name in names)
            if len(delegations) > MAX_DELEGATIONS:
                raise MirrorRefused(
                    f"more than {MAX_DELEGATIONS} delegated roles", check="delegations",
                    hint="the repository is hostile or not Sigstore's; " + _FRESH_MIRROR,
                )
        return delegations

    def target_files(self) -> tuple[dict[str, bytes], dict[str, str]]:
        consistent = bool(self.trusted.root.consistent_snapshot)
        found: dict[str, bytes] = {}
        paths: dict[str, str] = {}
        for role_name, _, targets in self.roles:
            for name, target in targets.targets.items():
                if name in found or not self._delegated(role_name, name):
                    continue  # the first role that may sign a path wins, as in Updater
                _safe_relative(name, "target")
                path, *alternates = target_paths(target, consistent)
                if target.length > MAX_TARGET_BYTES:
                    raise MirrorRefused(
                        f"target {name} claims {target.length} bytes", subject=path,
                        check="target", hint=_FRESH_MIRROR,
                    )
                data = self.read(path, target.length, f"{role_name} target {name}")
                assert data is not None
                try:
                    target.verify_length_and_hashes(data)
                except _TUF_FAILURES as exc:
                    raise self.refuse(exc, f"{role_name} target {name}", path) from exc
                found[name] = data
                paths[name] = path
                for other in alternates:  # the same file under its other hashes, when served
                    copy = self.read(other, target.length, role_name, required=False)
                    if copy is not None and copy != data:
                        raise MirrorRefused(
                            f"{other} differs from {path}, the same target {name}",
                            subject=other, check=f"{role_name} hash",
                            hint="the file was altered; " + _FRESH_MIRROR,
                        )
        return found, paths

    def _versioned(self, version: int, role: str) -> str:
        if self.trusted.root.consistent_snapshot:
            return f"{version}.{role}.json"
        return f"{role}.json"

    def _delegated(self, role_name: str, target_name: str) -> bool:
        """Whether the chain of delegations down to ``role_name`` allows ``target_name``."""
        if role_name == Targets.type:
            return True
        for name, _, signed in self.roles:
            if signed.delegations is None:
                continue
            role = (signed.delegations.roles or {}).get(role_name)
            if role is not None and role.is_delegated_path(target_name):
                return self._delegated(name, target_name)
            succinct = signed.delegations.succinct_roles
            if succinct is not None and succinct.get_role_for_target(target_name) == role_name:
                return self._delegated(name, target_name)
        return False


_TUF_FAILURES: Final = (tuf_errors.RepositoryError, ValueError, TypeError, KeyError)


def _loaded_expiry(trusted: TrustedMetadataSet, role: str) -> datetime | None:
    signed = trusted.get(role)
    return signed.expires if signed is not None else None


def _expiry_of(data: bytes) -> datetime | None:
    """Only for the message after python-tuf refused the file: unverified, never trusted."""
    try:
        return Metadata.from_bytes(data).signed.expires
    except (ValueError, TypeError, KeyError, tuf_errors.RepositoryError):
        return None


def verify_mirror(
    source: MirrorSource,
    *,
    pinned_root: bytes,
    now: datetime,
    previous: PreviousImport | None = None,
) -> VerifiedMirror:
    """Walk the whole repository ``source`` serves, from ``pinned_root``, at time ``now``.

    Raises :class:`MirrorRefused` naming the role (and its expiry when it expired) for anything
    that does not verify: a missing file, a bad signature, a hash or length mismatch, a version
    that does not match what the parent role names (a mixed copy), a version older than
    ``previous`` (a rollback), expired metadata.
    """
    walk = _Walk(source, pinned_root, now)
    walk.roots()
    walk.timestamp(previous.timestamp if previous else None)
    walk.snapshot(previous.snapshot if previous else None)
    delegations = walk.targets()
    targets, target_files = walk.target_files()
    trusted = walk.trusted
    metadata = dict(walk.metadata)
    final_root = f"{trusted.root.version}.root.json"
    if final_root not in metadata:
        metadata[final_root] = pinned_root
    return VerifiedMirror(
        root_version=trusted.root.version,
        root_expires=trusted.root.expires,
        timestamp_version=trusted.timestamp.version,
        timestamp_expires=trusted.timestamp.expires,
        snapshot_version=trusted.snapshot.version,
        snapshot_expires=trusted.snapshot.expires,
        targets_version=trusted.targets.version,
        targets_expires=trusted.targets.expires,
        delegations=delegations,
        metadata=metadata,
        targets=targets,
        target_files=target_files,
        checked_at=now,
    )
