"""Every trust decision of an import: check 2 of 3, pure (python-tuf's ``TrustedMetadataSet``).

Bytes, what the agent remembers and ``now`` go in; verified values or typed refusals come out.
:class:`MediaVerifier` reads the media only through the :class:`airseal.media.reader.MediaSource`
it is given, never the journal, never the clock; it writes nothing, stages nothing, runs nothing.
Its result, :class:`VerifiedMedia`, is all that :mod:`airseal.agent.runner` may act on.

Check 2 is made of these, in this order:

1. :func:`verify_export_bundle`: the export statement's DSSE signature with a key the
   :class:`airseal.agent.trust.TrustSource` allows to sign exports, the statement's shape, that it
   names
   the key that signed it, and its freshness (``expires`` against ``now``);
2. :func:`check_sequence`: not older than the newest export already accepted from that
   distributor (a replay or rollback), and not another export under the same sequence. An export
   is identified by what was signed (the SHA-256 of its DSSE payload), never by the bundle file's
   bytes, which anyone can re-encode without touching the signature;
3. the listing rules and every file's digest (:func:`airseal.media.verdict.verify_media_files`);
4. :func:`verify_action_bundle`: each action's own DSSE statement, signed by a key allowed to
   sign actions, with the exact bytes the listing names, matching the listing's entry;
5. :func:`verify_vendor_signature`: the vendor's signature carried with an action
   (``vendor.json``, covered by the export statement) holds again for the payload's signed
   digest, key-based or keyless against the trusted root carried with it; an action that
   requires it and carries none is refused;
6. :meth:`MediaVerifier.verify_log`: when the endpoint knows the site's transparency log, the
   media's checkpoint (log key, origin, witness quorum) is consistent with the one stored last,
   and the export statement and every action are in it; forks and shrinks are refused naming
   both checkpoints (:func:`airseal.trustroot.tlog.media_proofs.verify_media_log`).

Check 2 accepts nothing into the journal: the shell records the sequence only once the import's
outcome is decided (:mod:`airseal.agent.runner`), and asks approval for every signer it counts
(:attr:`VerifiedMedia.signers`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from airseal.agent.errors import (
    ActionBelowThreshold,
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
from airseal.media import layout
from airseal.media.errors import MediaDigestMismatch
from airseal.media.limits import MAX_ACTION_BUNDLE_BYTES
from airseal.media.reader import MediaSource, read_export_bundle
from airseal.media.statement import (
    ActionPredicate,
    ExportContents,
    ExportedAction,
    ListedFile,
    read_action_statement,
    read_export_statement,
)
from airseal.media.vendor import (
    MAX_VENDOR_BYTES,
    VendorCheck,
    VendorEvidence,
    VendorSignatureMissing,
    verify_vendor_evidence,
)
from airseal.media.verdict import MediaVerdict, verify_media_files
from airseal.trustroot.bundle import Bundle, parse_bundle
from airseal.trustroot.errors import LogProofError
from airseal.trustroot.tlog.checkpoint import Checkpoint
from airseal.trustroot.tlog.media_proofs import (
    CHECKPOINT_PATH,
    HASHES_PATH,
    LOG_FILES,
    MAX_CHECKPOINT_BYTES,
    MAX_HASHES_BYTES,
    MAX_PROOFS_BYTES,
    PROOFS_PATH,
    MediaProofs,
    VerifiedLog,
    entries_of_bundle,
    media_bundle,
    verify_media_log,
)
from airseal.trustroot.untrusted_json import load_json
from airseal.trustroot.verify import dsse_signers, verify_dsse_bundle

_T = TypeVar("_T")

CLOCK_SKEW = timedelta(days=1)
"""How far in the future an export's creation time may be before the endpoint clock is doubted."""


