"""A site log and media that carry its proofs, for the agent's log tests.

The log is the appliance's real SQLite tile store (in memory), the bundles are logged exactly as
the appliance logs them (:func:`entry_for_bundle`, :func:`with_tlog_entry`), and the media's
``airseal/log/`` files, and the action bundles as the media carries them (their entries moved
into ``log/proofs.json``), come from the appliance's :func:`media_log_files`; only the appliance's
key store and home are left out, to keep the tests fast.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from airseal.appliance.tlog_schema import LOG_MIGRATION
from airseal.appliance.tlog_store import (
    EXPORT_SUBJECT,
    MediaLogFiles,
    TransparencyLog,
    create_log,
    entry_for_bundle,
    media_log_files,
    with_tlog_entry,
)
from airseal.media.layout import action_bundle_path
from airseal.media.writer import ActionToExport, ExtraFile
from airseal.trustroot.signer import PrivateKeySigner
from airseal.trustroot.tlog.media_proofs import (
    CHECKPOINT_PATH,
    HASHES_PATH,
    PROOFS_PATH,
    LogTrust,
)

from .helpers import Distributor, header


@dataclass
class SiteLog:
    log: TransparencyLog
    signer: PrivateKeySigner
    origin: str

    @property
    def trust(self) -> LogTrust:
        return LogTrust(self.signer.public_key, self.origin)

    def logged(self, bundle: bytes, key: object, subject: str) -> bytes:
        entry = entry_for_bundle(bundle, key, subject)  # type: ignore[arg-type]
        (index,), _ = self.log.append([entry], self.signer, now=datetime.now(UTC))
        return with_tlog_entry(bundle, self.log.entry(index))

    def log_actions(self, actions: list[ActionToExport], distributor: Distributor
                    ) -> list[ActionToExport]:
        return [replace(a, bundle=self.logged(a.bundle, distributor.signer.public_key,
                                              f"action {a.id}")) for a in actions]

    def files(self, actions: list[ActionToExport], note: str | None = None) -> MediaLogFiles:
        return media_log_files(
            self.log, [(a.id, action_bundle_path(a.id), a.bundle) for a in actions], note)


def new_site_log(origin: str = "log.site.example") -> SiteLog:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(LOG_MIGRATION)
    signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    create_log(conn, origin=origin, key_name="logkey", public_key=signer.public_key,
               signer=signer, now=datetime.now(UTC))
    return SiteLog(TransparencyLog(conn), signer, origin)


def write_logged_media(
    mount: Path, site: SiteLog, distributor: Distributor, actions: list[ActionToExport], *,
    export_id: str = "export-1", sequence: int = 1, note: str | None = None,
    edit_files: object = None,
) -> Path:
    """An export as the appliance writes it with its log on: the log's checkpoint and proofs
    listed in the statement, the statement logged right after that checkpoint."""
    files = site.files(actions, note)
    actions = [replace(a, bundle=b) for a, b in zip(actions, files.bundles, strict=True)]
    scratch = mount.parent / f".{mount.name}-log"
    scratch.mkdir(parents=True, exist_ok=True)
    checkpoint, proofs, hashes = files.checkpoint, files.proofs, files.hashes
    if callable(edit_files):  # (checkpoint, proofs, hashes) -> the three as the media holds them
        checkpoint, proofs, hashes = edit_files(checkpoint, proofs, hashes)
    (scratch / "checkpoint").write_bytes(checkpoint)
    (scratch / "proofs.json").write_bytes(proofs)
    (scratch / "hashes").write_bytes(hashes)

    def sign(statement: object) -> bytes:
        return site.logged(distributor.sign(statement),  # type: ignore[arg-type]
                           distributor.signer.public_key, f"{EXPORT_SUBJECT} 1")

    from airseal.media.writer import write_export

    mount.mkdir(parents=True, exist_ok=True)
    write_export(mount, actions, header(distributor, export_id, sequence), sign,
                 extra_files=[ExtraFile(CHECKPOINT_PATH, scratch / "checkpoint"),
                              ExtraFile(PROOFS_PATH, scratch / "proofs.json"),
                              ExtraFile(HASHES_PATH, scratch / "hashes")])
    return mount
