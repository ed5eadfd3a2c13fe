"""The site TUF repository on the appliance: offline root and targets, online snapshot/timestamp.

Built with python-tuf's Metadata API (``tuf.api.metadata``), signed through our keystore's
signers adapted to securesystemslib (:class:`airseal.trustroot.tuf_keys.TufSigner`), so any mix of
file keys, PKCS#11 tokens and YubiKey PIV slots can hold a role. Layout, under the home::

    site/site.json                       which appliance key is the online key
    site/metadata/N.root.json            every root version (endpoints walk the chain)
    site/metadata/N.targets.json         targets versions (the policy's signatures)
    site/metadata/N.snapshot.json        snapshot versions (online key)
    site/metadata/timestamp.json         the newest timestamp (online key, re-signed per export)
    site/targets/airseal/<sha256>.policy.json   the distributor policy, named as consistent
                                         snapshots require
    site/pending/root.json|targets.json  a change waiting for its threshold (a signing event),
    site/pending/policy.json             with the policy bytes it would publish
    site/targets/airseal/<sha256>.signing_config.json   the site's Sigstore signing config
    site/pending/signing_config.json     (once set), and the one a pending change would publish

A change to root or targets is a *signing event*: the new metadata is signed by every key of the
role that is on hand (file keys unlocked by ``COSIGN_PASSWORD``, tokens by ``AIRSEAL_PIN``, or
answered at the prompt); each signature is verified as it arrives; the change takes effect only
when the role's threshold is met (for a new root: the old root's threshold and the new one's),
otherwise it waits in ``pending/`` for ``airseal site sign``. Every event is in the audit chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlite_utils
from securesystemslib.signer import Key, Signature
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Role,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import CanonicalJSONSerializer, JSONSerializer

from airseal._internal.atomic import write_atomic
from airseal.appliance import audit, settings
from airseal.appliance.errors import ApplianceError, UsageError
from airseal.appliance.home import Home
from airseal.appliance.keystore import KeyRecord, get_key, list_keys, open_signer
from airseal.appliance.prompts import Prompter
from airseal.appliance.site_log import MetadataVersion, log_metadata
from airseal.errors import AirsealError
from airseal.trustroot.keys import load_public_key
from airseal.trustroot.signer import Signer
from airseal.trustroot.site_policy import (
    ISSUED_FIELD,
    POLICY_TARGET,
    SIGNING_CONFIG_TARGET,
    TRUSTED_ROOT_TARGET,
    DistributorPolicy,
    LogPolicy,
    Purpose,
    new_distributor,
    parse_policy,
)
from airseal.trustroot.tuf_keys import TufSigner, tuf_key

if TYPE_CHECKING:
    from airseal.appliance.actions import ActionRecord

SITE_DIR = "site"
SIGNING_CONFIG_COPY = "signing_config.json"
"""In ``site/pending/``: the signing config a pending targets change names (its target bytes)."""
REQUEST_DIR = "airseal-site"
"""Where a signing request travels on media (the pending metadata, signatures added there)."""
MAX_REQUEST_BYTES = 2 * 1024 * 1024
OFFLINE_ROLES = ("root", "targets")
_SERIALIZER = JSONSerializer(compact=False)


class SiteError(ApplianceError):
    title = "Site repository"
    hint = "`airseal site status` shows the repository"


class NoSite(SiteError):
    hint = "create it with `airseal site init --root-key ... --targets-key ... --online-key ...`"


class SigningPending(SiteError):
    title = "Signing event pending"
    hint = "finish it with `airseal site sign` (or carry it to the key holders: site sign --media)"


@dataclass(frozen=True)
class SignatureAttempt:
    key: str
    signed: bool
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "signed": self.signed, "reason": self.reason}


@dataclass(frozen=True)
class SigningOutcome:
    """What one signing event did: who signed, and whether the change took effect."""

    role: str
    version: int
    attempts: tuple[SignatureAttempt, ...]
    signatures: int
    threshold: str
    published: bool

    def describe(self) -> str:
        state = "published" if self.published else "pending (threshold not met)"
        lines = [f"{self.role} version {self.version}: {self.signatures} signature(s), "
                 f"threshold {self.threshold}: {state}"]
        for a in self.attempts:
            lines.append(f"  {a.key}: {'signed' if a.signed else 'not signed: ' + str(a.reason)}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": 1,
            "role": self.role,
            "version": self.version,
            "signatures": self.signatures,
            "threshold": self.threshold,
            "published": self.published,
            "attempts": [a.to_json() for a in self.attempts],
        }


@dataclass(frozen=True)
class AwaitingApproval:
    """An action whose DSSE envelope holds fewer distinct distributor signatures (keys the
    published policy trusts for actions now) than the policy's action threshold: endpoints
    refuse it until more distributors approve it (the two-person rule)."""

    action_id: str
    version: int
    name: str
    key_name: str
    approvals: int
    threshold: int
    approved_by: tuple[str, ...]
    """The names the policy gives the distributors that signed."""
    approvers: tuple[str, ...] = ()
    """This appliance's keys whose signature would count: trusted distributors for actions
    that have not signed, and not retired here."""

    @property
    def count(self) -> str:
        return f"{self.approvals} of {self.threshold}"

    def describe(self) -> str:
        by = ", ".join(self.approved_by) or "no distributor"
        return (f"action {self.action_id} v{self.version} {self.name}: {self.count} approvals "
                f"({by}); add one: airseal action approve {self.action_id} --key NAME")

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": 1, "actionId": self.action_id, "version": self.version,
            "name": self.name, "key": self.key_name, "approvals": self.approvals,
            "threshold": self.threshold, "approvedBy": list(self.approved_by),
            "approvers": list(self.approvers),
        }


@dataclass(frozen=True)
class SigningConfigView:
    """The site's published signing config as `airseal site signing-config` shows it."""

    sha256: str | None
    rekors: tuple[tuple[str, Any], ...] = ()
    """(URL, ``majorApiVersion``) of each listed Rekor."""

    @classmethod
    def of(cls, document: bytes | None) -> SigningConfigView:
        from airseal.appliance.rekor_client import listed_rekors

        if document is None:
            return cls(None)
        return cls(hashlib.sha256(document).hexdigest(), tuple(listed_rekors(document)))

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": 1, "configured": self.sha256 is not None, "sha256": self.sha256,
            "rekor": [{"url": url, "majorApiVersion": v} for url, v in self.rekors],
        }

    def describe(self) -> str:
        if self.sha256 is None:
            return "The site has no signing config: --rekor-url uses Rekor v1."
        lines = [f"signing config sha256 {self.sha256}"]
        lines += [f"  rekor {url} majorApiVersion {v}" for url, v in self.rekors]
        return "\n".join(lines)


