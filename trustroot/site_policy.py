"""The site's distributor policy: which keys may sign exports and actions, as TUF target bytes.

The policy is the target ``airseal/policy.json`` of the site TUF repository: signed by the
targets role's offline keys, carried on every medium, and read by agents only after
:mod:`tuf.ngclient` verified it. This module is pure (bytes and ``now`` in, decisions out): it
parses the document strictly (unknown fields refused: the format is ours), builds it for the
appliance, and answers "may the key with this fingerprint sign this purpose at this time, and if
not, why not". It never reads the disk or the clock.

Shape (camelCase, ``schemaVersion`` 1)::

    {"schemaVersion": 1, "type": "airseal-distributor-policy", "actionThreshold": 1,
     "distributors": [{"fingerprint": hex, "name": str, "publicKey": PEM SPKI,
                       "maySign": ["exports", "actions"], "validFrom": iso, "validUntil": iso|null,
                       "status": "active"|"retired", "statusSince": iso|null}],
     "revocations": [{"fingerprint": hex, "revoked": iso, "reason": str}],
     "log": {"required": bool, "witnesses": [vkey], "witnessQuorum": int}}

``log`` (optional) is what endpoints demand of the transparency log proofs on media: absent or
``required`` true means a missing or bad proof is a refusal once the site's trusted root names a
log; ``witnesses`` are C2SP vkeys (``<name>+<key id>+<base64 Ed25519 key>``) of which
``witnessQuorum`` must have cosigned the media's checkpoint.

A revoked key stays revoked for good (it is listed apart from the distributors so that a later
policy cannot quietly re-add it without also dropping the revocation, which reviewers see).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal

from airseal.trustroot.errors import VerificationError
from airseal.trustroot.keys import PublicKey, fingerprint, load_public_key
from airseal.trustroot.tlog.cosignature import WitnessKey
from airseal.trustroot.untrusted_json import load_json

POLICY_TARGET: Final = "airseal/policy.json"
TRUSTED_ROOT_TARGET: Final = "airseal/trusted_root.json"
"""The site TUF target holding the log's Sigstore ``trusted_root.json`` (once a log exists)."""
SIGNING_CONFIG_TARGET: Final = "airseal/signing_config.json"
"""The site TUF target holding the site's Sigstore ``signing_config.json`` (once one is set):
which Rekor, and which Rekor API version, the site's signers use."""
MAX_WITNESSES: Final = 32
ISSUED_FIELD: Final = "x-airseal-issued"
"""A field of the site timestamp: when the appliance signed it. Agents keep the newest as their
time floor (metadata expired at that time is refused whatever the endpoint clock says)."""
POLICY_TYPE: Final = "airseal-distributor-policy"
SCHEMA_VERSION: Final = 1
MAX_POLICY_BYTES: Final = 1024 * 1024
MAX_DISTRIBUTORS: Final = 1000
MAX_NAME_CHARS: Final = 128

Purpose = Literal["exports", "actions"]
PURPOSES: Final[tuple[Purpose, ...]] = ("exports", "actions")
Status = Literal["active", "retired"]
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class PolicyError(VerificationError):
    """The policy target is not a well-formed distributor policy."""

    title = "Invalid distributor policy"
    check = "policy"
    hint = "the site repository's policy target is damaged; export again from the appliance"


@dataclass(frozen=True)
class Revocation:
    fingerprint: str
    revoked: datetime
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "revoked": _iso(self.revoked),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Distributor:
    """One distributor key as the policy names it."""

    fingerprint: str
    name: str
    public_key_pem: str
    may_sign: frozenset[Purpose]
    valid_from: datetime
    valid_until: datetime | None = None
    status: Status = "active"
    status_since: datetime | None = None

    @property
    def public_key(self) -> PublicKey:
        return load_public_key(self.public_key_pem.encode(), subject=f"distributor {self.name}")

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "name": self.name,
            "publicKey": self.public_key_pem,
            "maySign": [p for p in PURPOSES if p in self.may_sign],
            "validFrom": _iso(self.valid_from),
            "validUntil": _iso(self.valid_until) if self.valid_until else None,
            "status": self.status,
            "statusSince": _iso(self.status_since) if self.status_since else None,
        }


