"""The agent's TUF mode: trust whom the site repository carried on the media says to trust.

An endpoint enrolled with ``airseal-agent enroll --site-root root.json`` keeps python-tuf's
trusted metadata under ``<state>/site/metadata/``. On each import, before anything else is
believed, :func:`update_from_media` runs :class:`tuf.ngclient.Updater` against the media's
``airseal/tuf/`` tree through :class:`MediaFetcher` (reads the media through the bounded
:class:`airseal.media.reader.MediaSource`; never the network), which walks root rotations, checks
thresholds, versions (rollback), hashes and lengths (mix-and-match, endless data) and expiry, and
then downloads the policy target ``airseal/policy.json`` and verifies it against targets. The
verified policy (:mod:`airseal.trustroot.site_policy`) becomes the import's
:class:`SiteTrust`, which names the revocation or retirement when it refuses a key.

Time floor: the endpoint remembers the newest verified timestamp's signing time
(``x-airseal-issued``) and checks expiry against ``max(clock, floor)``, so setting the endpoint
clock back cannot make stale metadata acceptable. python-tuf reads the clock once, in its
``TrustedMetadataSet`` constructor, and has no parameter for it, so the updater's
``reference_time`` is set to that instant before :meth:`Updater.refresh` (the one place this module
reaches into python-tuf internals).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, Timestamp
from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig

from airseal._internal.atomic import write_atomic
from airseal.agent.errors import EnrolmentError, SiteTrustRefused
from airseal.agent.journal import Journal
from airseal.agent.state import is_site_enrolled, site_dir
from airseal.agent.trust import Purpose, TrustedKey
from airseal.media.reader import MediaSource
from airseal.trustroot.site_policy import (
    ISSUED_FIELD,
    POLICY_TARGET,
    TRUSTED_ROOT_TARGET,
    Distributor,
    DistributorPolicy,
    LogPolicy,
    parse_policy,
)
from airseal.trustroot.tlog.media_proofs import LogTrust, parse_trusted_root

MEDIA_TUF = "airseal/tuf"
_URL = "airseal-media:/"
MAX_ROOT_BYTES = 512 * 1024
MAX_TUF_FILE_BYTES = 2 * 1024 * 1024
"""No site metadata file or target comes near this: anything larger is refused unread."""
CONFIG = UpdaterConfig(
    max_root_rotations=64,
    root_max_length=MAX_ROOT_BYTES,
    timestamp_max_length=16 * 1024,
    snapshot_max_length=256 * 1024,
    targets_max_length=MAX_TUF_FILE_BYTES,
)
_CHUNK = 64 * 1024


# -- enrolment -----------------------------------------------------------------------------------


def enroll_site_root(state_root: Path, data: bytes, *, now: datetime, subject: str) -> Root:
    """Pin a site root: self-signed to its own threshold and not expired. Enrolling the same
    root again is a no-op; another root needs `airseal-agent unenroll` first (a site root is
    replaced only by the rotations it signs)."""
    try:
        md = Metadata[Root].from_bytes(data)
        md.signed.verify_delegate("root", md.signed_bytes, md.signatures)
    except tuf_errors.UnsignedMetadataError as error:
        raise EnrolmentError(f"the root is not signed by its own threshold ({error})",
                             subject=subject) from None
    except Exception as error:  # any parse failure: not a TUF root
        raise EnrolmentError(f"is not TUF root metadata ({type(error).__name__}: {error})",
                             subject=subject) from None
    if md.signed.is_expired(now):
        raise EnrolmentError(f"the root expired on {md.signed.expires.isoformat()}",
                             subject=subject, hint="write a fresh one: airseal site root -o")
    folder = site_dir(state_root) / "metadata"
    current = folder / "root.json"
    if current.exists():
        seen = [current, folder / "root_history" / f"{md.signed.version}.root.json"]
        if any(p.is_file() and p.read_bytes() == data for p in seen):
            return md.signed
        raise EnrolmentError("this endpoint is enrolled with another site root",
                             subject=subject, hint="run `airseal-agent unenroll` first")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(current, data, mode=0o600)
    return md.signed


def unenroll_site(state_root: Path) -> bool:
    folder = site_dir(state_root)
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True


# -- the fetcher ---------------------------------------------------------------------------------


class MediaFetcher(FetcherInterface):
    """Serves ngclient's "downloads" from ``airseal/tuf/`` on the media, and nothing else."""

    def __init__(self, source: MediaSource) -> None:
        self.source = source
        self.last: str = MEDIA_TUF

    def _fetch(self, url: str) -> Iterator[bytes]:
        if not url.startswith(_URL):
            raise tuf_errors.DownloadError(f"{url} is not on the media")
        path = f"{MEDIA_TUF}/{url[len(_URL):]}"
        self.last = path
        if self.source.stat(path) is None:
            raise tuf_errors.DownloadHTTPError(f"{path} is not on the media", 404)
        return self._chunks(path)

    def _chunks(self, path: str) -> Iterator[bytes]:
        with self.source.open(path, max_size=MAX_TUF_FILE_BYTES) as stream:
            while chunk := stream.read(_CHUNK):
                yield chunk