@dataclass
class SiteStatus:
    roles: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    distributors: list[dict[str, Any]] = field(default_factory=list)
    action_threshold: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": 1,
            "roles": self.roles,
            "pending": self.pending,
            "distributors": self.distributors,
            "actionThreshold": self.action_threshold,
        }

    def describe(self) -> str:
        lines = []
        for r in self.roles:
            days = r["expiresInDays"]
            lines.append(
                f"{r['role']:<9} v{r['version']:<3} threshold {r['threshold']} of "
                f"{len(r['keys'])} ({', '.join(r['keys'])}), expires {r['expires']} "
                f"(in {days} days)"
            )
        for p in self.pending:
            lines.append(f"pending: {p['role']} v{p['version']} ({p['signatures']} of "
                         f"{p['threshold']} signatures)")
        lines.append(f"distributors: {len(self.distributors)}, action threshold "
                     f"{self.action_threshold}")
        return "\n".join(lines)


def _days(db: sqlite_utils.Database, name: str) -> timedelta:
    return timedelta(days=settings.get_int(db, name))


def _expiry(now: datetime, delta: timedelta) -> datetime:
    return (now + delta).astimezone(UTC).replace(microsecond=0)


class SiteRepository:
    """The site repository in one appliance home."""

    def __init__(self, home: Home, db: sqlite_utils.Database, prompter: Prompter) -> None:
        self.home = home
        self.db = db
        self.prompter = prompter
        self.dir = home.root / SITE_DIR
        self.metadata_dir = self.dir / "metadata"
        self.targets_dir = self.dir / "targets"
        self.pending_dir = self.dir / "pending"

    # -- reading ---------------------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        return (self.dir / "site.json").is_file()

    def require(self) -> None:
        if not self.exists:
            raise NoSite("this appliance has no site repository", subject=str(self.dir))

    def _config(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.dir / "site.json").read_bytes())
        return data

    def _latest(self, role: str) -> tuple[int, Path] | None:
        best: tuple[int, Path] | None = None
        for path in self.metadata_dir.glob(f"*.{role}.json"):
            head = path.name.split(".", 1)[0]
            if head.isdigit() and (best is None or int(head) > best[0]):
                best = (int(head), path)
        return best

    def root(self) -> Metadata[Root]:
        latest = self._latest("root")
        if latest is None:
            raise SigningPending("the first root has not reached its threshold yet",
                                 subject=str(self.pending_dir / "root.json"))
        return Metadata[Root].from_bytes(latest[1].read_bytes())

    def root_bytes(self) -> bytes:
        self.require()
        latest = self._latest("root")
        if latest is None:
            raise SigningPending("the first root has not reached its threshold yet")
        return latest[1].read_bytes()

    def _targets(self) -> Metadata[Targets] | None:
        latest = self._latest("targets")
        return None if latest is None else Metadata[Targets].from_bytes(latest[1].read_bytes())

    def _snapshot(self) -> Metadata[Snapshot] | None:
        latest = self._latest("snapshot")
        return None if latest is None else Metadata[Snapshot].from_bytes(latest[1].read_bytes())

    def _timestamp(self) -> Metadata[Timestamp] | None:
        path = self.metadata_dir / "timestamp.json"
        return Metadata[Timestamp].from_bytes(path.read_bytes()) if path.is_file() else None

    def policy(self) -> DistributorPolicy:
        """The published policy (the pending one is not in force)."""
        self.require()
        targets = self._targets()
        if targets is None:
            return DistributorPolicy()
        info = targets.signed.targets[POLICY_TARGET]
        return parse_policy(self._target_path(info).read_bytes())

    def _target_path(self, info: TargetFile) -> Path:
        digest = info.hashes["sha256"]
        folder, _, base = info.path.rpartition("/")
        return self.targets_dir / folder / f"{digest}.{base}"

    # -- key names -------------------------------------------------------------------------------

    def _records_by_keyid(self) -> dict[str, KeyRecord]:
        found: dict[str, KeyRecord] = {}
        for record in list_keys(self.db):
            try:
                found[tuf_key(record.public_key).keyid] = record
            except AirsealError:
                continue
        return found

    def _key_names(self, keyids: Iterable[str]) -> list[str]:
        records = self._records_by_keyid()
        return [records[k].name if k in records else k[:16] for k in keyids]

    def _role_key(self, name: str, flag: str) -> tuple[KeyRecord, Key]:
        record = get_key(self.db, name)
        if record.reference.get("retired"):
            raise UsageError(f"key {name} is retired and cannot sign anything new", subject=flag)
        try:
            return record, tuf_key(record.public_key)
        except AirsealError as error:
            raise UsageError(f"{flag} {name}: {error.detail}", hint=error.hint) from None

    # -- creating --------------------------------------------------------------------------------

    def init(
        self,
        *,
        root_keys: Sequence[str],
        root_threshold: int,
        targets_keys: Sequence[str],
        targets_threshold: int,
        online_key: str,
        now: datetime,
    ) -> list[SigningOutcome]:
        if self.exists:
            raise SiteError("this appliance already has a site repository", subject=str(self.dir),
                            hint="see `airseal site status`; rotate keys with a signing event")
        _check_threshold("--root-threshold", root_threshold, root_keys, "--root-key")
        _check_threshold("--targets-threshold", targets_threshold, targets_keys, "--targets-key")
        root = Root(expires=_expiry(now, _days(self.db, "site.root-days")),
                    consistent_snapshot=True)
        for role, names, flag in (("root", root_keys, "--root-key"),
                                  ("targets", targets_keys, "--targets-key"),
                                  ("snapshot", [online_key], "--online-key"),
                                  ("timestamp", [online_key], "--online-key")):
            for name in names:
                root.add_key(self._role_key(name, flag)[1], role)
        root.roles["root"].threshold = root_threshold
        root.roles["targets"].threshold = targets_threshold
        for sub in (self.metadata_dir, self.targets_dir, self.pending_dir):
            sub.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self.dir / "site.json", _json({"schemaVersion": 1,
                                                    "onlineKey": online_key}), mode=0o600)
        audit.record(self.home, self.db, "site.init", str(self.dir), {
            "rootKeys": list(root_keys), "rootThreshold": root_threshold,
            "targetsKeys": list(targets_keys), "targetsThreshold": targets_threshold,
            "onlineKey": online_key,
        }, now=now)
        outcomes = [self._sign_event(Metadata(root), now=now)]
        outcomes.append(self._propose_policy(DistributorPolicy(), now=now, reason="site.init"))
        return outcomes

    # -- signing events --------------------------------------------------------------------------

    def _sign_event(self, md: Metadata[Any], *, now: datetime,
                    policy_bytes: bytes | None = None) -> SigningOutcome:
        """Sign ``md`` with what keys are on hand, and publish it when its threshold is met."""
        role = md.signed.type
        needed = self._requirements(md)
        attempts: list[SignatureAttempt] = []
        records = self._records_by_keyid()
        payload = CanonicalJSONSerializer().serialize(md.signed)
        for keyid in dict.fromkeys(k for _, r in needed for k in r.keyids):
            if keyid in md.signatures or self._met(md, needed):
                continue
            record = records.get(keyid)
            if record is None:
                attempts.append(SignatureAttempt(keyid[:16], False, "not a key of this appliance"))
                continue
            try:
                with open_signer(self.home, record, self.prompter) as signer:
                    signature = _sign(md, signer)
            except AirsealError as error:
                attempts.append(SignatureAttempt(record.name, False, error.detail))
                continue
            key = tuf_key(record.public_key)
            try:
                key.verify_signature(signature, payload)
            except Exception:  # any failure: the signature is dropped
                md.signatures.pop(keyid, None)
                attempts.append(SignatureAttempt(record.name, False, "signature did not verify"))
                continue
            attempts.append(SignatureAttempt(record.name, True))
            audit.record(self.home, self.db, "site.signature", f"{role} v{md.signed.version}",
                         {"key": record.name}, now=now)
        return self._settle(md, needed, attempts, now=now, policy_bytes=policy_bytes)

    def _requirements(self, md: Metadata[Any]) -> list[tuple[Metadata[Root], Role]]:
        """(delegating root, role) pairs whose thresholds must all be met."""
        role = md.signed.type
        if role == "root":
            needs: list[tuple[Metadata[Root], Role]] = [(md, md.signed.roles["root"])]
            if self._latest("root") is not None:
                current = self.root()
                needs.insert(0, (current, current.signed.roles["root"]))
            return needs
        current = self._delegating_root()
        return [(current, current.signed.roles[role])]

    def _delegating_root(self) -> Metadata[Root]:
        """The published root, or the first root while it still waits for signatures."""
        if self._latest("root") is not None:
            return self.root()
        pending = self.pending_dir / "root.json"
        return Metadata[Root].from_bytes(pending.read_bytes())

    @staticmethod
    def _met(md: Metadata[Any], needed: list[tuple[Metadata[Root], Role]]) -> bool:
        role = md.signed.type
        return all(
            root.signed.get_verification_result(role, md.signed_bytes, md.signatures).verified
            for root, _ in needed
        )

    def _settle(self, md: Metadata[Any], needed: list[tuple[Metadata[Root], Role]],
                attempts: list[SignatureAttempt], *, now: datetime,
                policy_bytes: bytes | None) -> SigningOutcome:
        role = md.signed.type
        thresholds = "+".join(f"{r.threshold} of {len(r.keyids)}" for _, r in needed)
        published = self._met(md, needed)
        if published:
            self._publish(md, now=now, policy_bytes=policy_bytes)
            (self.pending_dir / f"{role}.json").unlink(missing_ok=True)
            if role == "targets":
                (self.pending_dir / "policy.json").unlink(missing_ok=True)
                (self.pending_dir / SIGNING_CONFIG_COPY).unlink(missing_ok=True)
        else:
            self.pending_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(self.pending_dir / f"{role}.json", md.to_bytes(_SERIALIZER), mode=0o600)
            if policy_bytes is not None:
                write_atomic(self.pending_dir / "policy.json", policy_bytes, mode=0o600)
        audit.record(self.home, self.db, "site.publish" if published else "site.pending",
                     f"{role} v{md.signed.version}",
                     {"signatures": len(md.signatures), "threshold": thresholds}, now=now)
        return SigningOutcome(role, md.signed.version, tuple(attempts), len(md.signatures),
                              thresholds, published)

    def _publish(self, md: Metadata[Any], *, now: datetime, policy_bytes: bytes | None) -> None:
        role = md.signed.type
        if role == "root":
            self._follow_online_key(md.signed)
        if role == "targets" and policy_bytes is not None:
            info = md.signed.targets[POLICY_TARGET]
            path = self._target_path(info)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(path, policy_bytes, mode=0o644)
        if role == "targets" and TRUSTED_ROOT_TARGET in md.signed.targets:
            info = md.signed.targets[TRUSTED_ROOT_TARGET]
            data = self._log_trusted_root()
            if data is None:
                raise ApplianceError("the site targets name the log's trusted root, and this "
                                     "appliance has no log", check="site-log")
            info.verify_length_and_hashes(data)  # rebuilt byte for byte from the log
            path = self._target_path(info)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(path, data, mode=0o644)
        if role == "targets" and SIGNING_CONFIG_TARGET in md.signed.targets:
            info = md.signed.targets[SIGNING_CONFIG_TARGET]
            copy = self.pending_dir / SIGNING_CONFIG_COPY
            data = copy.read_bytes() if copy.is_file() else b""
            self._check_target(info, data, copy)
            path = self._target_path(info)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(path, data, mode=0o644)
        data = md.to_bytes(_SERIALIZER)
        log_metadata(self.home, self.db, self.prompter,
                     [MetadataVersion(role, md.signed.version, data)])
        write_atomic(self.metadata_dir / f"{md.signed.version}.{role}.json", data, mode=0o644)
        if self._latest("root") is not None and self._latest("targets") is not None:
            try:
                self.refresh_timestamp(now=now, new_snapshot=True)
            except AirsealError as error:
                # the change stands; the next export signs snapshot and timestamp
                audit.record(self.home, self.db, "site.timestamp-deferred", role,
                             {"reason": error.detail}, now=now)

    def _follow_online_key(self, root: Root) -> None:
        """Point site.json at the appliance key the published root names for timestamp."""
        keyid = root.roles["timestamp"].keyids[0]
        record = self._records_by_keyid().get(keyid)
        if record is not None and record.name != self._config()["onlineKey"]:
            write_atomic(self.dir / "site.json",
                         _json({"schemaVersion": 1, "onlineKey": record.name}), mode=0o600)

    def sign_pending(self, *, now: datetime) -> list[SigningOutcome]:
        """Collect signatures for every pending change from the keys on hand (a ceremony)."""
        self.require()
        outcomes = []
        for role in OFFLINE_ROLES:
            path = self.pending_dir / f"{role}.json"
            if not path.is_file():
                continue
            md: Metadata[Any] = Metadata.from_bytes(path.read_bytes())
            policy = self.pending_dir / "policy.json"
            policy_bytes = policy.read_bytes() if role == "targets" and policy.is_file() else None
            outcomes.append(self._sign_event(md, now=now, policy_bytes=policy_bytes))
        if not outcomes:
            raise UsageError("no signing event is pending", hint="`airseal site status`")
        return outcomes

    # -- signatures carried on media ------------------------------------------------------------

    def write_request(self, target: Path) -> list[str]:
        """Copy the pending signing events to ``target/airseal-site/`` for other key holders."""
        self.require()
        roles = [r for r in OFFLINE_ROLES if (self.pending_dir / f"{r}.json").is_file()]
        if not roles:
            raise UsageError("no signing event is pending", hint="`airseal site status`")
        folder = Path(target) / REQUEST_DIR
        folder.mkdir(parents=True, exist_ok=True)
        for name in [f"{r}.json" for r in roles] + ["policy.json"]:
            source = self.pending_dir / name
            if source.is_file() and (name != "policy.json" or "targets" in roles):
                write_atomic(folder / name, source.read_bytes(), mode=0o644)
        audit.record(self.home, self.db, "site.request", str(folder), {"roles": roles})
        return roles

    def import_signatures(self, source: Path, *, now: datetime) -> list[SigningOutcome]:
        """Merge the signatures key holders added to a request: each verified against the
        role's keys before it counts; the change takes effect at its threshold."""
        self.require()
        folder = Path(source) / REQUEST_DIR
        outcomes = []
        for role in OFFLINE_ROLES:
            carried = folder / f"{role}.json"
            pending_path = self.pending_dir / f"{role}.json"
            if not carried.is_file():
                continue
            if not pending_path.is_file():
                raise UsageError(f"no {role} change is pending here", subject=str(carried))
            if carried.stat().st_size > MAX_REQUEST_BYTES:
                raise SiteError(f"is over {MAX_REQUEST_BYTES} bytes", subject=str(carried))
            pending: Metadata[Any] = Metadata.from_bytes(pending_path.read_bytes())
            try:
                theirs: Metadata[Any] = Metadata.from_bytes(carried.read_bytes())
            except Exception as error:  # any parse failure: not metadata
                raise SiteError(f"is not TUF metadata ({error})", subject=str(carried)) from None
            if theirs.signed_bytes != pending.signed_bytes:
                raise SiteError("is not the change pending here (its signed content differs)",
                                subject=str(carried), check="request",
                                hint="carry the current request: airseal site sign --media DIR")
            needed = self._requirements(pending)
            keys = {k: root.signed.get_key(k) for root, r in needed for k in r.keyids}
            records = self._records_by_keyid()
            attempts = []
            for keyid, signature in theirs.signatures.items():
                name = records[keyid].name if keyid in records else keyid[:16]
                if keyid in pending.signatures:
                    continue
                if keyid not in keys:
                    attempts.append(SignatureAttempt(name, False, f"not a {role} key"))
                    continue
                try:
                    keys[keyid].verify_signature(signature, pending.signed_bytes)
                except Exception:  # any failure: the signature does not count
                    attempts.append(SignatureAttempt(name, False, "signature did not verify"))
                    continue
                pending.signatures[keyid] = signature
                attempts.append(SignatureAttempt(name, True))
                audit.record(self.home, self.db, "site.signature", f"{role} "
                             f"v{pending.signed.version}", {"key": name, "via": "media"},
                             now=now)
            policy = self.pending_dir / "policy.json"
            outcomes.append(self._settle(
                pending, needed, attempts, now=now,
                policy_bytes=policy.read_bytes() if role == "targets" and policy.is_file()
                else None))
        if not outcomes:
            raise UsageError("no signing request found", subject=str(folder))
        return outcomes

    # -- changes ---------------------------------------------------------------------------------

    def _log_trusted_root(self) -> bytes | None:
        """The log's ``trusted_root.json`` (a site target once the appliance keeps a log)."""
        from airseal.appliance.tlog_store import log_info, trusted_root_json

        info = log_info(self.db.conn)
        return None if info is None else trusted_root_json(info)

    def publish_log(self, *, now: datetime, policy: LogPolicy | None = None) -> SigningOutcome:
        """A targets change carrying the log's trusted root (and, when given, a new ``log``
        section of the policy): endpoints in TUF mode learn the log key, id and origin from it."""
        self.require()
        if self._log_trusted_root() is None:
            raise UsageError("this appliance has no transparency log",
                             hint="create it with `airseal log init --key NAME`")
        current = self.policy()
        changed = current if policy is None else replace(current, log=policy, _by_fp={})
        return self._propose_policy(changed, now=now, reason="log.publish")

    def signing_config(self) -> bytes | None:
        """The site's published Sigstore ``signing_config.json`` (its TUF target, checked
        against the published targets' length and hash), or None when the site has none."""
        if not self.exists:
            return None
        targets = self._targets()
        if targets is None or SIGNING_CONFIG_TARGET not in targets.signed.targets:
            return None
        info = targets.signed.targets[SIGNING_CONFIG_TARGET]
        path = self._target_path(info)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SiteError(f"cannot be read ({exc.strerror or exc})", subject=str(path),
                            check="site-signing-config") from None
        self._check_target(info, data, path)
        return data

    @staticmethod
    def _check_target(info: TargetFile, data: bytes, path: Path) -> None:
        from tuf.api.exceptions import LengthOrHashMismatchError

        try:
            info.verify_length_and_hashes(data)
        except LengthOrHashMismatchError:
            raise SiteError(f"is not the {info.path} the site targets list (length or "
                            "sha256 differs)", subject=str(path), check="site-signing-config",
                            hint="set it again: airseal site signing-config --set FILE") from None

    def publish_signing_config(self, document: bytes | None, *, now: datetime
                               ) -> SigningOutcome:
        """A targets change that sets (``document``) or clears (None) the site's Sigstore
        signing config. The document is checked first (size, media type, ``rekorTlogUrls``,
        validity, selector); a refused one leaves nothing stored or proposed."""
        from airseal.appliance.rekor_client import rekor_from_signing_config

        self.require()
        if document is not None:
            rekor_from_signing_config(document, None, now)
        elif self.signing_config() is None:
            raise UsageError("the site has no signing config to clear",
                             hint="`airseal site signing-config` shows it")
        reason = "signing-config.set" if document is not None else "signing-config.clear"
        return self._propose_policy(self.policy(), now=now, reason=reason,
                                    signing_config=document)

    def _propose_policy(self, policy: DistributorPolicy, *, now: datetime, reason: str,
                        signing_config: bytes | Literal["keep"] | None = "keep"
                        ) -> SigningOutcome:
        if (self.pending_dir / "targets.json").is_file():
            raise SigningPending("a targets change is already waiting for signatures",
                                 subject=str(self.pending_dir / "targets.json"))
        if isinstance(signing_config, str):  # "keep": the published one stays
            signing_config = self.signing_config()
        data = policy.to_bytes()
        current = self._targets()
        targets = Targets(
            version=1 if current is None else current.signed.version + 1,
            expires=_expiry(now, _days(self.db, "site.targets-days")),
        )
        targets.targets[POLICY_TARGET] = TargetFile.from_data(POLICY_TARGET, data, ["sha256"])
        trusted_root = self._log_trusted_root()
        if trusted_root is not None:
            targets.targets[TRUSTED_ROOT_TARGET] = TargetFile.from_data(
                TRUSTED_ROOT_TARGET, trusted_root, ["sha256"])
        copy = self.pending_dir / SIGNING_CONFIG_COPY
        if signing_config is None:
            copy.unlink(missing_ok=True)
        else:
            targets.targets[SIGNING_CONFIG_TARGET] = TargetFile.from_data(
                SIGNING_CONFIG_TARGET, signing_config, ["sha256"])
            self.pending_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(copy, signing_config, mode=0o600)
        audit.record(self.home, self.db, "site.propose", f"targets v{targets.version}",
                     {"reason": reason, "policySha256": hashlib.sha256(data).hexdigest()},
                     now=now)
        return self._sign_event(Metadata(targets), now=now, policy_bytes=data)

    def add_distributor(self, key: str, *, name: str | None, may_sign: Iterable[Purpose],
                        now: datetime) -> SigningOutcome:
        self.require()
        public_key, default_name = self._distributor_key(key)
        entry = new_distributor(public_key, name=name or default_name, may_sign=may_sign,
                                valid_from=now.replace(microsecond=0))
        policy = self.policy().with_distributor(entry)
        return self._propose_policy(policy, now=now, reason=f"distributor.add {entry.name}")

    def set_action_threshold(self, threshold: int, *, now: datetime) -> SigningOutcome:
        self.require()
        policy = self.policy()
        if not 1 <= threshold <= 16:
            raise UsageError("the action threshold must be from 1 to 16", subject="THRESHOLD")
        able = len(policy.trusted("actions", now))
        if threshold > able:
            raise UsageError(f"only {able} distributor(s) may sign actions: a threshold of "
                             f"{threshold} could never be met", subject="THRESHOLD",
                             hint="add distributors first: airseal distributor add")
        changed = replace(policy, action_threshold=threshold, _by_fp={})
        return self._propose_policy(changed, now=now, reason=f"distributor.threshold {threshold}")

    def retire_distributor(self, key: str, *, now: datetime) -> SigningOutcome:
        self.require()
        fp = self._distributor_fingerprint(key)
        policy = self.policy().retired(fp, now.replace(microsecond=0))
        return self._propose_policy(policy, now=now, reason=f"distributor.retire {fp}")

    def revoke_distributor(self, key: str, *, reason: str, now: datetime) -> SigningOutcome:
        self.require()
        fp = self._distributor_fingerprint(key)
        policy = self.policy().revoked(fp, now.replace(microsecond=0), reason)
        return self._propose_policy(policy, now=now, reason=f"distributor.revoke {fp}")

    def _distributor_key(self, key: str) -> tuple[Any, str]:
        path = Path(key)
        if path.is_file():
            return load_public_key(path.read_bytes(), subject=key), path.stem
        record = get_key(self.db, key)
        return record.public_key, record.name

    def _distributor_fingerprint(self, key: str) -> str:
        if len(key) == 64 and all(c in "0123456789abcdef" for c in key):
            return key
        from airseal.trustroot.keys import fingerprint

        return fingerprint(self._distributor_key(key)[0])

    def rotate_root(self, *, add: Sequence[str], remove: Sequence[str], threshold: int | None,
                    now: datetime, online_key: str | None = None) -> SigningOutcome:
        """A new root version with root keys added or removed (and, with ``online_key``, a new
        snapshot/timestamp key: recovery after the online key leaked), signed by the old root's
        threshold and the new one's."""
        self.require()
        if (self.pending_dir / "root.json").is_file():
            raise SigningPending("a root change is already waiting for signatures",
                                 subject=str(self.pending_dir / "root.json"))
        current = self.root()
        new = Metadata[Root].from_bytes(current.to_bytes())
        new.signatures.clear()
        root = new.signed
        for name in remove:
            keyid = tuf_key(get_key(self.db, name).public_key).keyid
            if keyid not in root.roles["root"].keyids:
                raise UsageError(f"key {name} is not a root key", subject="--remove-key")
            root.revoke_key(keyid, "root")
        for name in add:
            root.add_key(self._role_key(name, "--add-key")[1], "root")
        if online_key is not None:
            new_key = self._role_key(online_key, "--online-key")[1]
            for role in ("snapshot", "timestamp"):
                for keyid in list(root.roles[role].keyids):
                    root.revoke_key(keyid, role)
                root.add_key(new_key, role)
        if threshold is not None:
            root.roles["root"].threshold = threshold
        if root.roles["root"].threshold > len(root.roles["root"].keyids):
            raise UsageError(
                f"the root threshold {root.roles['root'].threshold} is more than its "
                f"{len(root.roles['root'].keyids)} key(s)", subject="--threshold")
        root.version += 1
        root.expires = _expiry(now, _days(self.db, "site.root-days"))
        audit.record(self.home, self.db, "site.rotate-root", f"root v{root.version}",
                     {"add": list(add), "remove": list(remove), "onlineKey": online_key,
                      "threshold": root.roles["root"].threshold}, now=now)
        return self._sign_event(new, now=now)

    # -- online roles ----------------------------------------------------------------------------

    def refresh_timestamp(self, *, now: datetime, new_snapshot: bool = False,
                          log: bool = True) -> list[MetadataVersion]:
        """Sign a new timestamp (and, when asked or near expiry, a new snapshot) with the
        online key: done at every export. Returns the new versions; they are appended to the
        log here unless ``log`` is false (an export logs them after its statement, so that a
        witnessed checkpoint stays the one its media carries: :mod:`.site_log`)."""
        self.require()
        targets = self._targets()
        if self._latest("root") is None or targets is None:
            raise SigningPending("the site repository's first root or targets still waits "
                                 "for signatures")
        online = get_key(self.db, self._config()["onlineKey"])
        ts_days = _days(self.db, "site.timestamp-days")
        snapshot = self._snapshot()
        if (
            new_snapshot
            or snapshot is None
            or snapshot.signed.meta["targets.json"].version != targets.signed.version
            or snapshot.signed.expires < now + ts_days
        ):
            snapshot_md = Metadata(Snapshot(
                version=1 if snapshot is None else snapshot.signed.version + 1,
                expires=_expiry(now, _days(self.db, "site.targets-days")),
                meta={"targets.json": MetaFile(targets.signed.version)},
            ))
        else:
            snapshot_md = snapshot
        old = self._timestamp()
        timestamp = Metadata(Timestamp(
            version=1 if old is None else old.signed.version + 1,
            expires=_expiry(now, ts_days),
            snapshot_meta=MetaFile(snapshot_md.signed.version),
            unrecognized_fields={ISSUED_FIELD: now.astimezone(UTC).isoformat(timespec="seconds")},
        ))
        with open_signer(self.home, online, self.prompter) as signer:
            if snapshot_md is not snapshot:
                _sign(snapshot_md, signer, append=False)
            _sign(timestamp, signer, append=False)
        snapshot_data = snapshot_md.to_bytes(_SERIALIZER)
        timestamp_data = timestamp.to_bytes(_SERIALIZER)
        new = [MetadataVersion("snapshot", snapshot_md.signed.version, snapshot_data)
               ] if snapshot_md is not snapshot else []
        new.append(MetadataVersion("timestamp", timestamp.signed.version, timestamp_data))
        if log:
            log_metadata(self.home, self.db, self.prompter, new)
        if snapshot_md is not snapshot:
            write_atomic(self.metadata_dir / f"{snapshot_md.signed.version}.snapshot.json",
                         snapshot_data, mode=0o644)
        write_atomic(self.metadata_dir / "timestamp.json", timestamp_data, mode=0o644)
        return new

    # -- media -----------------------------------------------------------------------------------

    def media_files(self) -> list[tuple[str, Path]]:
        """(path under ``airseal/``, source) for every file an export carries: every root
        version, the newest targets and snapshot, the timestamp and the policy target."""
        self.require()
        files: list[tuple[str, Path]] = []
        for path in sorted(self.metadata_dir.glob("*.root.json")):
            files.append((f"tuf/metadata/{path.name}", path))
        for role in ("targets", "snapshot"):
            latest = self._latest(role)
            if latest is None:
                raise SigningPending(f"the site repository has no published {role} yet")
            files.append((f"tuf/metadata/{latest[1].name}", latest[1]))
        files.append(("tuf/metadata/timestamp.json", self.metadata_dir / "timestamp.json"))
        targets = self._targets()
        assert targets is not None
        for info in targets.signed.targets.values():
            source = self._target_path(info)
            files.append((f"tuf/targets/{source.relative_to(self.targets_dir).as_posix()}",
                          source))
        return files

    def status(self, *, now: datetime) -> SiteStatus:
        self.require()
        out = SiteStatus()
        root = self.root() if self._latest("root") is not None else None
        latest: dict[str, Metadata[Any] | None] = {
            "root": root, "targets": self._targets(), "snapshot": self._snapshot(),
            "timestamp": self._timestamp(),
        }
        for role, md in latest.items():
            if md is None or root is None:
                continue
            info = root.signed.roles[role]
            out.roles.append({
                "role": role, "version": md.signed.version,
                "threshold": info.threshold, "keys": self._key_names(info.keyids),
                "expires": md.signed.expires.isoformat(),
                "expiresInDays": (md.signed.expires - now).days,
            })
        for role in OFFLINE_ROLES:
            path = self.pending_dir / f"{role}.json"
            if path.is_file():
                pending: Metadata[Any] = Metadata.from_bytes(path.read_bytes())
                needed = self._requirements(pending)
                out.pending.append({
                    "role": role, "version": pending.signed.version,
                    "signatures": len(pending.signatures),
                    "threshold": "+".join(str(r.threshold) for _, r in needed),
                })
        if latest["targets"] is not None:
            policy = self.policy()
            out.action_threshold = policy.action_threshold
            for d in policy.distributors:
                revoked = policy.revocation(d.fingerprint)
                entry = d.to_json()
                entry.pop("publicKey")
                entry["revoked"] = revoked.to_json() if revoked else None
                out.distributors.append(entry)
        return out


    def awaiting_approval(self, actions: Iterable[ActionRecord], *,
                          now: datetime) -> list[AwaitingApproval]:
        """The ``actions`` below the published policy's action threshold, counting each
        distributor key that may sign actions at ``now`` once (as endpoints count them)."""
        from airseal.trustroot.bundle import parse_bundle
        from airseal.trustroot.verify import dsse_signers

        if not self.exists or self._latest("targets") is None:
            return []
        policy = self.policy()
        trusted = {d.fingerprint: d for d in policy.trusted("actions", now)}
        keys = {fp: d.public_key for fp, d in trusted.items()}
        ours = [(r.name, r.fingerprint) for r in list_keys(self.db)
                if r.fingerprint in trusted and not r.reference.get("retired")]
        out = []
        for record in actions:
            bundle = parse_bundle(record.bundle.encode(), subject=f"action {record.id}")
            signers = dsse_signers(keys, bundle, subject=f"action {record.id}")
            if len(signers) < policy.action_threshold:
                out.append(AwaitingApproval(
                    record.id, record.version, record.name, record.key_name, len(signers),
                    policy.action_threshold,
                    tuple(sorted(trusted[fp].name for fp in signers)),
                    tuple(name for name, fp in ours if fp not in signers),
                ))
        return out