@dataclass(frozen=True)
class LogPolicy:
    """What endpoints require of the log's proofs on media."""

    required: bool = True
    witnesses: tuple[WitnessKey, ...] = ()
    witness_quorum: int = 0

    def __post_init__(self) -> None:
        if self.witnesses and not 1 <= self.witness_quorum <= len(self.witnesses):
            raise PolicyError("witnessQuorum must be from 1 to the number of witnesses",
                              check="witness-quorum")
        if not self.witnesses and self.witness_quorum:
            raise PolicyError("witnessQuorum is set but no witness is named",
                              check="witness-quorum")
        if not self.required and self.witnesses:
            raise PolicyError("witnesses are named but the log is not required",
                              check="witness-quorum",
                              hint="a quorum that may be skipped is no quorum: require the log")

    def to_json(self) -> dict[str, Any]:
        return {"required": self.required, "witnesses": [w.vkey() for w in self.witnesses],
                "witnessQuorum": self.witness_quorum}


@dataclass(frozen=True)
class DistributorPolicy:
    """A parsed, well-formed policy. Built by :func:`parse_policy` or by the appliance."""

    distributors: tuple[Distributor, ...] = ()
    revocations: tuple[Revocation, ...] = ()
    action_threshold: int = 1
    log: LogPolicy | None = None
    """``None``: the policy says nothing, so a log named by the trusted root is required."""
    _by_fp: dict[str, Distributor] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_fp.clear()
        self._by_fp.update({d.fingerprint: d for d in self.distributors})

    # -- decisions ------------------------------------------------------------------------------

    def revocation(self, fp: str) -> Revocation | None:
        return next((r for r in self.revocations if r.fingerprint == fp), None)

    def distributor(self, fp: str) -> Distributor | None:
        return self._by_fp.get(fp)

    def refusal(self, fp: str, purpose: Purpose, now: datetime) -> str | None:
        """Why the key ``fp`` may not sign ``purpose`` at ``now``; ``None`` when it may."""
        revoked = self.revocation(fp)
        if revoked is not None:
            return (
                f"key {fp} was revoked by the site policy on {_iso(revoked.revoked)}"
                f" ({revoked.reason})"
            )
        found = self._by_fp.get(fp)
        if found is None:
            return f"key {fp} is not a distributor in the site policy"
        if found.status == "retired":
            since = f" on {_iso(found.status_since)}" if found.status_since else ""
            return f"distributor {found.name} (key {fp}) was retired by the site policy{since}"
        if purpose not in found.may_sign:
            return f"distributor {found.name} (key {fp}) may not sign {purpose} in the site policy"
        if now < found.valid_from:
            return f"distributor {found.name} is valid only from {_iso(found.valid_from)}"
        if found.valid_until is not None and now >= found.valid_until:
            return f"distributor {found.name}'s validity ended on {_iso(found.valid_until)}"
        return None

    def trusted(self, purpose: Purpose, now: datetime) -> tuple[Distributor, ...]:
        """Every distributor that may sign ``purpose`` at ``now``."""
        return tuple(
            d for d in self.distributors if self.refusal(d.fingerprint, purpose, now) is None
        )

    # -- changes (the appliance builds new versions through these) -------------------------------

    def with_distributor(self, distributor: Distributor) -> DistributorPolicy:
        if self.revocation(distributor.fingerprint) is not None:
            raise PolicyError(
                f"key {distributor.fingerprint} is revoked and cannot be a distributor again",
                check="revocation",
                hint="make a new key for this distributor",
            )
        others = tuple(d for d in self.distributors if d.fingerprint != distributor.fingerprint)
        return replace(self, distributors=(*others, distributor), _by_fp={})

    def retired(self, fp: str, now: datetime) -> DistributorPolicy:
        found = self._require(fp)
        changed = replace(found, status="retired", status_since=now)
        return replace(
            self,
            distributors=tuple(changed if d.fingerprint == fp else d for d in self.distributors),
            _by_fp={},
        )

    def revoked(self, fp: str, now: datetime, reason: str) -> DistributorPolicy:
        self._require(fp)
        if self.revocation(fp) is not None:
            return self
        return replace(
            self,
            revocations=(*self.revocations, Revocation(fp, now, reason)),
            _by_fp={},
        )

    def _require(self, fp: str) -> Distributor:
        found = self._by_fp.get(fp)
        if found is None:
            raise PolicyError(f"key {fp} is not a distributor in the site policy", check="policy",
                              hint="see `airseal distributor list`")
        return found

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": SCHEMA_VERSION,
            "type": POLICY_TYPE,
            "actionThreshold": self.action_threshold,
            "distributors": [d.to_json() for d in self.distributors],
            "revocations": [r.to_json() for r in self.revocations],
        }
        if self.log is not None:
            out["log"] = self.log.to_json()
        return out

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n").encode()


