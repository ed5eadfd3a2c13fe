"""The transparency-log use cases of :class:`~airseal.appliance.service.Appliance`.

Kept in their own mixin so the service stays readable; every method opens what it needs lazily,
like the rest of the service. Results say themselves in words and as camelCase JSON with
``schemaVersion`` 1.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    import sqlite_utils

    from airseal.appliance.home import Home
    from airseal.appliance.log_view import LogOverview
    from airseal.appliance.prompts import Prompter
    from airseal.appliance.sigstore_roots import TrustedRootInUse



@dataclass(frozen=True)
class LogStatus:
    origin: str
    key_name: str
    log_id: str
    size: int
    root_hash: str
    checkpoint: str
    created: str
    verified: bool = False
    audit_anchors: int | None = None
    """``log verify``: anchors of the audit chain found, each checked against the chain."""

    def describe(self) -> list[str]:
        lines = [
            f"Log {self.origin} (key {self.key_name}, log id {self.log_id[:16]}...)",
            f"  size {self.size}, root {self.root_hash}",
            f"  created {self.created}",
        ]
        if self.verified:
            lines.append("  verified: every entry, tile and the latest checkpoint agree")
        if self.audit_anchors is not None:
            lines.append(f"  audit chain anchors: {self.audit_anchors}, all match the chain")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": 1,
            "origin": self.origin,
            "keyName": self.key_name,
            "logId": self.log_id,
            "size": self.size,
            "rootHash": self.root_hash,
            "checkpoint": self.checkpoint,
            "created": self.created,
            "verified": self.verified,
            **({} if self.audit_anchors is None else {"auditAnchors": self.audit_anchors}),
        }


@dataclass(frozen=True)
class AuditAnchor:
    """``airseal log anchor``: the audit chain's head, and the log entry that anchors it."""

    seq: int
    head: str
    log_index: int | None
    """``None``: that head was anchored already (nothing appended)."""

    def describe(self) -> list[str]:
        if self.seq == 0:
            return ["The audit chain is empty: nothing to anchor."]
        if self.log_index is None:
            return [f"Audit row {self.seq} (head {self.head[:16]}) is anchored already."]
        return [f"Anchored audit row {self.seq} (head {self.head[:16]}) as log entry "
                f"{self.log_index}."]

    def to_json(self) -> dict[str, Any]:
        return {"schemaVersion": 1, "seq": self.seq, "head": self.head,
                "logIndex": self.log_index, "anchored": self.log_index is not None}


@dataclass(frozen=True)
class LogProof:
    kind: str  # inclusion | consistency
    data: dict[str, Any]

    def describe(self) -> list[str]:
        if self.kind == "inclusion":
            proof = self.data["entry"]["inclusionProof"]
            return [
                f"Entry {self.data['entry']['logIndex']} is in the log of size "
                f"{proof['treeSize']} ({len(proof['hashes'])} proof hashes); it verified.",
            ]
        return [
            f"Size {self.data['oldSize']} is a prefix of size {self.data['newSize']} "
            f"({len(self.data['hashes'])} proof hashes); it verified.",
        ]

    def to_json(self) -> dict[str, Any]:
        return {"schemaVersion": 1, "kind": self.kind, **self.data}


