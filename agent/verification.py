"""Every trust decision of an import, as pure functions: bytes and ``now`` in, verified values or
typed errors out (python-tuf's ``TrustedMetadataSet``). Nothing here reads media or the journal.

Check 2 of 3 is made of these, in this order (the pipeline in :mod:`airseal.agent.importer` calls
them):

1. :func:`verify_export_bundle`: the export statement's DSSE signature with a key the
   :class:`airseal.agent.trust.TrustSource` allows to sign exports, the statement's shape, that it
   names
   the key that signed it, and its freshness (``expires`` against ``now``);
2. :func:`check_sequence`: not older than the newest export already accepted from that
   distributor (a replay or rollback), and not another export under the same sequence;
3. (the listing rules and every file's digest: :func:`airseal.media.reader.verify_media_files`);
4. :func:`verify_action_bundle`: each action's own DSSE statement, signed by a key allowed to
   sign actions, with the exact bytes the listing names, matching the listing's entry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from airseal.agent.errors import (
    ActionStatementMismatch,
    DistributorMismatch,
    ExpiredMedia,
    MediaFromTheFuture,
    ReplayedMedia,
    UnsafeDestination,
    UntrustedDistributor,
)
from airseal.agent.platforms import destination_problem
from airseal.agent.trust import Purpose, TrustedKey, TrustSource, hint_to_fingerprint
from airseal.media.errors import MediaDigestMismatch
from airseal.media.statement import (
    ActionPredicate,
    ExportContents,
    ExportedAction,
    read_action_statement,
    read_export_statement,
)
from airseal.trustroot.bundle import Bundle, parse_bundle
from airseal.trustroot.verify import verify_dsse_bundle

CLOCK_SKEW = timedelta(days=1)
"""How far in the future an export's creation time may be before the endpoint clock is doubted."""


@dataclass(frozen=True)
class VerifiedExport:
    """An export statement whose signature, signer, shape and freshness verified."""

    contents: ExportContents
    distributor: TrustedKey
    bundle_sha256: str
    subject: str

    @property
    def export_id(self) -> str:
        return self.contents.predicate.export_id

    @property
    def sequence(self) -> int:
        return self.contents.predicate.sequence


@dataclass(frozen=True)
class VerifiedAction:
    """An action statement, verified and matched to the export's listing."""

    listed: ExportedAction
    predicate: ActionPredicate
    signer: TrustedKey
    subject: str
    """The action bundle's path on the media (relative to the mount point)."""

    @property
    def id(self) -> str:
        return self.predicate.id

    @property
    def version(self) -> int:
        return self.predicate.version


@dataclass(frozen=True)
class SequenceRecord:
    """What the journal remembers of a distributor's newest accepted export."""

    last_sequence: int
    last_export_id: str | None
    last_export_sha256: str | None


SequenceVerdict = Literal["new", "repeat"]


def _signing_key(bundle: Bundle, trust: TrustSource, purpose: Purpose, subject: str) -> TrustedKey:
    material = bundle.verification_material.public_key
    hint = material.hint if material is not None else None
    if hint:
        fingerprint = hint_to_fingerprint(hint)
        key = trust.key(fingerprint, purpose) if fingerprint else None
        if key is None:
            shown = fingerprint or hint
            raise UntrustedDistributor(
                f"signed by key {shown}, which is not trusted to sign {purpose} here",
                subject=subject,
            )
        return key
    candidates = trust.keys(purpose)
    if len(candidates) == 1:
        return candidates[0]
    raise UntrustedDistributor(
        "the bundle does not name its signing key (no publicKey hint)", subject=subject
    )


def verify_export_bundle(
    data: bytes, trust: TrustSource, *, now: datetime, subject: str
) -> VerifiedExport:
    """Check 2, step 1: signature by a trusted export signer, shape, signer named, freshness."""
    bundle = parse_bundle(data, subject=subject)
    key = _signing_key(bundle, trust, "exports", subject)
    statement = verify_dsse_bundle(key.public_key, bundle, subject=subject)
    contents = read_export_statement(statement, subject=subject)
    predicate = contents.predicate
    if predicate.distributor != key.fingerprint:
        raise DistributorMismatch(
            f"the statement names distributor {predicate.distributor}, but was signed by "
            f"{key.fingerprint} ({key.name})",
            subject=subject,
        )
    check_freshness(contents, now=now, subject=subject)
    return VerifiedExport(contents, key, hashlib.sha256(data).hexdigest(), subject)


def check_freshness(contents: ExportContents, *, now: datetime, subject: str) -> None:
    predicate = contents.predicate
    if now >= predicate.expires:
        raise ExpiredMedia(
            f"export {predicate.export_id} expired at {predicate.expires.isoformat()} "
            f"(now {now.isoformat(timespec='seconds')})",
            subject=subject,
        )
    if predicate.created > now + CLOCK_SKEW:
        raise MediaFromTheFuture(
            f"export {predicate.export_id} was created at {predicate.created.isoformat()}, "
            f"after this endpoint's clock ({now.isoformat(timespec='seconds')})",
            subject=subject,
        )


def check_sequence(export: VerifiedExport, record: SequenceRecord | None) -> SequenceVerdict:
    """Check 2, step 2: ``new`` (newer than anything accepted), ``repeat`` (the very export
    accepted last, byte for byte: re-importing it is idempotent), else :class:`ReplayedMedia`."""
    if record is None or export.sequence > record.last_sequence:
        return "new"
    if export.sequence == record.last_sequence:
        if (
            export.export_id == record.last_export_id
            and export.bundle_sha256 == record.last_export_sha256
        ):
            return "repeat"
        raise ReplayedMedia(
            f"export {export.export_id} has sequence {export.sequence}, which export "
            f"{record.last_export_id} already used",
            subject=export.subject,
        )
    raise ReplayedMedia(
        f"export {export.export_id} has sequence {export.sequence}; export "
        f"{record.last_export_id} with sequence {record.last_sequence} was already accepted",
        subject=export.subject,
    )


def verify_action_bundle(
    data: bytes,
    listed: ExportedAction,
    listed_sha256: str,
    trust: TrustSource,
    *,
    subject: str,
) -> VerifiedAction:
    """Check 2, step 4: the action bundle is the listed file, signed by a trusted action signer,
    and says what the listing says (id, version, name, payload name, digest and size)."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != listed_sha256:
        raise MediaDigestMismatch(
            f"sha256 is {actual}, the statement lists {listed_sha256}", subject=subject
        )
    bundle = parse_bundle(data, subject=subject)
    key = _signing_key(bundle, trust, "actions", subject)
    statement = verify_dsse_bundle(key.public_key, bundle, subject=subject)
    predicate = read_action_statement(statement, subject=subject)
    mismatches = [
        f"{label} {theirs!r} (listed {ours!r})"
        for label, ours, theirs in (
            ("id", listed.id, predicate.id),
            ("version", listed.version, predicate.version),
            ("name", listed.name, predicate.name),
            ("payload name", listed.payload.name, predicate.payload.name),
            ("payload sha256", listed.payload.sha256, predicate.payload.sha256),
            ("payload size", listed.payload.size, predicate.payload.size),
        )
        if ours != theirs
    ]
    if mismatches:
        raise ActionStatementMismatch(
            "the signed action differs from the export's listing: " + "; ".join(mismatches),
            subject=subject,
        )
    if predicate.download is not None:
        problem = destination_problem(predicate.download.dest, predicate.os)
        if problem is not None:
            raise UnsafeDestination(
                f"download destination {predicate.download.dest!r} {problem}", subject=subject
            )
    return VerifiedAction(listed, predicate, key, subject)
