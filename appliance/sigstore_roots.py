"""The Sigstore trust root the appliance uses for keyless verification: mirrored, imported, chosen.

Three use cases around :func:`airseal.trustroot.tuf_mirror.verify_mirror` (the TUF walk, pure):

* :func:`fetch_mirror` (connected machine): download the whole TUF repository over HTTPS with
  python-tuf's ``Urllib3Fetcher``, verify it, and lay it out in a folder as the CDN serves it
  (``N.root.json`` for every root from 1, ``timestamp.json``, ``N.snapshot.json``,
  ``N.targets.json``, ``N.<delegated role>.json``, ``targets/<sha256>.<name>``). The folder
  appears whole or not at all (built beside, renamed into place).
* :func:`import_mirror` (air gap): verify such a folder from a pinned root (the newest root
  already imported, else the one packaged in sigstore-python, or the operator's ``--root``), at
  the real time, against the timestamp and snapshot imported last (rollback), and keep the
  verified ``trusted_root.json``, the signing configuration and the upstream metadata in the
  home, with a database row and an audit entry.
* :func:`trusted_root_in_use`: what keyless verification uses: ``--trusted-root``, else the
  newest import (its bytes checked against the hash recorded at import), else the root packaged
  with sigstore-python, and a line saying which.

Reference time: verification runs at the real time. ``AIRSEAL_TEST_TRUSTROOT_TIME`` (an ISO 8601
time) replaces it **for tests only** (the public-good copy under test expired long ago); every
result says when that happened. Never set it on an appliance.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as package_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import sqlite_utils

from airseal._internal.atomic import fsync_dir, read_capped, write_atomic
from airseal.appliance import audit
from airseal.appliance.errors import ApplianceError, UsageError
from airseal.appliance.home import CONFIG_NAME, Home
from airseal.trustroot.errors import MirrorRefused, VerificationError

if TYPE_CHECKING:  # python-tuf loads with the walk: `status` and keyless checks do without it
    from airseal.trustroot.tuf_mirror import PreviousImport, VerifiedMirror

PUBLIC_GOOD_URL: Final = "https://tuf-repo-cdn.sigstore.dev"
"""sigstore-python's ``DEFAULT_TUF_URL``: the public-good TUF repository."""
_PACKAGED_DIR: Final = "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
TRUSTED_ROOT_TARGET: Final = "trusted_root.json"
SIGNING_CONFIG_TARGET: Final = "signing_config.v0.2.json"
"""The two targets sigstore-python's ``TrustUpdater`` reads (``sigstore/_internal/tuf.py``)."""
TEST_TIME_ENV: Final = "AIRSEAL_TEST_TRUSTROOT_TIME"
ROOTS_DIR: Final = "sigstore-roots"
MAX_ROOT_BYTES: Final = 512_000
MAX_TRUSTED_ROOT_BYTES: Final = 16 * 1024 * 1024  # airseal.trustroot.keyless's cap (sigstore
# loads with it: imported only where a trusted root is checked, so `status` starts fast)

FileProgress = Callable[[str, int], None]
"""(path in the repository, bytes) of each file fetched."""


class MirrorUnavailable(ApplianceError):
    """The repository could not be read (network, folder): nothing was verified."""

    title = "Trust root mirror unavailable"
    hint = "check the URL or folder and try again"


# -- reference time -----------------------------------------------------------------------------


def reference_time(now: datetime) -> tuple[datetime, bool]:
    """The time to check expiry at, and whether the test override replaced ``now``."""
    value = os.environ.get(TEST_TIME_ENV)
    if not value:
        return now, False
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{TEST_TIME_ENV}={value!r} is not an ISO 8601 time", check=TEST_TIME_ENV,
            hint=f"unset {TEST_TIME_ENV}: it exists for tests only",
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)), True


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- sources ------------------------------------------------------------------------------------