# -- one update ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteUpdate:
    """What the media's site repository established, verified."""

    policy: DistributorPolicy
    root_version: int
    targets_version: int
    timestamp_version: int
    checked_at: datetime
    """``max(clock, floor)``: the instant every expiry was checked against."""
    floor: datetime | None
    log: LogTrust | None = None
    """The site's log and what the policy demands of it (``None``: the site has no log)."""


def read_floor(state_root: Path) -> datetime | None:
    path = site_dir(state_root) / "floor.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_bytes())
    return datetime.fromisoformat(str(data["floor"]))


def update_from_media(state_root: Path, source: MediaSource, *, now: datetime) -> SiteUpdate:
    """Refresh the endpoint's trusted site metadata from the media and return the verified
    policy; raise :class:`SiteTrustRefused` naming the file and the TUF check that failed."""
    floor = read_floor(state_root)
    checked_at = max(now, floor) if floor is not None else now
    metadata_dir = site_dir(state_root) / "metadata"
    fetcher = MediaFetcher(source)
    try:
        updater = Updater(
            str(metadata_dir), f"{_URL}metadata/", target_base_url=f"{_URL}targets/",
            fetcher=fetcher, config=CONFIG, bootstrap=None,
        )
        updater._trusted_set.reference_time = checked_at  # see the module docstring
        updater.refresh()
        info = updater.get_targetinfo(POLICY_TARGET)
        if info is None:
            raise SiteTrustRefused(f"the site targets list no {POLICY_TARGET}",
                                   subject=fetcher.last, check="tuf-policy")
        data = _download(fetcher, info)
    except SiteTrustRefused:
        raise
    except OSError as error:
        raise SiteTrustRefused(f"the endpoint's site metadata could not be read ({error})",
                               subject=str(metadata_dir), check="tuf-state",
                               hint="enrol again: airseal-agent enroll --site-root root.json",
                               ) from None
    except (tuf_errors.RepositoryError, tuf_errors.DownloadError) as error:
        raise _refusal(error, fetcher.last, now=now, floor=floor, checked_at=checked_at) from None
    policy = parse_policy(data, subject=fetcher.last)
    log = _log_trust(updater, fetcher, policy)
    timestamp = Metadata[Timestamp].from_bytes((metadata_dir / "timestamp.json").read_bytes())
    new_floor = _issued(timestamp.signed)
    if new_floor is not None and (floor is None or new_floor > floor):
        write_atomic(site_dir(state_root) / "floor.json",
                     (json.dumps({"schemaVersion": 1, "floor": new_floor.isoformat()}) + "\n")
                     .encode(), mode=0o600)
        floor = new_floor
    root = Metadata[Root].from_bytes((metadata_dir / "root.json").read_bytes())
    targets_version = updater._trusted_set.targets.version
    return SiteUpdate(policy, root.signed.version, targets_version, timestamp.signed.version,
                      checked_at, floor, log)