def new_distributor(
    public_key: PublicKey,
    *,
    name: str,
    may_sign: Iterable[Purpose],
    valid_from: datetime,
    valid_until: datetime | None = None,
) -> Distributor:
    from airseal.trustroot.keys import spki_pem

    purposes = frozenset(may_sign)
    _check_name(name, "distributor")
    if not purposes or not purposes <= set(PURPOSES):
        raise PolicyError("a distributor may sign exports, actions or both", check="may-sign")
    return Distributor(
        fingerprint=fingerprint(public_key),
        name=name,
        public_key_pem=spki_pem(public_key).decode(),
        may_sign=purposes,
        valid_from=valid_from,
        valid_until=valid_until,
    )


# -- parsing ------------------------------------------------------------------------------------


def parse_policy(data: bytes, *, subject: str = POLICY_TARGET) -> DistributorPolicy:
    """A well-formed policy from hostile bytes, or :class:`PolicyError` naming what is wrong."""
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(f"is {len(data)} bytes, over {MAX_POLICY_BYTES}", subject=subject,
                          check="size")
    raw = load_json(data, subject=subject, error=PolicyError)
    top = _object(raw, {"schemaVersion", "type", "actionThreshold", "distributors",
                        "revocations", "log"}, subject, "policy")
    if top.get("schemaVersion") != SCHEMA_VERSION or top.get("type") != POLICY_TYPE:
        raise PolicyError(
            f"is not an {POLICY_TYPE} of schemaVersion {SCHEMA_VERSION}", subject=subject,
            check="schema",
        )
    threshold = top.get("actionThreshold", 1)
    if not isinstance(threshold, int) or isinstance(threshold, bool) or not 1 <= threshold <= 16:
        raise PolicyError("actionThreshold must be a whole number from 1 to 16", subject=subject)
    entries = _list(top.get("distributors", []), subject, "distributors")
    revocations = _list(top.get("revocations", []), subject, "revocations")
    if len(entries) > MAX_DISTRIBUTORS or len(revocations) > MAX_DISTRIBUTORS:
        raise PolicyError(f"lists more than {MAX_DISTRIBUTORS} keys", subject=subject,
                          check="size")
    distributors = tuple(_distributor(e, subject) for e in entries)
    seen = [d.fingerprint for d in distributors]
    if len(set(seen)) != len(seen):
        raise PolicyError("names a distributor key twice", subject=subject)
    return DistributorPolicy(
        distributors=distributors,
        revocations=tuple(_revocation(r, subject) for r in revocations),
        action_threshold=threshold,
        log=None if top.get("log") is None else _log_policy(top["log"], subject),
    )


def _log_policy(raw: Any, subject: str) -> LogPolicy:
    entry = _object(raw, {"required", "witnesses", "witnessQuorum"}, subject, "log policy")
    required = entry.get("required", True)
    if not isinstance(required, bool):
        raise PolicyError("log.required must be true or false", subject=subject)
    vkeys = _list(entry.get("witnesses", []), subject, "log.witnesses")
    if len(vkeys) > MAX_WITNESSES:
        raise PolicyError(f"names more than {MAX_WITNESSES} witnesses", subject=subject)
    witnesses = []
    for vkey in vkeys:
        try:
            witnesses.append(WitnessKey.from_vkey(vkey if isinstance(vkey, str) else ""))
        except ValueError as exc:
            raise PolicyError(f"log.witnesses: {exc}", subject=subject, check="witness") from None
    if len({w.name for w in witnesses}) != len(witnesses):
        raise PolicyError("names a witness twice", subject=subject, check="witness")
    quorum = entry.get("witnessQuorum", 0)
    if not isinstance(quorum, int) or isinstance(quorum, bool):
        raise PolicyError("log.witnessQuorum must be a whole number", subject=subject)
    try:
        return LogPolicy(required, tuple(witnesses), quorum)
    except PolicyError as exc:
        raise PolicyError(exc.detail, subject=subject, check=exc.check) from None