class DirectorySource:
    """Reads a repository copy from a folder, never leaving it (no symlinks, no ``..``)."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise UsageError(f"{root} is not a folder", check="DIR",
                             hint="give the folder `airseal trustroot fetch --to` wrote")
        self.root = root.resolve()

    def __call__(self, path: str, limit: int) -> bytes | None:
        target = self.root.joinpath(*path.split("/"))
        try:
            info = target.lstat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise MirrorUnavailable(
                f"cannot read it ({exc.strerror})", subject=str(target)
            ) from exc
        if not stat.S_ISREG(info.st_mode) or target.resolve().parent != target.parent.resolve():
            raise MirrorRefused(
                "not a regular file inside the copy (a link or device?)", subject=str(target),
                check="layout", hint="copy the repository again without links",
            )
        if not str(target.resolve()).startswith(str(self.root) + os.sep):
            raise MirrorRefused("points outside the copy", subject=str(target), check="layout")
        if info.st_size > limit:
            raise MirrorRefused(
                f"{info.st_size} bytes, more than the {limit} allowed for it",
                subject=str(target), check="length",
                hint="the copy is damaged or hostile; fetch it again",
            )
        return read_capped(target, limit)


class HttpSource:
    """Reads a repository from its URL with python-tuf's fetcher, remembering every file."""

    def __init__(self, url: str, on_file: FileProgress | None = None) -> None:
        from tuf.ngclient import Urllib3Fetcher

        self.url = url.rstrip("/")
        self.fetcher = Urllib3Fetcher(app_user_agent="airseal-trustroot-fetch")
        self.files: dict[str, bytes] = {}
        self.on_file = on_file

    def __call__(self, path: str, limit: int) -> bytes | None:
        from tuf.api import exceptions as tuf_errors

        url = f"{self.url}/{path}"
        try:
            data = self.fetcher.download_bytes(url, limit)
        except tuf_errors.DownloadHTTPError as exc:
            if exc.status_code in (403, 404):  # S3/CDN answer for a missing object
                return None
            raise MirrorUnavailable(f"HTTP {exc.status_code}", subject=url, check="--url") from exc
        except tuf_errors.DownloadLengthMismatchError as exc:
            raise MirrorRefused(
                f"longer than the {limit} bytes allowed for it", subject=url, check="length"
            ) from exc
        except tuf_errors.DownloadError as exc:
            raise MirrorUnavailable(
                f"download failed: {exc}", subject=url, check="--url",
                hint="check the network and the --url, then run the fetch again",
            ) from exc
        self.files[path] = data
        if self.on_file is not None:
            self.on_file(path, len(data))
        return data


@contextmanager
def _located(where: str) -> Iterator[None]:
    """Name files of the copy by where they are (``DIR/15.root.json``), not just their path."""
    try:
        yield
    except MirrorRefused as exc:
        if exc.subject is None or exc.subject.startswith(where) or exc.subject.startswith("/"):
            raise
        raise MirrorRefused(
            exc.detail, subject=f"{where.rstrip('/')}/{exc.subject}", check=exc.check,
            hint=exc.hint,
        ) from exc


# -- the packaged root --------------------------------------------------------------------------


def packaged_root() -> bytes:
    """The public-good ``root.json`` pinned inside the installed sigstore package."""
    from importlib.resources import files

    return files("sigstore").joinpath("_store", _PACKAGED_DIR, "root.json").read_bytes()


def sigstore_version() -> str:
    return package_metadata.version("sigstore")


# -- fetch --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchedMirror:
    directory: Path
    url: str
    mirror: VerifiedMirror
    files: int
    bytes: int
    reference_time_overridden: bool

    def describe(self) -> list[str]:
        m = self.mirror
        lines = [
            f"Fetched {self.url} into {self.directory}: {self.files} files, {self.bytes} bytes",
            f"  verified: root v{m.root_version}, timestamp v{m.timestamp_version} (expires "
            f"{_iso(m.timestamp_expires)}), snapshot v{m.snapshot_version}, targets "
            f"v{m.targets_version}"
            + "".join(f", {role} v{v}" for role, v in sorted(m.delegations.items())),
            f"  next, in the air gap: airseal trustroot import {self.directory}",
        ]
        if self.reference_time_overridden:
            lines.insert(1, f"  checked at {_iso(m.checked_at)} ({TEST_TIME_ENV}, tests only)")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": 1,
            "directory": str(self.directory),
            "url": self.url,
            "files": self.files,
            "bytes": self.bytes,
            **_versions_json(self.mirror),
            "checkedAt": _iso(self.mirror.checked_at),
            "testReferenceTime": self.reference_time_overridden,
        }