def _download(fetcher: MediaFetcher, info: Any) -> bytes:
    digest = info.hashes["sha256"]
    folder, _, base = info.path.rpartition("/")
    data = fetcher.download_bytes(f"{_URL}targets/{folder}/{digest}.{base}", info.length)
    info.verify_length_and_hashes(data)
    return data


def _log_trust(updater: Updater, fetcher: MediaFetcher,
               policy: DistributorPolicy) -> LogTrust | None:
    """The log the site's verified ``airseal/trusted_root.json`` target names, with what the
    policy demands of it (``log.required`` defaults to on once the site has a log)."""
    try:
        info = updater.get_targetinfo(TRUSTED_ROOT_TARGET)
        if info is None:
            if policy.log is not None and policy.log.required:
                raise SiteTrustRefused(
                    f"the site policy requires the transparency log, and the site targets "
                    f"list no {TRUSTED_ROOT_TARGET} naming it", subject=fetcher.last,
                    check="tuf-log")
            return None
        data = _download(fetcher, info)
    except (tuf_errors.RepositoryError, tuf_errors.DownloadError) as error:
        raise SiteTrustRefused(f"the log's trusted root did not verify ({error})",
                               subject=fetcher.last, check="tuf-log") from None
    key, origin = parse_trusted_root(data, subject=f"{MEDIA_TUF}/targets/{TRUSTED_ROOT_TARGET}")
    rule = policy.log or LogPolicy()
    return LogTrust(key, origin, required=rule.required, witnesses=rule.witnesses,
                    quorum=rule.witness_quorum,
                    source=f"the site's {TRUSTED_ROOT_TARGET} (verified by TUF)")


def _issued(timestamp: Timestamp) -> datetime | None:
    raw = timestamp.unrecognized_fields.get(ISSUED_FIELD)
    if not isinstance(raw, str) or len(raw) > 40:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if value.tzinfo is None or value > timestamp.expires:
        return None
    return value.astimezone(UTC)


def _refusal(error: Exception, subject: str, *, now: datetime, floor: datetime | None,
             checked_at: datetime) -> SiteTrustRefused:
    cause = error.__cause__
    if isinstance(error, tuf_errors.DownloadHTTPError):
        if subject == f"{MEDIA_TUF}/metadata/timestamp.json":
            return SiteTrustRefused(
                "is missing: this media carries no site repository, and this endpoint is "
                "enrolled with a site root", subject=subject, check="tuf-missing",
                hint="export from the site's appliance (airseal site init there), or enrol "
                     "this endpoint with a distributor key instead")
        return SiteTrustRefused(f"a file the site metadata names is missing ({error})",
                                subject=subject, check="tuf-missing")
    if isinstance(error, tuf_errors.DownloadLengthMismatchError) or (
        cause is not None and type(cause).__name__ == "OversizedFile"
    ):
        return SiteTrustRefused(f"is larger than the site metadata allows ({cause or error})",
                                subject=subject, check="tuf-size")
    if isinstance(error, tuf_errors.DownloadError):
        return SiteTrustRefused(f"could not be read from the media ({cause or error})",
                                subject=subject, check="tuf-read")
    if isinstance(error, tuf_errors.UnsignedMetadataError):
        return SiteTrustRefused(f"is not signed by the threshold of the site's keys ({error})",
                                subject=subject, check="tuf-threshold")
    if isinstance(error, tuf_errors.ExpiredMetadataError):
        basis = f"this endpoint's clock {now.isoformat(timespec='seconds')}"
        if floor is not None and floor > now:
            basis = (f"the newest site timestamp seen here, {floor.isoformat(timespec='seconds')}"
                     f" (this endpoint's clock says {now.isoformat(timespec='seconds')}, earlier)")
        return SiteTrustRefused(f"has expired ({error}); checked against {basis}",
                                subject=subject, check="tuf-expiry")
    if isinstance(error, tuf_errors.BadVersionNumberError):
        return SiteTrustRefused(
            f"has the wrong version ({error}): older than what this endpoint trusts (rollback) "
            "or not the version the timestamp/snapshot names (mix-and-match)",
            subject=subject, check="tuf-version")
    if isinstance(error, tuf_errors.LengthOrHashMismatchError):
        return SiteTrustRefused(
            f"does not match the length or hash the site metadata names ({error}): a mix of "
            "files from different site versions, or a changed file",
            subject=subject, check="tuf-hash")
    del checked_at
    return SiteTrustRefused(f"failed a TUF check ({error})", subject=subject)


