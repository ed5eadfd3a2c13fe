"""The parsers ``bench/fuzz_parsers.py`` feeds, and the real, valid inputs it starts from.

An export written by the real writer (a download, a tar.gz and a zip action), its action bundles
and their statements, an agent's receipt answering it (with the appliance database that knows the
export), a blob bundle and the archives: mutations of real inputs reach deep code, where random
bytes would stop at the first bracket.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

Parser = Callable[[bytes], object]
Resigner = Callable[[bytes], bytes]
"""Signs a statement payload again: (payload) -> bundle bytes."""


@dataclass
class Target:
    """One parser, the valid inputs it starts from, and how to re-sign an edited statement."""

    name: str
    parse: Parser
    seeds: list[bytes]
    resign: Resigner | None = None
    json: bool = True
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, bytes]] = field(default_factory=list)


def _payload(bundle: bytes) -> bytes:
    return base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"])


def _claimed_action_id(bundle: bytes) -> str | None:
    """The id an action bundle's statement claims, if it can be read at all (harness only)."""
    try:
        return str(json.loads(_payload(bundle))["predicate"]["id"])
    except Exception:
        return None


def build_targets(base: Path) -> list[Target]:
    """Write a real export (and a receipt, a blob bundle, archives) under ``base``; one target
    per parser that reads media or bundles."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from airseal.agent.archive import ArchiveLimits, check_members, read_members
    from airseal.agent.trust import PinnedKeyTrust, TrustedKey
    from airseal.agent.verification import verify_action_bundle, verify_export_bundle
    from airseal.appliance.db import open_database
    from airseal.appliance.home import init_home
    from airseal.appliance.receipts import import_receipts
    from airseal.errors import AirsealError
    from airseal.media import layout
    from airseal.media.check import read_statement_unverified
    from airseal.media.reader import DirectorySource
    from airseal.media.receipt import (
        ActionResult,
        ReceiptPredicate,
        read_receipt_statement,
        receipt_statement,
    )
    from airseal.media.statement import (
        ActionPayload,
        ActionPredicate,
        DownloadOptions,
        ExecuteOptions,
        Intake,
        action_statement,
        read_action_statement,
        read_export_statement,
    )
    from airseal.media.writer import ActionToExport, ExportHeader, write_export
    from airseal.trustroot.bundle import (
        bundle_to_json,
        message_signature_bundle,
        parse_bundle,
        sign_statement,
    )
    from airseal.trustroot.dsse import IN_TOTO_PAYLOAD_TYPE, Statement, pae
    from airseal.trustroot.keys import fingerprint, spki_pem
    from airseal.trustroot.signer import PrivateKeySigner
    from airseal.trustroot.verify import verify_blob_bundle

    now = datetime.now(UTC).replace(microsecond=0)
    distributor = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    agent = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))

    def resigner(signer: PrivateKeySigner, template: bytes) -> Resigner:
        """Put an edited statement into ``template`` (a DSSE bundle) and sign it again."""

        def resign(payload: bytes) -> bytes:
            bundle = json.loads(template)
            envelope = bundle["dsseEnvelope"]
            envelope["payload"] = base64.b64encode(payload).decode()
            signature = signer.sign_message(pae(IN_TOTO_PAYLOAD_TYPE, payload))
            envelope["signatures"][0]["sig"] = base64.b64encode(signature).decode()
            return json.dumps(bundle).encode()

        return resign

    # payloads: a file, a tar.gz, a zip; and a plain tar for the member-list fuzz
    files = base / "payloads"
    files.mkdir()
    (files / "tool.conf").write_bytes(b"x=1\n")
    archives: dict[str, bytes] = {}
    for name, mode in (("kit.tar.gz", "w:gz"), ("kit.tar", "w")):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode=mode) as tar:
            for member, data in (("bin/install.sh", b"#!/bin/sh\necho ok\n"), ("etc/a", b"a")):
                info = tarfile.TarInfo(member)
                info.size = len(data)
                info.mode = 0o755
                tar.addfile(info, io.BytesIO(data))
            link = tarfile.TarInfo("etc/b")
            link.type = tarfile.SYMTYPE
            link.linkname = "a"
            tar.addfile(link)
        archives[name] = buffer.getvalue()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bin/install.sh", "#!/bin/sh\necho ok\n")
        archive.writestr("etc/a", "a")
    archives["kit.zip"] = buffer.getvalue()
    (files / "kit.tar.gz").write_bytes(archives["kit.tar.gz"])
    (files / "kit.zip").write_bytes(archives["kit.zip"])

    to_export = []
    for action_id, payload_name, mode in (
        ("conf", "tool.conf", "download"),
        ("kit", "kit.tar.gz", "execute"),
        ("zkit", "kit.zip", "execute"),
    ):
        data = (files / payload_name).read_bytes()
        predicate = ActionPredicate(
            id=action_id,
            version=1,
            name=f"(Fuzz){action_id}",
            os="linux",
            mode=mode,
            execute=ExecuteOptions(run="bin/install.sh", args=("--quiet",), timeout_seconds=60)
            if mode == "execute"
            else None,
            download=DownloadOptions(dest=f"/opt/fuzz/{payload_name}", file_mode="0640")
            if mode == "download"
            else None,
            valid_from=now - timedelta(hours=1),
            valid_until=now + timedelta(days=30),
            payload=ActionPayload(
                name=payload_name, sha256=hashlib.sha256(data).hexdigest(), size=len(data)
            ),
            intake=Intake(verified=False, method="none"),
        )
        bundle = bundle_to_json(sign_statement(distributor, action_statement(predicate)))
        to_export.append(
            ActionToExport(
                id=action_id,
                version=1,
                name=predicate.name,
                bundle=bundle,
                payload=files / payload_name,
                payload_name=payload_name,
            )
        )
    mount = base / "usb"
    mount.mkdir()
    header = ExportHeader(
        export_id="fuzz-export",
        sequence=7,
        created=now - timedelta(minutes=5),
        expires=now + timedelta(days=14),
        appliance_id="fuzz-appliance",
        distributor=fingerprint(distributor.public_key),
    )
    write_export(
        mount,
        to_export,
        header,
        lambda s: bundle_to_json(sign_statement(distributor, s)),
    )
    media = mount / layout.MEDIA_DIR
    export_bundle = (media / layout.STATEMENT_NAME).read_bytes()
    export_contents = read_export_statement(Statement.from_payload(_payload(export_bundle)))
    listed = {a.bundle: a for a in export_contents.predicate.actions}
    action_bundles = {path: (media / path).read_bytes() for path in listed}

    trust = PinnedKeyTrust(
        [
            TrustedKey(
                fingerprint(distributor.public_key),
                "fuzz distributor",
                distributor.public_key,
                frozenset({"exports", "actions"}),
                "pinned by the fuzz harness",
            )
        ]
    )

    receipt_predicate = ReceiptPredicate(
        agent_id="agent-fuzz",
        agent_key=spki_pem(agent.public_key).decode(),
        hostname="ws-fuzz",
        os="linux",
        export_id="fuzz-export",
        sequence=7,
        distributor=fingerprint(distributor.public_key),
        status="partial",
        started=now - timedelta(minutes=1),
        finished=now,
        actions=(
            ActionResult(id="conf", version=1, outcome="succeeded"),
            ActionResult(id="kit", version=1, outcome="failed", exit_code=3, reason="exit 3"),
        ),
    )
    receipt = bundle_to_json(sign_statement(agent, receipt_statement(receipt_predicate, "ab" * 32)))
    home, _ = init_home(base / "appliance")
    db = open_database(home)
    # the export the receipt answers, as the appliance recorded it: receipts verify in full
    db.execute(
        "INSERT INTO exports (id, sequence, key_name, key_fingerprint, created, expires, target, "
        "actions, files, bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            "fuzz-export",
            7,
            "fuzz",
            fingerprint(distributor.public_key),
            header.created.isoformat(),
            header.expires.isoformat(),
            str(mount),
            "[]",
            1,
            1,
        ],
    )
    db.conn.commit()
    returned = base / "returned"
    receipt_file = returned / layout.MEDIA_DIR / "receipts" / "agent-fuzz" / "fuzz-export.json"
    receipt_file.parent.mkdir(parents=True)

    blob = b"installer bytes\n" * 100
    blob_digest = hashlib.sha256(blob).digest()
    blob_bundle = bundle_to_json(
        message_signature_bundle(
            distributor.public_key, blob_digest, distributor.sign_digest(blob_digest)
        )
    )

    courier = base / "courier"
    (courier / layout.MEDIA_DIR).mkdir(parents=True)
    courier_source = DirectorySource(courier)

    def courier_check(data: bytes) -> object:
        (courier / layout.MEDIA_DIR / layout.STATEMENT_NAME).write_bytes(data)
        return read_statement_unverified(courier_source)

    def export_bundle_target(data: bytes) -> object:
        return verify_export_bundle(data, trust, now=now, subject="airseal/export.sigstore.json")

    by_id = {a.id: a for a in export_contents.predicate.actions}

    def action_bundle_target(data: bytes) -> object:
        # judged against the listing of the action it claims to be, with the data's own digest,
        # so the parser behind the digest check is reached
        entry = by_id.get(_claimed_action_id(data)) or export_contents.predicate.actions[0]
        return verify_action_bundle(
            data, entry, hashlib.sha256(data).hexdigest(), trust, subject=entry.bundle
        )

    def receipt_target(data: bytes) -> object:
        # the whole of `airseal receipts import`: read, verify, pin, store, audit
        receipt_file.write_bytes(data)
        result = import_receipts(home, db, returned, now=now)
        if result.refused:
            raise result.refused[0].error or AssertionError("refused without an error")
        return result

    def blob_target(data: bytes) -> object:
        bundle = parse_bundle(data, subject="blob.sigstore.json")
        return verify_blob_bundle(
            distributor.public_key, bundle, blob_digest, message=blob, subject="blob"
        )

    def statement_target(read: Callable[..., object]) -> Parser:
        def parse(data: bytes) -> object:
            return read(Statement.from_payload(data, subject="statement"), subject="statement")

        return parse

    def members_target(os_name: str) -> Parser:
        # read as both kinds: a mutated zip that lost its magic still feeds the zip reader
        def parse(data: bytes) -> object:
            refusals: list[AirsealError] = []
            for kind in ("zip", "tar"):
                try:
                    members = read_members(io.BytesIO(data), kind, limits, subject="payload")
                    check_members(members, os_name, limits, subject="payload")
                except AirsealError as refused:
                    refusals.append(refused)
            if len(refusals) == 2:
                raise refusals[0]
            return None

        return parse

    limits = ArchiveLimits()
    archive_seeds = list(archives.values())
    exporter = resigner(distributor, export_bundle)
    log_proofs, log_hashes, log_leaves = _log_proofs_seed(base, distributor, action_bundles)

    def log_proofs_target(data: bytes) -> object:
        # the agent's reading of log/proofs.json with the media's log/hashes, then the one proof
        # folded with the leaves (what verify_media_log does once the bundles are checked)
        from airseal.trustroot.tlog.media_proofs import MediaProofs

        proofs = MediaProofs.parse(data, log_hashes, subject="airseal/log/proofs.json")
        return proofs.roots({e.log_index: log_leaves.get(e.log_index, b"\0" * 32)
                             for e in proofs.entries})

    return [
        Target("log-proofs", log_proofs_target, [log_proofs]),
        Target("export-bundle (agent)", export_bundle_target, [export_bundle], exporter),
        Target("export-bundle (courier)", courier_check, [export_bundle], exporter),
        Target("action-bundle", action_bundle_target, list(action_bundles.values()), exporter),
        Target(
            "export-statement",
            statement_target(read_export_statement),
            [_payload(export_bundle)],
        ),
        Target(
            "action-statement",
            statement_target(read_action_statement),
            [_payload(b) for b in action_bundles.values()],
        ),
        Target("receipts-import", receipt_target, [receipt], resigner(agent, receipt)),
        Target("receipt-statement", statement_target(read_receipt_statement), [_payload(receipt)]),
        Target("blob-bundle", blob_target, [blob_bundle]),
        Target("archive-members (linux)", members_target("linux"), archive_seeds, json=False),
        Target("archive-members (windows)", members_target("windows"), archive_seeds, json=False),
    ]


def _log_proofs_seed(base: Path, signer: Any, bundles: dict[str, bytes]
                     ) -> tuple[bytes, bytes, dict[int, bytes]]:
    """``log/proofs.json`` and ``log/hashes`` as an export writes them: the action bundles
    logged in a real appliance log among other entries, after three earlier exports (so the
    proof covers entries and earlier sizes); and the leaf hash of each logged index."""
    import sqlite3

    from airseal._internal.migrations import migrate
    from airseal.appliance import tlog_store as ts
    from airseal.appliance.db import MIGRATIONS
    from airseal.trustroot.tlog import merkle

    conn = sqlite3.connect(base / "log.db", isolation_level=None)
    migrate(conn, MIGRATIONS)
    now = datetime.now(UTC)
    ts.create_log(conn, origin="log.fuzz.example", key_name="k", public_key=signer.public_key,
                  signer=signer, now=now)
    log = ts.TransparencyLog(conn)
    filler = iter(range(10**6))

    def others(n: int) -> list[Any]:
        return [ts.NewEntry("hashedrekord", b'{"n":%d}' % next(filler), "b") for _ in range(n)]

    for i in range(3):
        log.append([*others(5), ts.NewEntry("dsse", b'{"e":%d}' % i, f"{ts.EXPORT_SUBJECT} {i}")],
                   signer, now=now)
    logged = []
    for path, bundle in bundles.items():
        log.append(others(7), signer, now=now)
        new = ts.entry_for_bundle(bundle, signer.public_key, path)
        (index,), _ = log.append([new], signer, now=now)
        logged.append((path, path, ts.with_tlog_entry(bundle, log.entry(index))))
    files = ts.media_log_files(log, logged)
    leaves = {i: merkle.leaf_hash(log.entry(i).body) for i in range(log.size)}
    conn.close()
    return files.proofs, files.hashes, leaves