def _versions_json(m: VerifiedMirror) -> dict[str, Any]:
    return {
        "rootVersion": m.root_version,
        "rootExpires": _iso(m.root_expires),
        "timestampVersion": m.timestamp_version,
        "timestampExpires": _iso(m.timestamp_expires),
        "snapshotVersion": m.snapshot_version,
        "targetsVersion": m.targets_version,
        "delegations": dict(sorted(m.delegations.items())),
    }


def fetch_mirror(
    url: str,
    to: Path,
    *,
    now: datetime,
    pinned_root: bytes | None = None,
    on_file: FileProgress | None = None,
) -> FetchedMirror:
    """Copy and verify the repository at ``url`` into the new folder ``to`` (all or nothing)."""
    if not url.startswith(("https://", "http://")):
        raise UsageError(f"--url {url!r} is not an http(s) URL", check="--url")
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise UsageError(f"--to {to} exists and is not an empty folder", check="--to",
                         hint="give a new folder: the copy must hold one repository version")
    from airseal.trustroot.tuf_mirror import verify_mirror

    when, overridden = reference_time(now)
    root = pinned_root if pinned_root is not None else packaged_root()
    source = HttpSource(url, on_file)
    with _located(url):
        mirror = verify_mirror(source, pinned_root=root, now=when)
    # Every root from 1, for auditors and for clients pinned to an older root; the walk started
    # at the pinned one. Versions before it are copied as served (python-tuf cannot parse
    # roots 1 and 3 of the public-good repository, so nobody checks them here).
    for version in range(1, mirror.root_version + 1):
        name = f"{version}.root.json"
        if name not in source.files and source(name, MAX_ROOT_BYTES) is None:
            raise MirrorRefused(
                f"the repository serves no {name}", subject=f"{url}/{name}", check="root",
                hint="this does not look like a TUF repository with consistent snapshots",
            )
    files = dict(source.files)
    parent = to.parent if str(to.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    building = parent / f".{to.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        building.mkdir()
        for path, data in sorted(files.items()):
            target = building.joinpath(*path.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, data)
        if to.exists():
            to.rmdir()
        building.rename(to)
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return FetchedMirror(
        directory=to,
        url=url,
        mirror=mirror,
        files=len(files),
        bytes=sum(len(d) for d in files.values()),
        reference_time_overridden=overridden,
    )


# -- import -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportedRoot:
    """One verified import, as recorded."""

    id: str
    imported: str
    source: str
    root_version: int
    root_expires: str
    timestamp_version: int
    timestamp_expires: str
    snapshot_version: int
    targets_version: int
    delegations: dict[str, int]
    trusted_root_sha256: str
    signing_config_sha256: str | None
    directory: Path
    checked_at: str
    test_reference_time: bool

    @classmethod
    def from_row(cls, home: Home, row: dict[str, Any]) -> ImportedRoot:
        return cls(
            id=row["id"],
            imported=row["imported"],
            source=row["source"],
            root_version=row["root_version"],
            root_expires=row["root_expires"],
            timestamp_version=row["timestamp_version"],
            timestamp_expires=row["timestamp_expires"],
            snapshot_version=row["snapshot_version"],
            targets_version=row["targets_version"],
            delegations=json.loads(row["delegations"]),
            trusted_root_sha256=row["trusted_root_sha256"],
            signing_config_sha256=row["signing_config_sha256"],
            directory=home.root / ROOTS_DIR / row["id"],
            checked_at=row["checked_at"],
            test_reference_time=bool(row["test_reference_time"]),
        )

    def label(self) -> str:
        return (
            f"imported {self.imported[:16].replace('T', ' ')} UTC (root v{self.root_version}, "
            f"timestamp v{self.timestamp_version})"
        )

    def describe(self) -> list[str]:
        lines = [
            f"Imported Sigstore trust root {self.id} from {self.source}",
            f"  root v{self.root_version} (expires {self.root_expires}), timestamp "
            f"v{self.timestamp_version} (expires {self.timestamp_expires}), snapshot "
            f"v{self.snapshot_version}, targets v{self.targets_version}"
            + "".join(f", {role} v{v}" for role, v in sorted(self.delegations.items())),
            f"  trusted_root.json sha256 {self.trusted_root_sha256}",
            f"  upstream metadata kept in {self.directory / 'upstream'}",
            "  keyless verification now uses this root (--trusted-root still overrides)",
        ]
        if self.test_reference_time:
            lines.insert(1, f"  checked at {self.checked_at} ({TEST_TIME_ENV}, tests only)")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": 1,
            "id": self.id,
            "imported": self.imported,
            "source": self.source,
            "rootVersion": self.root_version,
            "rootExpires": self.root_expires,
            "timestampVersion": self.timestamp_version,
            "timestampExpires": self.timestamp_expires,
            "snapshotVersion": self.snapshot_version,
            "targetsVersion": self.targets_version,
            "delegations": self.delegations,
            "trustedRootSha256": self.trusted_root_sha256,
            "signingConfigSha256": self.signing_config_sha256,
            "directory": str(self.directory),
            "checkedAt": self.checked_at,
            "testReferenceTime": self.test_reference_time,
        }