def _distributor(raw: Any, subject: str) -> Distributor:
    keys = {"fingerprint", "name", "publicKey", "maySign", "validFrom", "validUntil", "status",
            "statusSince"}
    entry = _object(raw, keys, subject, "distributor")
    fp = _fingerprint(entry.get("fingerprint"), subject)
    name = _check_name(entry.get("name"), "distributor", subject)
    pem = entry.get("publicKey")
    if not isinstance(pem, str):
        raise PolicyError(f"distributor {name} has no publicKey", subject=subject)
    key = load_public_key(pem.encode(), subject=subject)
    if fingerprint(key) != fp:
        raise PolicyError(
            f"distributor {name}'s public key has fingerprint {fingerprint(key)}, not {fp}",
            subject=subject, check="fingerprint",
        )
    purposes = _list(entry.get("maySign"), subject, "maySign")
    if not purposes or any(p not in PURPOSES for p in purposes):
        raise PolicyError(f"distributor {name}: maySign must list exports and/or actions",
                          subject=subject)
    status = entry.get("status", "active")
    if status not in ("active", "retired"):
        raise PolicyError(f"distributor {name}: status {status!r} is not active or retired",
                          subject=subject)
    until = entry.get("validUntil")
    since = entry.get("statusSince")
    return Distributor(
        fingerprint=fp,
        name=name,
        public_key_pem=pem,
        may_sign=frozenset(purposes),
        valid_from=_time(entry.get("validFrom"), subject, "validFrom"),
        valid_until=None if until is None else _time(until, subject, "validUntil"),
        status=status,
        status_since=None if since is None else _time(since, subject, "statusSince"),
    )


def _revocation(raw: Any, subject: str) -> Revocation:
    entry = _object(raw, {"fingerprint", "revoked", "reason"}, subject, "revocation")
    reason = entry.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 512:
        raise PolicyError("a revocation's reason must be text of at most 512 characters",
                          subject=subject)
    return Revocation(
        _fingerprint(entry.get("fingerprint"), subject),
        _time(entry.get("revoked"), subject, "revoked"),
        "".join(c if c.isprintable() else "?" for c in reason),
    )


def _object(raw: Any, allowed: set[str], subject: str, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise PolicyError(f"a {what} must be a JSON object", subject=subject)
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise PolicyError(f"a {what} has unknown fields {unknown}", subject=subject)
    return raw


def _list(raw: Any, subject: str, what: str) -> list[Any]:
    if not isinstance(raw, list):
        raise PolicyError(f"{what} must be a JSON array", subject=subject)
    return raw


def _fingerprint(raw: Any, subject: str) -> str:
    if not isinstance(raw, str) or not _HEX64.match(raw):
        raise PolicyError("a fingerprint must be 64 lower-case hex digits", subject=subject)
    return raw


def _check_name(raw: Any, what: str, subject: str | None = None) -> str:
    if (
        not isinstance(raw, str)
        or not raw.strip()
        or len(raw) > MAX_NAME_CHARS
        or not raw.isprintable()
    ):
        raise PolicyError(f"a {what} name must be 1-{MAX_NAME_CHARS} printable characters",
                          subject=subject, check="name")
    return raw


def _time(raw: Any, subject: str, what: str) -> datetime:
    if not isinstance(raw, str) or len(raw) > 40:
        raise PolicyError(f"{what} must be an ISO 8601 time", subject=subject)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise PolicyError(f"{what} {raw!r} is not an ISO 8601 time", subject=subject) from None
    if value.tzinfo is None:
        raise PolicyError(f"{what} {raw!r} has no time zone", subject=subject)
    return value.astimezone(UTC)


def _iso(value: datetime | None) -> str:
    assert value is not None
    return value.astimezone(UTC).isoformat(timespec="seconds")