# -- the trust source ----------------------------------------------------------------------------


class SiteTrust:
    """The distributors the verified site policy names, for each purpose, at the checked time."""

    def __init__(self, update: SiteUpdate) -> None:
        self.update = update

    @property
    def description(self) -> str:
        u = self.update
        return f"site policy (root v{u.root_version}, targets v{u.targets_version})"

    def _trusted(self, found: Distributor) -> TrustedKey:
        purposes: frozenset[Purpose] = frozenset(
            p for p in ("exports", "actions") if p in found.may_sign)
        return TrustedKey(
            fingerprint=found.fingerprint, name=found.name, public_key=found.public_key,
            may_sign=purposes,
            authorised_by=f"the site policy (targets v{self.update.targets_version}), signed by "
                          "the site's targets keys",
        )

    def key(self, fingerprint: str, purpose: Purpose) -> TrustedKey | None:
        policy = self.update.policy
        if policy.refusal(fingerprint, purpose, self.update.checked_at) is not None:
            return None
        found = policy.distributor(fingerprint)
        return None if found is None else self._trusted(found)

    def keys(self, purpose: Purpose) -> tuple[TrustedKey, ...]:
        return tuple(self._trusted(d)
                     for d in self.update.policy.trusted(purpose, self.update.checked_at))

    def explain(self, fingerprint: str, purpose: Purpose) -> str | None:
        return self.update.policy.refusal(fingerprint, purpose, self.update.checked_at)

    @property
    def action_threshold(self) -> int:
        return self.update.policy.action_threshold

    @property
    def log_trust(self) -> LogTrust | None:
        return self.update.log


def site_trust(state_root: Path, source: MediaSource, journal: Journal, *,
               now: datetime) -> SiteTrust:
    """Update from the media, then make the journal know every distributor the policy trusts
    (a new one is approved by the endpoint user the first time, as in pinned mode)."""
    trust = SiteTrust(update_from_media(state_root, source, now=now))
    purposes: tuple[Purpose, ...] = ("exports", "actions")
    for purpose in purposes:
        for key in trust.keys(purpose):
            known = journal.distributor(key.fingerprint)
            wanted = sorted(key.may_sign)
            if known is None:
                from airseal.trustroot.keys import spki_pem

                journal.add_distributor(key.fingerprint, key.name,
                                        spki_pem(key.public_key).decode(), wanted, now=now)
            elif known.name != key.name or sorted(known.may_sign) != wanted:
                journal.update_distributor(key.fingerprint, name=key.name, may_sign=wanted)
    return trust


def status_json(state_root: Path) -> dict[str, Any] | None:
    """What `airseal-agent status` shows of the site mode (``None`` in pinned mode)."""
    if not is_site_enrolled(state_root):
        return None
    folder = site_dir(state_root) / "metadata"
    out: dict[str, Any] = {}
    for role in ("root", "timestamp", "snapshot", "targets"):
        path = folder / f"{role}.json"
        if path.exists():
            md: Metadata[Any] = Metadata.from_bytes(path.read_bytes())
            out[role] = {"version": md.signed.version, "expires": md.signed.expires.isoformat()}
    floor = read_floor(state_root)
    out["floor"] = floor.isoformat() if floor else None
    return out


__all__ = [
    "MediaFetcher", "SiteTrust", "SiteUpdate", "enroll_site_root", "is_site_enrolled",
    "site_trust", "status_json", "unenroll_site", "update_from_media",
]