class TransparencyLogMethods:
    """Mixed into :class:`Appliance`; relies on its ``home``, ``db``, ``prompter`` and ``now``."""

    if TYPE_CHECKING:

        @property
        def home(self) -> Home: ...
        @property
        def db(self) -> sqlite_utils.Database: ...

        prompter: Prompter

        def now(self) -> datetime: ...
        def keyless_trusted_root(self, override: Path | None = None) -> TrustedRootInUse: ...

    def _log(self) -> Any:
        from airseal.appliance.tlog_store import TransparencyLog

        return TransparencyLog(self.db.conn)

    def _status(self, verified: bool = False) -> LogStatus:
        log = self._log()
        latest = log.latest_checkpoint()
        return LogStatus(
            origin=log.info.origin, key_name=log.info.key_name, log_id=log.info.log_id.hex(),
            size=latest.checkpoint.size, root_hash=latest.checkpoint.root_hash.hex(),
            checkpoint=latest.note, created=log.info.created, verified=verified,
        )

    def log_init(self, key_name: str, *, origin: str | None = None) -> LogStatus:
        """Create the log, signed by the appliance key ``key_name`` (ECDSA P-256)."""
        from airseal.appliance import audit
        from airseal.appliance.errors import UsageError
        from airseal.appliance.keystore import get_key, open_signer
        from airseal.appliance.tlog_store import create_log
        from airseal.trustroot.tlog.checkpoint import check_origin

        record = get_key(self.db, key_name)
        if record.algorithm != "ecdsa-p256":
            raise UsageError(
                f"--key {key_name}: the log key must be ECDSA P-256, this key is "
                f"{record.algorithm}",
                hint="create one with `airseal key generate NAME` (ECDSA P-256 by default)",
            )
        chosen = origin or f"log-{self.home.appliance_id[:12]}.airseal.internal"
        try:
            check_origin(chosen)
        except ValueError as exc:
            raise UsageError(f"--origin: {exc}") from None
        with open_signer(self.home, record, self.prompter) as signer:
            info = create_log(
                self.db.conn, origin=chosen, key_name=key_name, public_key=record.public_key,
                signer=signer, now=self.now(),
            )
        audit.record(
            self.home, self.db, "log-init", chosen,
            {"key": key_name, "fingerprint": record.fingerprint, "logId": info.log_id.hex()},
        )
        from airseal.appliance.site import SiteRepository

        site = SiteRepository(self.home, self.db, self.prompter)
        if site.exists:
            # endpoints in TUF mode learn the log from the site: a targets change carrying its
            # trusted root (a signing event; it waits in pending/ if the keys are not on hand)
            site.publish_log(now=self.now())
        return self._status()

    def log_status(self) -> LogStatus:
        return self._status()

    def log_overview(self, *, search: str = "", limit: int = 500) -> LogOverview:
        """Size, latest checkpoint, witnesses and the newest entries matching ``search`` (a
        digest or its prefix, an action id, a subject word, an index); no log: ``exists`` is
        false (not an error, so a screen can say so)."""
        from airseal.appliance.log_view import log_overview, witness_views
        from airseal.appliance.witnesses import cosigned_path

        kept = cosigned_path(self.home)
        witnesses = witness_views(
            policy_witnesses(self.home, self.db, self.prompter),
            kept.read_text("utf-8") if kept.is_file() else None,
        )
        return log_overview(self.db.conn, search=search, limit=limit, witnesses=witnesses)

    def log_verify(self) -> LogStatus:
        """Recompute the whole tree from the entries and check the latest checkpoint."""
        from airseal.appliance.audit_anchor import check_anchors
        from airseal.appliance.tlog_store import LogInconsistent

        log = self._log()
        log.verify()
        count, problems = check_anchors(self.db.conn, self.home.appliance_id, log.info.public_key)
        from airseal.appliance.site_log import check_metadata_entries

        _, site_problems = check_metadata_entries(
            self.db.conn, self.home.root / "site" / "metadata", log.info.public_key)
        if site_problems:
            raise LogInconsistent(
                "the site metadata does not match its entries in the log: "
                + "; ".join(site_problems),
                hint="keep the log and the site repository as evidence and report it")
        if problems:
            raise LogInconsistent(
                "the audit chain does not match its anchors in the log: "
                + "; ".join(p.problem for p in problems),
                hint="`airseal audit verify` names the rows; keep the log and the database "
                "as evidence",
            )
        status = self._status(verified=True)
        return LogStatus(**{**status.__dict__, "audit_anchors": count})

    def log_anchor(self) -> AuditAnchor:
        """Append the audit chain's head to the log now (exports do it by themselves)."""
        from airseal.appliance.audit_anchor import current_head
        from airseal.appliance.tlog_store import LogAppender

        self._log()  # no log: the NoLog error, before any key is opened
        with LogAppender(self.home, self.db, self.prompter, now=self.now()) as appender:
            index = appender.anchor_audit()
        head = current_head(self.db.conn)
        if head is None:
            return AuditAnchor(0, "", None)
        return AuditAnchor(head.seq, head.hash, index)

    def log_get(self, index: int | str) -> dict[str, Any]:
        """Entry ``index`` (or the entry a Rekor UUID names: its leaf hash, 64 or 80 hex digits)
        as a ``tlogEntries`` item, proved against the latest checkpoint."""
        log = self._log()
        if isinstance(index, str):
            from airseal.appliance.tlog_store import LogError
            from airseal.trustroot.tlog.rekor_api import leaf_of_uuid

            found = log.index_of_leaf(leaf_of_uuid(index))
            if found is None:
                raise LogError(f"no entry with UUID {index.lower()} is in the log",
                               hint="a UUID is an entry's leaf hash (64 hex digits), or 80 with "
                                    "the tree id in front")
            index = found
        entry = log.entry(index)
        self._check_entry(log, entry)
        return {"schemaVersion": 1, "entry": entry.to_json()}

    def log_prove(self, *, index: int | None = None, old_size: int | None = None) -> LogProof:
        """An inclusion proof (``index``) or a consistency proof (``old_size`` -> latest), each
        verified before it is returned."""
        from airseal.appliance.errors import UsageError
        from airseal.trustroot.tlog.merkle import verify_consistency

        if (index is None) == (old_size is None):
            raise UsageError("give exactly one of --index or --from-size")
        log = self._log()
        if index is not None:
            entry = log.entry(index)
            self._check_entry(log, entry)
            return LogProof("inclusion", {"entry": entry.to_json()})
        assert old_size is not None
        latest = log.latest_checkpoint()
        old = log.checkpoint_at(old_size)
        new_size = latest.checkpoint.size
        hashes = log.consistency(old_size, new_size)
        verify_consistency(
            old_size, new_size, hashes, old.checkpoint.root_hash, latest.checkpoint.root_hash
        )
        return LogProof("consistency", {
            "oldSize": old_size, "newSize": new_size,
            "oldCheckpoint": old.note, "newCheckpoint": latest.note,
            "hashes": [base64.b64encode(h).decode() for h in hashes],
        })

    @staticmethod
    def _check_entry(log: Any, entry: Any) -> None:
        from airseal.trustroot.tlog.entries import verify_tlog_entry

        verify_tlog_entry(
            entry, log_key=log.info.public_key, name=log.info.origin, origin=log.info.origin,
            signed=None,
        )

    def log_trusted_root(self) -> bytes:
        """A Sigstore ``trusted_root.json`` naming this log (key, log id, ``baseUrl``, validity)."""
        from airseal.appliance.tlog_store import trusted_root_json

        return trusted_root_json(self._log().info)

    def write_log_trusted_root(self, output: Path) -> Path:
        from airseal._internal.atomic import write_atomic

        write_atomic(output, self.log_trusted_root())
        return output

    def using_rekor(
        self, url: str | None, key: str | None, signing_config: Path | None = None
    ) -> AbstractContextManager[None]:
        """Within the block, signatures are logged in the Rekor at ``url`` instead of the
        embedded log, and its answers verified with ``key`` (a PEM file or an appliance key
        name), else with the trusted root's ``tlogs`` entry for that URL. The Rekor API version
        is 1 unless ``signing_config`` (a Sigstore ``signing_config.json``), else the site's
        published one (`airseal site signing-config --set`), lists that Rekor with
        ``majorApiVersion`` 2; with a signing config and no ``url``, its Rekor is used.
        Neither: unchanged."""
        from contextlib import nullcontext

        from airseal.appliance.errors import UsageError

        if url is None and signing_config is None:
            if key is not None:
                raise UsageError("--rekor-key is only used with --rekor-url or --signing-config")
            return nullcontext()
        from airseal.appliance.blobs import load_key_argument
        from airseal.appliance.rekor_client import (
            RekorTarget,
            key_from_trusted_root,
            normalise_url,
            rekor_from_signing_config,
            rekor_session,
        )

        try:
            base = None if url is None else normalise_url(url)
        except ValueError as exc:
            raise UsageError(f"--rekor-url: {exc}") from None
        version = 1
        if signing_config is not None:
            try:
                document = signing_config.read_bytes()
            except OSError as exc:
                raise UsageError(f"--signing-config: {exc.strerror or exc}") from None
            base, version = rekor_from_signing_config(document, base, self.now())
        else:
            version = self._site_rekor_version(base)
        assert base is not None
        if key is not None:
            public, _ = load_key_argument(key, lambda: self.db)
            return rekor_session(RekorTarget(base, public, None, api_version=version))
        root = self.keyless_trusted_root()
        public, name = key_from_trusted_root(root.document, base, self.now())
        return rekor_session(RekorTarget(base, public, name, api_version=version))

    def _site_rekor_version(self, base: str | None) -> int:
        """The API version the site's published signing config gives the Rekor at ``base``; 1
        when the site has no signing config or it does not list that URL. A listed Rekor whose
        entry is unusable now (expired, unknown version) fails closed."""
        from airseal.appliance.rekor_client import listed_rekors, rekor_from_signing_config
        from airseal.appliance.site import SiteRepository

        document = SiteRepository(self.home, self.db, self.prompter).signing_config()
        if document is None or base not in {url for url, _ in listed_rekors(document)}:
            return 1
        return rekor_from_signing_config(document, base, self.now())[1]

    def serve_log(
        self, listen: str, *, read_only: bool = False, quiet: bool = False,
        on_ready: Callable[[str], None] = lambda url: None,
    ) -> None:
        """Serve the log over the Rekor v1 API and the C2SP tile paths at ``listen`` until
        SIGINT/SIGTERM. Unless ``read_only``, the log key is opened first (its password or PIN
        asked once) so ``POST /api/v1/log/entries`` can append."""
        from contextlib import ExitStack

        from airseal.appliance.errors import UsageError
        from airseal.appliance.keystore import get_key, open_signer
        from airseal.appliance.log_server import LogHttpServer, LogService, parse_listen, serve

        try:
            address = parse_listen(listen)
        except ValueError as exc:
            raise UsageError(f"--listen: {exc}") from None
        from airseal.appliance import audit

        info = self._log().info
        with ExitStack() as stack:
            signer = None
            if not read_only:
                record = get_key(self.db, info.key_name)
                signer = stack.enter_context(open_signer(self.home, record, self.prompter))
            service = LogService(self.home.database_path, signer=signer, clock=self.now)
            try:
                server = LogHttpServer(address, service, quiet=quiet)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise UsageError(f"--listen {listen}: cannot bind ({reason})") from None
            audit.record(self.home, self.db, "log-serve", server.url,
                         {"readOnly": read_only, "origin": info.origin})
            serve(server, on_ready)

    def export_log_tiles(self, directory: Path) -> list[Path]:
        """The log as static C2SP tlog-tiles files under ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        paths: list[Path] = self._log().export_tiles(directory)
        return paths


def policy_witnesses(home: Home, db: sqlite_utils.Database, prompter: Prompter
                     ) -> tuple[Any, ...]:
    """The witnesses the site policy names (none without a site or a log section)."""
    from airseal.appliance.site import SiteRepository

    site = SiteRepository(home, db, prompter)
    if not site.exists:
        return ()
    policy = site.policy().log
    return () if policy is None else policy.witnesses


class WitnessExchangeMethods:
    """Checkpoints out to the site's witness stations, cosignatures back (mixed into
    :class:`Appliance` beside :class:`TransparencyLogMethods`)."""

    if TYPE_CHECKING:

        @property
        def home(self) -> Home: ...
        @property
        def db(self) -> sqlite_utils.Database: ...

        prompter: Prompter

    def _policy_witnesses(self) -> tuple[Any, ...]:
        return policy_witnesses(self.home, self.db, self.prompter)

    def log_witness_request(self, directory: Path, *, from_size: int | None = None
                            ) -> tuple[int, int]:
        """Write ``checkpoint`` (the latest), ``proofs.json`` and ``hashes`` (one proof of
        consistency from the kept cosigned checkpoint, ``from_size`` and the last exports'
        checkpoints: the media's format, without entries) into ``directory``, for `airseal
        witness cosign`. Returns (size, earlier sizes proved)."""
        from airseal._internal.atomic import write_atomic
        from airseal.appliance.tlog_store import TransparencyLog, media_log_files
        from airseal.appliance.witnesses import cosigned_path
        from airseal.trustroot.tlog.checkpoint import Checkpoint, SignedNote
        from airseal.trustroot.tlog.media_proofs import MediaProofs

        log = TransparencyLog(self.db.conn)
        size = log.latest_checkpoint().checkpoint.size
        also: list[int] = []
        kept = cosigned_path(self.home)
        if kept.is_file():
            also.append(Checkpoint.parse(SignedNote.parse(kept.read_text("utf-8")).body).size)
        if from_size is not None:
            if not 0 < from_size <= size:
                from airseal.appliance.errors import UsageError

                raise UsageError(f"--from-size {from_size} is not between 1 and the log's "
                                 f"size {size}")
            also.append(from_size)
        files = media_log_files(log, [], also_from=also)
        proofs = MediaProofs.parse(files.proofs, files.hashes, subject="proofs")
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(directory / "checkpoint", files.checkpoint)
        write_atomic(directory / "proofs.json", files.proofs)
        write_atomic(directory / "hashes", files.hashes)
        return files.size, len(proofs.earlier_sizes)

    def log_witness_import(self, path: Path) -> list[str]:
        """Keep the witnesses' cosignatures on one of this log's checkpoints; returns the names
        of every signer on the kept note (the log first)."""
        from airseal._internal.atomic import read_capped
        from airseal.appliance import audit
        from airseal.appliance.tlog_store import TransparencyLog
        from airseal.appliance.witnesses import import_cosigned
        from airseal.trustroot.tlog.checkpoint import MAX_NOTE_BYTES, SignedNote

        log = TransparencyLog(self.db.conn)
        text = read_capped(path, MAX_NOTE_BYTES).decode("utf-8", errors="replace")
        witnesses = self._policy_witnesses()
        if witnesses:
            from airseal.trustroot.tlog.cosignature import verify_cosignatures

            verify_cosignatures(text, witnesses)  # a line claiming a site witness must hold
        kept = import_cosigned(self.home, log, text, subject=str(path))
        names = [s.name for s in SignedNote.parse(kept).signatures]
        audit.record(self.home, self.db, "log.cosignatures", str(path), {"signers": names})
        return names