@dataclass(frozen=True)
class VerifiedExport:
    """An export statement whose signature, signer, shape and freshness verified."""

    contents: ExportContents
    distributor: TrustedKey
    bundle_sha256: str
    """The bundle file's bytes as read (what the receipt names): malleable, not an identity."""
    subject: str
    statement_sha256: str
    """The SHA-256 of the DSSE payload as signed: what identifies the export."""

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
    vendor: VendorCheck | None = None
    """The vendor's signature over the payload, checked again here (``None``: none carried)."""

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
    """The accepted bundle file's SHA-256 (only consulted for records written before the
    statement's digest was kept)."""
    last_statement_sha256: str | None = None
    """The accepted export's signed statement's SHA-256: what a repeat must match."""


SequenceVerdict = Literal["new", "repeat"]


def _signing_key(bundle: Bundle, trust: TrustSource, purpose: Purpose, subject: str) -> TrustedKey:
    material = bundle.verification_material.public_key
    hint = material.hint if material is not None else None
    if hint:
        fingerprint = hint_to_fingerprint(hint)
        key = trust.key(fingerprint, purpose) if fingerprint else None
        if key is None:
            shown = fingerprint or hint
            why = trust.explain(fingerprint, purpose) if fingerprint else None
            raise UntrustedDistributor(
                f"signed by key {shown}, which is not trusted to sign {purpose} here"
                + (f": {why}" if why else ""),
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
    assert bundle.dsse_envelope is not None  # verify_dsse_bundle refuses anything else
    return VerifiedExport(
        contents,
        key,
        hashlib.sha256(data).hexdigest(),
        subject,
        statement_sha256=hashlib.sha256(bundle.dsse_envelope.payload).hexdigest(),
    )


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
    """Check 2, step 2: ``new`` (newer than anything accepted), ``repeat`` (the export accepted
    last, in any encoding of the same signed statement: re-importing it is idempotent), else
    :class:`ReplayedMedia`."""
    if record is None or export.sequence > record.last_sequence:
        return "new"
    if export.sequence == record.last_sequence:
        if export.export_id != record.last_export_id:
            raise ReplayedMedia(
                f"export {export.export_id} has sequence {export.sequence}, which export "
                f"{record.last_export_id} already used",
                subject=export.subject,
            )
        if record.last_statement_sha256 is not None:
            if export.statement_sha256 == record.last_statement_sha256:
                return "repeat"
            raise ReplayedMedia(
                f"export {export.export_id} (sequence {export.sequence}) was accepted here with "
                f"a different signed statement (sha256 {record.last_statement_sha256}, this one "
                f"{export.statement_sha256}): its distributor signed two exports under one id "
                "and sequence",
                subject=export.subject,
            )
        if export.bundle_sha256 == record.last_export_sha256:
            return "repeat"
        raise ReplayedMedia(
            f"export {export.export_id} (sequence {export.sequence}) was accepted by an earlier "
            "agent release, which kept only the bundle file's digest, and this file differs "
            "from the one imported then; import that copy, or a newer export",
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
    if trust.action_threshold > 1:
        trusted = {k.fingerprint: k.public_key for k in trust.keys("actions")}
        signers = dsse_signers(trusted, bundle, subject=subject)
        if len(signers) < trust.action_threshold:
            raise ActionBelowThreshold(
                f"signed by {len(signers)} of {trust.action_threshold} distinct trusted "
                "distributor keys the site policy requires for each action",
                subject=subject,
            )
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


def verify_vendor_signature(
    action: VerifiedAction, source: MediaSource, digests: Mapping[str, ListedFile]
) -> VerifiedAction:
    """Check 2, step 5, for one action: the vendor evidence is the listed file and holds for the
    payload's signed SHA-256; required-but-absent is a refusal."""
    listed = action.listed
    if listed.vendor is None:
        if action.predicate.require_vendor_signature:
            raise VendorSignatureMissing(
                f"action {action.id} requires the vendor's signature over "
                f"{action.predicate.payload.name}, and the media carries none",
                subject=action.subject,
            )
        return action
    subject = layout.on_mount(listed.vendor)
    data = source.read_bytes(subject, max_size=MAX_VENDOR_BYTES)
    actual = hashlib.sha256(data).hexdigest()
    if actual != digests[listed.vendor].sha256:
        raise MediaDigestMismatch(
            f"sha256 is {actual}, the statement lists {digests[listed.vendor].sha256}",
            subject=subject,
        )
    evidence = VendorEvidence.from_json_bytes(data, subject=subject)
    check = verify_vendor_evidence(
        evidence, bytes.fromhex(action.predicate.payload.sha256), subject=subject
    )
    return replace(action, vendor=check)


# -- the whole of check 2 over one media -------------------------------------------------------


@dataclass(frozen=True)
class DistributorHistory:
    """What the agent remembers of one distributor, as far as check 2 needs it."""

    accepted: SequenceRecord
    """The newest export accepted from it (sequence 0 and no export before the first)."""
    approved: bool
    """Whether the endpoint user approved it; the runner asks when not."""


@dataclass(frozen=True)
class CountedSigner:
    """A key whose signature this import counts, what it signed, and whether the endpoint user
    approved it before: approval must hold for every one of them, not only the export's."""

    key: TrustedKey
    actions: tuple[VerifiedAction, ...]
    """The actions it signed (every listed action, for the export's distributor)."""
    approved: bool
    subject: str
    """The file a refusal names: the export statement, or the first action bundle it signed."""


@dataclass(frozen=True)
class VerifiedMedia:
    """Media that passed check 2: the only input the runner acts on."""

    export: VerifiedExport
    actions: tuple[VerifiedAction, ...]
    """Every listed action, verified and matched to the listing, in the listing's order."""
    files: MediaVerdict
    """The file verdict (clean: every listed file present with its size and digest)."""
    repeat: bool
    """The export accepted last, again (same signed statement): re-importing it is idempotent."""
    signers: tuple[CountedSigner, ...]
    """Every key whose signature counts: the export's distributor first, then each other key
    that signed an action, in listing order."""

    @property
    def distributor(self) -> TrustedKey:
        return self.export.distributor

    @property
    def approved(self) -> bool:
        """The export's distributor was approved here before this import."""
        return self.signers[0].approved

    @property
    def unapproved(self) -> tuple[CountedSigner, ...]:
        """Counted signers the endpoint user has not approved yet (the runner asks)."""
        return tuple(signer for signer in self.signers if not signer.approved)


def counted_signers(
    export: VerifiedExport,
    actions: tuple[VerifiedAction, ...],
    history: Mapping[str, DistributorHistory],
) -> tuple[CountedSigner, ...]:
    """The export's distributor, then every other action signer, each with its approval."""

    def approved(fingerprint: str) -> bool:
        known = history.get(fingerprint)
        return known is not None and known.approved

    distributor = export.distributor.fingerprint
    others: dict[str, list[VerifiedAction]] = {}
    for action in actions:
        if action.signer.fingerprint != distributor:
            others.setdefault(action.signer.fingerprint, []).append(action)
    return (
        CountedSigner(export.distributor, actions, approved(distributor), export.subject),
        *(
            CountedSigner(signed[0].signer, tuple(signed), approved(fingerprint), signed[0].subject)
            for fingerprint, signed in others.items()
        ),
    )


class MediaVerifier:
    """Check 2 over one opened media, one step at a time and in order, each step raising the
    typed refusal that stops the import. The steps are separate so that the shell can record
    what is known after each (an authenticated export earns a receipt even if a later step
    refuses); :func:`verify_media` runs them all."""

    def __init__(
        self,
        source: MediaSource,
        trust: TrustSource,
        history: Mapping[str, DistributorHistory],
        *,
        now: datetime,
        previous_checkpoint: Checkpoint | None = None,
    ) -> None:
        self.source = source
        self.trust = trust
        self.history = history
        self.now = now
        self.export: VerifiedExport | None = None
        self.repeat = False
        self.files: MediaVerdict | None = None
        self.actions: tuple[VerifiedAction, ...] | None = None
        self.previous_checkpoint = previous_checkpoint
        self.log: VerifiedLog | None = None

    def authenticate_export(self) -> VerifiedExport:
        """Step 1: the export statement's signature, signer, shape and freshness."""
        subject = layout.on_mount(layout.STATEMENT_NAME)
        data = read_export_bundle(self.source)
        self.export = verify_export_bundle(data, self.trust, now=self.now, subject=subject)
        return self.export

    def verify_sequence(self) -> bool:
        """Step 2: no replay or rollback; ``True`` when this is the export accepted last."""
        export = self._require(self.export, "verify_sequence", "authenticate_export")
        known = self.history.get(export.distributor.fingerprint)
        self.repeat = check_sequence(export, known.accepted if known else None) == "repeat"
        return self.repeat

    def verify_files(self) -> MediaVerdict:
        """Step 3: the listing rules and every file's digest, split payloads re-joined."""
        export = self._require(self.export, "verify_files", "authenticate_export")
        verdict = verify_media_files(self.source, export.contents)
        verdict.raise_first()
        self.files = verdict
        return verdict

    def verify_actions(self) -> tuple[VerifiedAction, ...]:
        """Step 4: each action's own signed statement, matched to the listing."""
        self._require(self.files, "verify_actions", "verify_files")
        assert self.export is not None
        digests = self.export.contents.by_path()
        actions = []
        with self.source.folders_held():
            for listed in self.export.contents.predicate.actions:
                subject = layout.on_mount(listed.bundle)
                data = self.source.read_bytes(subject, max_size=MAX_ACTION_BUNDLE_BYTES)
                actions.append(
                    verify_action_bundle(
                        data, listed, digests[listed.bundle].sha256, self.trust, subject=subject
                    )
                )
        self.actions = tuple(actions)
        return self.actions

    def verify_vendor_signatures(self) -> tuple[VerifiedAction, ...]:
        """Step 5: each carried vendor signature holds for the action's signed payload digest;
        an action that requires one and carries none is refused."""
        actions = self._require(self.actions, "verify_vendor_signatures", "verify_actions")
        assert self.export is not None
        digests = self.export.contents.by_path()
        with self.source.folders_held():
            self.actions = tuple(
                verify_vendor_signature(action, self.source, digests) for action in actions
            )
        return self.actions

    def verify_log(self) -> VerifiedLog | None:
        """Step 6: the media's log checkpoint and proofs (:mod:`.tlog.media_proofs`)
        against the log this endpoint trusts and the checkpoint it stored last: consistency,
        then the export statement's and every action's inclusion. ``None`` when no log is known
        here, or (``log.required`` false) the media carries none."""
        actions = self._require(self.actions, "verify_log", "verify_actions")
        assert self.export is not None
        log = self.trust.log_trust
        if log is None:
            return None
        listed = self.export.contents.by_path()
        if any(path not in listed for path in LOG_FILES):
            if not log.required:
                return None
            raise LogProofError(
                f"carries no transparency log checkpoint and proofs ({', '.join(LOG_FILES)}), "
                f"and this endpoint requires them ({log.source} names log {log.origin})",
                subject=layout.on_mount(layout.STATEMENT_NAME), check="tlog.missing",
                hint="export again from the site's appliance with its log on (`airseal log "
                     "init` there); media without the log's proofs is refused here")
        note = self._listed_bytes(CHECKPOINT_PATH, MAX_CHECKPOINT_BYTES)
        proofs = MediaProofs.parse(self._listed_bytes(PROOFS_PATH, MAX_PROOFS_BYTES),
                                   self._listed_bytes(HASHES_PATH, MAX_HASHES_BYTES),
                                   subject=layout.on_mount(PROOFS_PATH),
                                   hashes_subject=layout.on_mount(HASHES_PATH))
        self._refuse_actions_of_other_logs(proofs, actions)
        statement = read_export_bundle(self.source)
        if hashlib.sha256(statement).hexdigest() != self.export.bundle_sha256:
            raise MediaDigestMismatch("changed while it was being read",
                                      subject=self.export.subject)
        export_entries = entries_of_bundle(
            load_json(statement, subject=self.export.subject, error=LogProofError),
            log.log_id, subject=self.export.subject)
        candidates = [key.public_key for key in self.trust.keys("actions")]
        action_bundles = []
        for action in actions:
            data = self._listed_bytes(action.listed.bundle, MAX_ACTION_BUNDLE_BYTES)
            keys = [action.signer.public_key,
                    *(k for k in candidates if k is not action.signer.public_key)]
            action_bundles.append(media_bundle(
                load_json(data, subject=action.subject, error=LogProofError), keys,
                path=action.listed.bundle, subject=action.subject))
        try:
            text = note.decode("utf-8")
        except UnicodeDecodeError:
            raise LogProofError("is not UTF-8 text", subject=layout.on_mount(CHECKPOINT_PATH),
                                check="tlog.checkpoint") from None
        self.log = verify_media_log(log, self.previous_checkpoint, checkpoint_note=text,
                                   proofs=proofs, export=export_entries, actions=action_bundles,
                                   threshold=self.trust.action_threshold)
        return self.log

    def _refuse_actions_of_other_logs(self, proofs: MediaProofs,
                                      actions: tuple[VerifiedAction, ...]) -> None:
        """An action bundle the proofs file carries no entry for, whose own entries are all of
        other logs (signed on the appliance with ``--rekor-url``): refused as ``tlog.logid``,
        naming those logs. This endpoint knows only the site log's key, so it cannot check
        them, and they do not count; :func:`verify_media_log` would refuse the bundle anyway
        (no entry of the site log), this says why and what to do."""
        from airseal.trustroot.tlog.bundle_logs import bundle_logs, describe_logs

        log = self.trust.log_trust
        assert log is not None
        for action in actions:
            if proofs.entries_of(action.listed.bundle):
                continue
            data = self._listed_bytes(action.listed.bundle, MAX_ACTION_BUNDLE_BYTES)
            logs = bundle_logs(load_json(data, subject=action.subject, error=LogProofError),
                               log.log_id, subject=action.subject)
            if logs.only_other_logs:
                raise LogProofError(
                    f"its log entries are of another log ({describe_logs(logs.other_logs)}), "
                    f"not of the site log {log.origin} this endpoint requires ({log.source} "
                    f"names it); entries of other logs are not accepted here",
                    subject=action.subject, check="tlog.logid",
                    hint=f"action {action.listed.id} was logged in another Rekor "
                         "(--rekor-url): sign it again on the site's appliance without "
                         f"--rekor-url (`airseal action edit {action.listed.id}`), so it is "
                         "logged in the site log, and export again")

    def _listed_bytes(self, path: str, cap: int) -> bytes:
        """A listed file's bytes, checked against the statement's digest again as read."""
        assert self.export is not None
        subject = layout.on_mount(path)
        data = self.source.read_bytes(subject, max_size=cap)
        listed = self.export.contents.by_path()[path].sha256
        if hashlib.sha256(data).hexdigest() != listed:
            raise MediaDigestMismatch(f"sha256 differs from the statement's {listed}",
                                      subject=subject)
        return data

    def verified(self) -> VerifiedMedia:
        """The result, once every step has passed."""
        actions = self._require(self.actions, "verified", "verify_actions")
        assert self.export is not None and self.files is not None
        return VerifiedMedia(
            self.export,
            actions,
            self.files,
            self.repeat,
            counted_signers(self.export, actions, self.history),
        )

    @staticmethod
    def _require(value: _T | None, step: str, before: str) -> _T:
        if value is None:
            raise RuntimeError(f"MediaVerifier.{step}() needs {before}() to have passed first")
        return value


def verify_media(
    source: MediaSource,
    trust: TrustSource,
    history: Mapping[str, DistributorHistory],
    *,
    now: datetime,
) -> VerifiedMedia:
    """Check 2 in one call: :class:`VerifiedMedia`, or the first typed refusal."""
    verifier = MediaVerifier(source, trust, history, now=now)
    verifier.authenticate_export()
    verifier.verify_sequence()
    verifier.verify_files()
    verifier.verify_actions()
    verifier.verify_vendor_signatures()
    verifier.verify_log()
    return verifier.verified()