def newest_import(home: Home, db: sqlite_utils.Database) -> ImportedRoot | None:
    rows = list(db.query("SELECT * FROM sigstore_roots ORDER BY rowid DESC LIMIT 1"))
    return ImportedRoot.from_row(home, rows[0]) if rows else None


def count_imports(db: sqlite_utils.Database) -> int:
    return int(db.execute("SELECT count(*) FROM sigstore_roots").fetchone()[0])


def _kept(imported: ImportedRoot, name: str, limit: int) -> bytes:
    """A file of the last import: without it rollback protection is gone, so refuse."""
    path = imported.directory / "upstream" / name
    try:
        return read_capped(path, limit)
    except FileNotFoundError:
        raise VerificationError(
            "the last import's metadata is missing from the home", subject=str(path),
            check="rollback", hint="restore the appliance home from backup",
        ) from None


def _previous(imported: ImportedRoot | None) -> PreviousImport | None:
    from airseal.trustroot.tuf_mirror import PreviousImport

    if imported is None:
        return None
    return PreviousImport(
        timestamp=_kept(imported, "timestamp.json", MAX_ROOT_BYTES),
        snapshot=_kept(imported, f"{imported.snapshot_version}.snapshot.json", 8_000_000),
    )


def read_pinned_root(path: Path) -> bytes:
    """The operator's ``--root`` file, refused (naming the flag) unless it is a TUF root."""
    from airseal.trustroot.tuf_mirror import metadata_version

    data = read_capped(path, MAX_ROOT_BYTES)
    try:
        metadata_version(data, subject=str(path))
        is_root = json.loads(data)["signed"]["_type"] == "root"
    except (MirrorRefused, ValueError, KeyError, TypeError):
        is_root = False
    if not is_root:
        raise UsageError(
            f"--root {path} is not a TUF root.json", check="--root",
            hint="give a root of the repository, e.g. its N.root.json (signed by itself)",
        )
    return data


def _start_root(
    home: Home, imported: ImportedRoot | None, given: bytes | None, given_name: str | None
) -> bytes:
    from airseal.trustroot.tuf_mirror import metadata_version

    if given is not None:
        return given
    packaged = packaged_root()
    if imported is None:
        return packaged
    newest = _kept(imported, f"{imported.root_version}.root.json", MAX_ROOT_BYTES)
    return newest if imported.root_version >= metadata_version(packaged) else packaged


