"""Read what the evidence needs from the appliance: the only module of the evidence that touches
the database and the home. Everything comes out as plain bytes and strings
(:class:`~airseal.appliance.evidence.model.EvidenceSource`).

What the appliance keeps, and so what evidence can show: every action version and its bundle
(with its log entry), intake's record and the vendor evidence it kept, each export's row and
(since this appliance kept them) its signed statement, the receipts of enrolled agents and their
keys, every site metadata version and policy target, and the whole audit chain. The site policy
"in force" at a time is the newest targets version the audit chain records as published before
it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from airseal.appliance.actions import ActionNotFound, list_actions
from airseal.appliance.audit import verify_chain
from airseal.appliance.errors import ApplianceError, UsageError
from airseal.appliance.evidence.model import (
    ActionSource,
    AuditRowSource,
    EvidenceSource,
    ExportSource,
    KeySource,
    LogSource,
    ReceiptActionSource,
    ReceiptSource,
    Scope,
    SiteSource,
    TufSignature,
    VendorSource,
)
from airseal.appliance.export import export_statement_path
from airseal.appliance.home import Home
from airseal.appliance.intake import read_vendor_evidence
from airseal.trustroot.errors import VerificationError
from airseal.trustroot.keys import fingerprint, load_public_key


class ExportNotFound(ApplianceError):
    title = "Export not found"
    hint = "`airseal export list` shows the exports"


class AuditChainBroken(VerificationError):
    title = "Audit chain broken"
    check = "audit"
    hint = "`airseal audit verify` names the rows; evidence is made only from an intact chain"


class NothingInScope(ApplianceError):
    title = "Nothing to show"
    hint = "choose an earlier --since, or name an --action or --export"


def _rows(db: sqlite_utils.Database, sql: str, args: list[Any]) -> list[dict[str, Any]]:
    cursor = db.execute(sql, args)
    columns = [col[0] for col in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class _Chosen:
    actions: list[Any]
    exports: list[dict[str, Any]]


def _exports(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    rows = _rows(db, "SELECT * FROM exports ORDER BY sequence, created", [])
    for row in rows:
        row["actions"] = [(a["id"], a["version"]) for a in json.loads(row["actions"])]
    return rows


def _choose(db: sqlite_utils.Database, scope: Scope) -> _Chosen:
    every = list_actions(db, include_revoked=True, all_versions=True)
    exports = _exports(db)
    if scope.kind == "action":
        actions = [a for a in every if a.id == scope.value]
        if not actions:
            raise ActionNotFound(f"no action {scope.value}", subject=scope.value)
        chosen = [e for e in exports if any(i == scope.value for i, _ in e["actions"])]
        return _Chosen(actions, chosen)
    if scope.kind == "export":
        matches = [e for e in exports if e["id"] == scope.value] or (
            [e for e in exports if e["id"].startswith(scope.value)]
            if len(scope.value) >= 8 else [])
        if len(matches) != 1:
            raise ExportNotFound(
                f"no export {scope.value}" if not matches
                else f"{scope.value} matches {len(matches)} exports: give more digits",
                subject=scope.value)
        carried = set(matches[0]["actions"])
        return _Chosen([a for a in every if (a.id, a.version) in carried], matches)
    since = _since(scope.value)
    chosen = [e for e in exports if _instant(e["created"]) >= since]
    carried = {pair for e in chosen for pair in e["actions"]}
    actions = [a for a in every
               if _instant(a.created) >= since or (a.id, a.version) in carried]
    if not actions and not chosen:
        raise NothingInScope(f"no action or export since {scope.value}", subject="--since")
    return _Chosen(actions, chosen)


def _since(text: str) -> datetime:
    try:
        return _instant(text if "T" in text else text + "T00:00:00+00:00")
    except ValueError:
        raise UsageError(f"--since {text!r} is not a date (YYYY-MM-DD or an ISO 8601 time)",
                         subject="--since") from None


def collect(home: Home, db: sqlite_utils.Database, scope: Scope, *, now: datetime,
            log_trusted_root: bytes | None) -> EvidenceSource:
    """Everything the evidence of ``scope`` shows, read in one go (raises when the audit chain
    does not verify: evidence is never made from a damaged chain)."""
    report = verify_chain(home, db)
    if not report.ok:
        raise AuditChainBroken(report.problems[0].problem, subject="audit")
    chosen = _choose(db, scope)
    keys: dict[str, dict[str, Any]] = {}

    def key(pem: str, name: str | None, role: str) -> str:
        fp = fingerprint(load_public_key(pem.encode(), subject=name or role))
        entry = keys.setdefault(fp, {"pem": pem, "names": [], "roles": []})
        if name and name not in entry["names"]:
            entry["names"].append(name)
        if role not in entry["roles"]:
            entry["roles"].append(role)
        return fp

    appliance_keys = {r["name"]: r for r in _rows(db, "SELECT name, public_key_pem, "
                                                  "fingerprint FROM keys", [])}
    for row in appliance_keys.values():  # candidates: the builder keeps those that signed
        key(row["public_key_pem"], row["name"], "appliance key")
    notes = ["The payload files themselves are not included, only their SHA-256: compare a "
             "copy with `sha256sum FILE`."]

    actions = []
    for a in chosen.actions:
        file_row = _rows(db, "SELECT * FROM files WHERE sha256 = ?", [a.payload_sha256])
        intake = file_row[0] if file_row else {"method": "unknown", "verified": 0,
                                               "signer": None, "added": ""}
        actions.append(ActionSource(
            id=a.id, version=a.version, name=a.name, os=a.os, mode=a.mode,
            payload_name=a.predicate.payload.name, payload_sha256=a.payload_sha256,
            payload_size=a.predicate.payload.size, key_name=a.key_name,
            key_fingerprint=appliance_keys[a.key_name]["fingerprint"]
            if a.key_name in appliance_keys else "",
            created=a.created, valid_until=a.valid_until, revoked=a.revoked,
            bundle=a.bundle.encode(),
            vendor=VendorSource(str(intake["method"]), bool(intake["verified"]),
                                None if intake["signer"] is None else str(intake["signer"]),
                                str(intake["added"]),
                                read_vendor_evidence(home, a.payload_sha256)),
        ))

    exports = []
    for e in chosen.exports:
        path = export_statement_path(home, e["id"])
        statement = path.read_bytes() if path.is_file() else None
        if statement is None:
            notes.append(f"Export {e['id']} was written before this appliance kept signed "
                         "export statements: its row and audit entry are shown, not its "
                         "signature.")
        exports.append(ExportSource(
            id=e["id"], sequence=e["sequence"], key_name=e["key_name"],
            key_fingerprint=e["key_fingerprint"], created=e["created"], expires=e["expires"],
            target=e["target"], actions=tuple(e["actions"]), statement=statement,
        ))

    export_ids = [e.id for e in exports]
    receipts = []
    if export_ids:
        marks = ",".join("?" * len(export_ids))
        rows = _rows(db, "SELECT r.*, e.name AS agent_name, e.basis, e.key_fingerprint, "  # noqa: S608
                     "e.public_key_pem, g.hostname, g.os FROM receipts r "
                     "JOIN enrolled_agents e ON e.id = r.agent_id "
                     "JOIN agents g ON g.id = r.agent_id "
                     f"WHERE r.export_id IN ({marks}) ORDER BY r.agent_id, r.finished",
                     export_ids)
        for r in rows:
            key(r["public_key_pem"], r["agent_name"] or r["agent_id"], "agent")
            acts = _rows(db, "SELECT action_id, version, outcome, reason, exit_code FROM "
                         "receipt_actions WHERE agent_id = ? AND export_id = ? ORDER BY "
                         "action_id", [r["agent_id"], r["export_id"]])
            receipts.append(ReceiptSource(
                agent_id=r["agent_id"], agent_name=r["agent_name"], hostname=r["hostname"],
                os=r["os"], basis=r["basis"], key_fingerprint=r["key_fingerprint"],
                export_id=r["export_id"], status=r["status"], finished=r["finished"],
                imported=r["imported"], sha256=r["sha256"], bundle=r["bundle"].encode(),
                actions=tuple(ReceiptActionSource(x["action_id"], x["version"], x["outcome"],
                                                  x["reason"], x["exit_code"]) for x in acts),
            ))

    log = None
    info = _rows(db, "SELECT origin, key_name, log_id, public_key_pem FROM log", [])
    if info and log_trusted_root is not None:
        fp = key(info[0]["public_key_pem"], info[0]["key_name"], "log")
        log = LogSource(info[0]["origin"], fp, info[0]["log_id"], log_trusted_root)

    times = [_instant(a.created) for a in chosen.actions] + [
        _instant(e.created) for e in exports]
    at = max(times) if times else now
    site = _site(home, db, at, notes)
    if site is not None:  # distributors of other appliances sign (approve) here too
        from airseal.trustroot.site_policy import parse_policy

        for d in parse_policy(site.files[site.policy_path]).distributors:
            key(d.public_key_pem, d.name, "distributor in the site policy")
    audit, head = _audit(db, scope, actions, exports)
    return EvidenceSource(
        scope=scope, generated=now, appliance_id=home.appliance_id,
        actions=tuple(actions), exports=tuple(exports), receipts=tuple(receipts),
        keys=tuple(KeySource(fp, k["pem"], tuple(k["names"]), tuple(k["roles"]))
                   for fp, k in sorted(keys.items())),
        audit=tuple(audit), audit_head=head, site=site, log=log, notes=tuple(notes),
    )


def _published(db: sqlite_utils.Database, role: str) -> list[tuple[int, str]]:
    out = []
    for subject, ts in db.execute("SELECT subject, ts FROM audit WHERE action = 'site.publish' "
                                  "AND subject LIKE ? ORDER BY seq", [f"{role} v%"]).fetchall():
        out.append((int(subject.split(" v", 1)[1]), ts))
    return out


def _site(home: Home, db: sqlite_utils.Database, at: datetime,
          notes: list[str]) -> SiteSource | None:
    from airseal.appliance.site import SITE_DIR
    from airseal.trustroot.site_policy import POLICY_TARGET

    metadata = home.root / SITE_DIR / "metadata"
    if not metadata.is_dir():
        notes.append("This appliance has no site repository: no site policy is included.")
        return None
    targets = [(v, ts) for v, ts in _published(db, "targets") if _instant(ts) <= at]
    if not targets:
        notes.append("No site targets version was published before the time in question.")
        return None
    version, published = targets[-1]
    roots = {v for v, ts in _published(db, "root") if _instant(ts) <= at}
    files = {f"metadata/{v}.root.json": (metadata / f"{v}.root.json").read_bytes()
             for v in sorted(roots) if (metadata / f"{v}.root.json").is_file()}
    targets_bytes = (metadata / f"{version}.targets.json").read_bytes()
    files[f"metadata/{version}.targets.json"] = targets_bytes
    info = json.loads(targets_bytes)["signed"]["targets"][POLICY_TARGET]
    folder, _, base = POLICY_TARGET.rpartition("/")
    policy_rel = f"targets/{folder}/{info['hashes']['sha256']}.{base}"
    files[policy_rel] = (home.root / SITE_DIR / policy_rel).read_bytes()
    return SiteSource(files=files, targets_version=version, targets_published=published,
                      policy_path=policy_rel, signatures=_tuf_signatures(files, notes))


def _tuf_signatures(files: dict[str, bytes], notes: list[str]) -> tuple[TufSignature, ...]:
    """Every signature on the root versions and the targets in force, with the canonical bytes
    it covers and the key the delegating root lists (a root is checked with its own keys and
    the previous root's: both must sign a new root)."""
    from tuf.api.metadata import Metadata

    out: list[TufSignature] = []
    roots = sorted((int(p.split("/")[1].split(".")[0]), p) for p in files
                   if p.endswith(".root.json"))
    targets = [p for p in files if p.endswith(".targets.json")]
    keys: dict[str, Any] = {}
    skipped = 0
    for _, path in [*roots, *((0, t) for t in targets)]:
        md: Metadata[Any] = Metadata.from_bytes(files[path])
        if md.signed.type == "root":
            keys = {**keys, **md.signed.keys}
        for keyid, signature in md.signatures.items():
            key = keys.get(keyid)
            if key is None or key.scheme not in ("ecdsa-sha2-nistp256", "rsa-pkcs1v15-sha256"):
                skipped += 1
                continue
            out.append(TufSignature(path, md.signed_bytes, keyid,
                                    bytes.fromhex(signature.signature), key.keyval["public"]))
    if skipped:
        notes.append(f"{skipped} site metadata signature(s) (Ed25519 keys, or keys no root here "
                     "lists) are included as signed but not laid out for openssl: python-tuf "
                     "checks them.")
    return tuple(out)


def _audit(db: sqlite_utils.Database, scope: Scope, actions: list[ActionSource],
           exports: list[ExportSource]) -> tuple[list[AuditRowSource], tuple[int, str]]:
    ids = {a.id for a in actions}
    digests = {a.payload_sha256 for a in actions}
    export_ids = {e.id for e in exports}
    since = _since(scope.value) if scope.kind == "since" else None
    rows = db.execute("SELECT seq, ts, actor, action, subject, details, prev_hash, hash "
                      "FROM audit ORDER BY seq").fetchall()

    def relevant(ts: str, action: str, subject: str, details: str) -> bool:
        if since is not None and _instant(ts) >= since:
            return True
        try:
            data = json.loads(details)
        except ValueError:
            return False
        if not isinstance(data, dict):
            return False
        return ((action.startswith("action.") and subject in ids)
                or (action == "file.add" and data.get("sha256") in digests)
                or (action == "export" and data.get("export_id") in export_ids))

    marked = [(row, relevant(row[1], row[3], row[4], row[5])) for row in rows]
    firsts = [row[0] for row, hit in marked if hit]
    head = (int(rows[-1][0]), str(rows[-1][7])) if rows else (0, "0" * 64)
    start = min(firsts) if firsts else head[0]
    return [AuditRowSource(int(row[0]), row[1], row[2], row[3], row[4], row[5], row[6], row[7],
                           relevant=hit) for row, hit in marked if row[0] >= start], head