def _sign(md: Metadata[Any], signer: Signer, *, append: bool = True) -> Signature:
    """Sign ``md`` through our signer. python-tuf wraps whatever a signer raises in
    UnsignedMetadataError; a device's own error (a wrong PIN with the tries left, a touch not
    confirmed) is given back as it was raised, so it is reported as such and not as a bug."""
    try:
        return md.sign(TufSigner(signer), append=append)
    except UnsignedMetadataError as error:
        if isinstance(error.__cause__, AirsealError):
            raise error.__cause__ from None
        raise


def _check_threshold(flag: str, threshold: int, keys: Sequence[str], key_flag: str) -> None:
    if not keys:
        raise UsageError(f"give at least one {key_flag}", subject=key_flag)
    if len(set(keys)) != len(keys):
        raise UsageError(f"a key is named twice in {key_flag}", subject=key_flag)
    if not 1 <= threshold <= len(keys):
        raise UsageError(f"{flag} {threshold} must be from 1 to the {len(keys)} key(s) given",
                         subject=flag)


def _json(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def sign_request(home: Home, db: sqlite_utils.Database, prompter: Prompter, source: Path,
                 key_name: str) -> list[SignatureAttempt]:
    """A key holder signs the request on media with one key of their own appliance (no site
    repository needed there); the signature is checked before it is written."""
    folder = Path(source) / REQUEST_DIR
    record = get_key(db, key_name)
    key = tuf_key(record.public_key)
    attempts = []
    for role in OFFLINE_ROLES:
        path = folder / f"{role}.json"
        if not path.is_file():
            continue
        if path.stat().st_size > MAX_REQUEST_BYTES:
            raise SiteError(f"is over {MAX_REQUEST_BYTES} bytes", subject=str(path))
        md: Metadata[Any] = Metadata.from_bytes(path.read_bytes())
        with open_signer(home, record, prompter) as signer:
            signature = _sign(md, signer)
        key.verify_signature(signature, md.signed_bytes)
        write_atomic(path, md.to_bytes(_SERIALIZER), mode=0o644)
        audit.record(home, db, "site.sign-request", f"{role} v{md.signed.version}",
                     {"key": key_name, "media": str(folder)})
        attempts.append(SignatureAttempt(f"{role} v{md.signed.version}: {key_name}", True))
    if not attempts:
        raise UsageError("no signing request found", subject=str(folder))
    return attempts