def import_mirror(
    home: Home,
    db: sqlite_utils.Database,
    directory: Path,
    *,
    now: datetime,
    pinned_root: Path | None = None,
) -> ImportedRoot:
    """Verify the repository copy in ``directory`` and make it the root keyless checks use."""
    from airseal.trustroot.tuf_mirror import metadata_version, verify_mirror

    source = DirectorySource(directory)
    given = read_pinned_root(pinned_root) if pinned_root is not None else None
    last = newest_import(home, db)
    start = _start_root(home, last, given, str(pinned_root) if pinned_root else None)
    when, overridden = reference_time(now)
    with _located(str(directory)):
        mirror = verify_mirror(source, pinned_root=start, now=when, previous=_previous(last))
    trusted_root = mirror.targets.get(TRUSTED_ROOT_TARGET)
    if trusted_root is None:
        raise MirrorRefused(
            f"the repository has no {TRUSTED_ROOT_TARGET} target", subject=str(directory),
            check="targets", hint="this is not a Sigstore trust root repository",
        )
    from airseal.trustroot.keyless import check_trusted_root

    check_trusted_root(
        trusted_root, subject=f"{directory}/{mirror.target_files[TRUSTED_ROOT_TARGET]}"
    )
    signing_config = mirror.targets.get(SIGNING_CONFIG_TARGET)

    stamp = f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    import_id = f"{stamp}-ts{mirror.timestamp_version}-{uuid.uuid4().hex[:6]}"
    roots_dir = home.root / ROOTS_DIR
    roots_dir.mkdir(mode=0o700, exist_ok=True)
    building = roots_dir / f".{import_id}.partial"
    try:
        building.mkdir(mode=0o700)
        write_atomic(building / TRUSTED_ROOT_TARGET, trusted_root)
        if signing_config is not None:
            write_atomic(building / SIGNING_CONFIG_TARGET, signing_config)
        upstream = building / "upstream"
        upstream.mkdir()
        for path, data in mirror.metadata.items():
            write_atomic(upstream / path, data)
        # The roots before the pinned one, as the copy holds them: for auditors, not checked.
        for version in range(1, mirror.root_version):
            name = f"{version}.root.json"
            earlier = None if name in mirror.metadata else source(name, MAX_ROOT_BYTES)
            if earlier is not None:
                write_atomic(upstream / name, earlier)
        building.rename(roots_dir / import_id)
        fsync_dir(roots_dir)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise

    row = {
        "id": import_id,
        "imported": now.astimezone(UTC).isoformat(timespec="seconds"),
        "source": str(directory),
        "pinned_root_version": metadata_version(start),
        "root_version": mirror.root_version,
        "root_expires": _iso(mirror.root_expires),
        "timestamp_version": mirror.timestamp_version,
        "timestamp_expires": _iso(mirror.timestamp_expires),
        "snapshot_version": mirror.snapshot_version,
        "targets_version": mirror.targets_version,
        "delegations": json.dumps(mirror.delegations, sort_keys=True),
        "trusted_root_sha256": hashlib.sha256(trusted_root).hexdigest(),
        "signing_config_sha256": (
            hashlib.sha256(signing_config).hexdigest() if signing_config is not None else None
        ),
        "checked_at": _iso(when),
        "test_reference_time": int(overridden),
    }
    db["sigstore_roots"].insert(row)  # type: ignore[union-attr]
    details = {k: v for k, v in row.items() if k not in ("id", "source")}
    audit.record(
        home, db, "trustroot.import", import_id, {**details, "source": str(directory)}, now=now
    )
    imported = newest_import(home, db)
    assert imported is not None
    return imported


# -- the root keyless verification uses ---------------------------------------------------------


@dataclass(frozen=True)
class TrustedRootInUse:
    """The ``trusted_root.json`` a keyless check uses, and where it came from."""

    document: bytes
    origin: str
    """``file`` (--trusted-root), ``imported`` or ``packaged``."""
    label: str
    imported: ImportedRoot | None = None

    def describe(self) -> str:
        return f"trusted root: {self.label}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"origin": self.origin, "label": self.label}
        if self.imported is not None:
            data.update(
                id=self.imported.id,
                imported=self.imported.imported,
                rootVersion=self.imported.root_version,
                timestampVersion=self.imported.timestamp_version,
            )
        return data


def read_imported_root(imported: ImportedRoot) -> bytes:
    """The imported ``trusted_root.json``, refused if it changed since the import."""
    path = imported.directory / TRUSTED_ROOT_TARGET
    try:
        data = read_capped(path, MAX_TRUSTED_ROOT_BYTES)
    except FileNotFoundError:
        raise VerificationError(
            "the imported trusted root is missing", subject=str(path), check="trusted root",
            hint="import the mirror again (`airseal trustroot import DIR`)",
        ) from None
    if hashlib.sha256(data).hexdigest() != imported.trusted_root_sha256:
        raise VerificationError(
            f"changed since it was imported (sha256 {hashlib.sha256(data).hexdigest()}, "
            f"recorded {imported.trusted_root_sha256})", subject=str(path),
            check="trusted root", hint="import the mirror again (`airseal trustroot import DIR`)",
        )
    return data


def home_exists(root: Path) -> bool:
    return (root / CONFIG_NAME).exists()


def trusted_root_in_use(
    override: Path | None,
    opened: Callable[[], tuple[Home, sqlite_utils.Database]] | None,
) -> TrustedRootInUse:
    """``override`` if given, else the newest import (``opened`` gives the home, or is ``None``
    when there is none), else the root packaged with sigstore-python."""
    if override is not None:
        return TrustedRootInUse(
            read_capped(override, MAX_TRUSTED_ROOT_BYTES), "file", f"{override} (--trusted-root)"
        )
    if opened is not None:
        home, db = opened()
        imported = newest_import(home, db)
        if imported is not None:
            return TrustedRootInUse(
                read_imported_root(imported), "imported", imported.label(), imported
            )
    from airseal.trustroot.keyless import default_trusted_root_json

    return TrustedRootInUse(
        default_trusted_root_json(), "packaged",
        f"packaged with sigstore {sigstore_version()} (no import)",
    )


# -- status -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustRootStatus:
    in_use: TrustedRootInUse
    imports: int
    now: datetime

    def _age(self) -> str | None:
        imported = self.in_use.imported
        if imported is None:
            return None
        delta = self.now - datetime.fromisoformat(imported.imported)
        if delta.days:
            return f"{delta.days} day{'s' if delta.days != 1 else ''}"
        hours = delta.seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}" if hours else "under an hour"

    def describe(self) -> list[str]:
        imported = self.in_use.imported
        if imported is None:
            return [
                f"Sigstore trust root: {self.in_use.label}",
                "  nothing imported: on a connected machine run `airseal trustroot fetch --to "
                "DIR`, then `airseal trustroot import DIR` here",
            ]
        expires = datetime.fromisoformat(imported.timestamp_expires.replace("Z", "+00:00"))
        state = "expired" if expires <= self.now else "expires"
        return [
            f"Sigstore trust root: {self.in_use.label}",
            f"  age {self._age()} (imported {imported.imported}, {self.imports} import(s) in all)",
            f"  root v{imported.root_version} (expires {imported.root_expires}), timestamp "
            f"v{imported.timestamp_version} ({state} {imported.timestamp_expires}), snapshot "
            f"v{imported.snapshot_version}, targets v{imported.targets_version}",
            f"  trusted_root.json sha256 {imported.trusted_root_sha256}",
            f"  source {imported.source}",
        ]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schemaVersion": 1,
            "inUse": self.in_use.origin,
            "label": self.in_use.label,
            "imports": self.imports,
            "sigstoreVersion": sigstore_version(),
        }
        imported = self.in_use.imported
        if imported is not None:
            body = imported.to_json()
            body.pop("schemaVersion")
            data["imported"] = body
            data["ageSeconds"] = int(
                (self.now - datetime.fromisoformat(imported.imported)).total_seconds()
            )
        return data
