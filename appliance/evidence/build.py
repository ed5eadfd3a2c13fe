"""Assemble the evidence from what was collected: files, claims, ``evidence.json``, ``VERIFY.md``,
``report.html`` and ``MANIFEST``. Pure: bytes in, bytes out, no clock and no disk."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from typing import Any

from airseal._internal.times import normalise_timestamp, utc_text
from airseal.appliance.evidence import claims as c
from airseal.appliance.evidence.model import Claim, Evidence, EvidenceSource
from airseal.appliance.evidence.report_html import render_report
from airseal.appliance.tlog_store import bundle_as_on_media

SCHEMA_VERSION = 1
SECTIONS = (
    ("files", "Files"),
    ("keys", "Public keys and fingerprints"),
    ("actions", "Signed actions"),
    ("vendor", "Vendor signatures verified at intake"),
    ("site", "Site policy in force"),
    ("exports", "Exports"),
    ("receipts", "Endpoint receipts"),
    ("audit", "Audit chain"),
)


def _t(text: str | None) -> str | None:
    return None if text is None else normalise_timestamp(text)


def build_evidence(source: EvidenceSource) -> Evidence:
    """Everything the evidence folder holds, ready to write."""
    ev = Evidence()
    ev.add(c.INCLUSION_SCRIPT_PATH, c.INCLUSION_SCRIPT.encode())
    ev.add(c.AUDIT_CHAIN_SCRIPT_PATH, c.AUDIT_CHAIN_SCRIPT.encode())
    keys = {k.fingerprint: k for k in source.keys}
    referenced: set[str] = set()
    uses: dict[str, list[str]] = {}

    def used(fps: list[str | None], role: str) -> None:
        for fp in fps:
            if fp is not None:
                referenced.add(fp)
                if role not in uses.setdefault(fp, []):
                    uses[fp].append(role)
    distributors = {fp: k.pem for fp, k in keys.items() if "agent" not in k.roles}
    log_fp = source.log.key_fingerprint if source.log else None
    if log_fp is not None:
        referenced.add(log_fp)

    def logged(layout: c.DsseLayout, what: str, section: str, slug: str) -> dict[str, Any] | None:
        if layout.tlog_entry is None or source.log is None or log_fp is None:
            return None
        found, summary = c.tlog_claims(ev, layout, what, log_fp, source.log.log_id, section,
                                       slug)
        ev.claims.extend(found)
        return summary

    if source.log is not None:
        ev.add("log/trusted_root.json", source.log.trusted_root)

    action_docs: list[dict[str, Any]] = []
    bundle_paths: dict[tuple[str, int], str] = {}
    bundle_bytes: dict[tuple[str, int], bytes] = {}
    vendor_keys: dict[str, str] = {}
    for a in source.actions:
        slug = f"action-{a.id}-v{a.version}"
        layout = c.lay_out_dsse(ev, f"actions/{a.id}-v{a.version}", a.bundle,
                                "action.sigstore.json")
        bundle_paths[(a.id, a.version)] = layout.bundle_path
        bundle_bytes[(a.id, a.version)] = a.bundle
        signers = [c.signer_of(layout, i, distributors) for i in range(len(layout.signatures))]
        used(signers, "signed actions")
        what = f"action {a.name!r} v{a.version}"
        ev.claims.extend(c.dsse_claims(layout, what, signers, "actions", slug))
        ev.claims.append(Claim(
            id=f"{slug}-payload",
            title=f"{what} names the payload {a.payload_name} with SHA-256 {a.payload_sha256}",
            commands=(f"grep -qF '\"sha256\":\"{a.payload_sha256}\"' {layout.statement_path}",),
            files=(layout.statement_path,), section="actions",
        ))
        vendor: dict[str, Any] | None = None
        if a.vendor.evidence is not None:
            found, vendor = c.vendor_claims(ev, layout.folder, a.vendor.evidence,
                                            a.payload_sha256, layout.statement_path, slug)
            ev.claims.extend(found)
            if "keyFingerprint" in vendor:
                vendor_keys[vendor["keyFingerprint"]] = ev.files[
                    c.key_path(vendor["keyFingerprint"])].decode()
        action_docs.append({
            "id": a.id, "version": a.version, "name": a.name, "os": a.os, "mode": a.mode,
            "payload": {"name": a.payload_name, "sha256": a.payload_sha256,
                        "size": a.payload_size},
            "key": {"name": a.key_name, "fingerprint": a.key_fingerprint},
            "signers": [s for s in signers if s is not None],
            "created": _t(a.created), "validUntil": _t(a.valid_until),
            "revoked": _t(a.revoked),
            "intake": {"method": a.vendor.method, "verified": a.vendor.verified,
                       "signer": a.vendor.signer, "added": _t(a.vendor.added),
                       "evidence": vendor},
            "bundle": layout.bundle_path, "statement": layout.statement_path,
            "log": logged(layout, what, "actions", slug),
        })

    site_doc = _site(ev, source, {fp for d in action_docs for fp in d["signers"]})

    export_docs: list[dict[str, Any]] = []
    statement_paths: dict[str, str] = {}
    for e in source.exports:
        slug = f"export-{e.id[:12]}"
        doc: dict[str, Any] = {
            "id": e.id, "sequence": e.sequence,
            "key": {"name": e.key_name, "fingerprint": e.key_fingerprint},
            "created": _t(e.created), "expires": _t(e.expires), "target": e.target,
            "actions": [{"id": i, "version": v} for i, v in e.actions],
            "statement": None, "bundle": None, "log": None,
        }
        if e.statement is not None:
            layout = c.lay_out_dsse(ev, f"exports/{e.id}", e.statement, "export.sigstore.json")
            statement_paths[e.id] = layout.bundle_path
            signers = [c.signer_of(layout, i, {e.key_fingerprint: keys[e.key_fingerprint].pem})
                       if e.key_fingerprint in keys else None
                       for i in range(len(layout.signatures))]
            what = f"export {e.id} (sequence {e.sequence})"
            used(signers, "signed exports")
            ev.claims.extend(c.dsse_claims(layout, what, signers, "exports", slug))
            for action_id, version in e.actions:
                path = bundle_paths.get((action_id, version))
                if path is None:
                    continue
                title = (f"{what} carried action {action_id} v{version} exactly as signed "
                         f"(its statement lists the SHA-256 of {path})")
                site_entry = _site_entry(e.statement, source.log.log_id) if source.log else None
                if source.log is not None and site_entry is not None:
                    # Media carry the bundle without the site log's entries (they travel once,
                    # in log/proofs.json: media-format.md 8a): show the bytes the media held.
                    kept = bundle_bytes[(action_id, version)]
                    on_media = bundle_as_on_media(kept, bytes.fromhex(source.log.log_id),
                                                  int(site_entry["logIndex"]))
                    if on_media != kept:
                        path = ev.add(f"exports/{e.id}/media/{action_id}-v{version}"
                                      ".sigstore.json", on_media)
                        title = (f"{what} carried action {action_id} v{version} exactly as "
                                 f"signed: its statement lists the SHA-256 of {path}, the "
                                 f"bundle as the media held it (the same DSSE envelope, its "
                                 f"site log entries carried once in log/proofs.json)")
                ev.claims.append(Claim(
                    id=f"{slug}-carries-{action_id}-v{version}",
                    title=title,
                    commands=(f'grep -qF "$(sha256sum {path} | cut -c1-64)" '
                              f"{layout.statement_path}",),
                    files=(path, layout.statement_path), section="exports",
                ))
            doc.update(statement=layout.statement_path, bundle=layout.bundle_path,
                       log=logged(layout, what, "exports", slug))
        export_docs.append(doc)

    receipt_docs: list[dict[str, Any]] = []
    for r in source.receipts:
        slug = f"receipt-{r.agent_id}-{r.export_id[:12]}"
        layout = c.lay_out_dsse(ev, f"receipts/{r.agent_id}/{r.export_id}", r.bundle,
                                "receipt.sigstore.json")
        agent_pem = keys[r.key_fingerprint].pem if r.key_fingerprint in keys else None
        signers = [c.signer_of(layout, i, {r.key_fingerprint: agent_pem} if agent_pem else {})
                   for i in range(len(layout.signatures))]
        used(signers, "signed receipts")
        what = f"the receipt of agent {r.agent_id} for export {r.export_id}"
        ev.claims.extend(c.dsse_claims(layout, what, signers, "receipts", slug))
        statement = statement_paths.get(r.export_id)
        if statement is not None:
            ev.claims.append(Claim(
                id=f"{slug}-answers",
                title=f"{what} answers that export: its subject is the SHA-256 of {statement}",
                commands=(f'grep -qF "$(sha256sum {statement} | cut -c1-64)" '
                          f"{layout.statement_path}",),
                files=(statement, layout.statement_path), section="receipts",
            ))
        receipt_docs.append({
            "agentId": r.agent_id, "agentName": r.agent_name, "hostname": r.hostname,
            "os": r.os, "enrolment": r.basis, "keyFingerprint": r.key_fingerprint,
            "exportId": r.export_id, "status": r.status, "finished": _t(r.finished),
            "imported": _t(r.imported), "sha256": r.sha256, "bundle": layout.bundle_path,
            "statement": layout.statement_path,
            "actions": [{"id": x.id, "version": x.version, "outcome": x.outcome,
                         "reason": x.reason, "exitCode": x.exit_code} for x in r.actions],
        })

    audit_doc = _audit(ev, source)
    shown = [replace(keys[fp], roles=(*keys[fp].roles, *uses.get(fp, ())))
             for fp in sorted(referenced) if fp in keys]
    for key in shown:
        ev.add(c.key_path(key.fingerprint), key.pem.encode())
        ev.claims.append(c.key_claim(key.fingerprint, key.names, key.roles))
    for fp in sorted(set(vendor_keys) - referenced):
        ev.claims.append(c.key_claim(fp, (), ("vendor",)))
    ev.claims.append(c.manifest_claim())
    ev.document = {
        "schemaVersion": SCHEMA_VERSION,
        "generated": utc_text(source.generated),
        "applianceId": source.appliance_id,
        "scope": {"kind": source.scope.kind, "value": source.scope.value},
        "actions": action_docs,
        "exports": export_docs,
        "receipts": receipt_docs,
        "keys": [{"fingerprint": k.fingerprint, "names": list(k.names), "roles": list(k.roles),
                  "path": c.key_path(k.fingerprint)} for k in shown]
        + [{"fingerprint": fp, "names": [], "roles": ["vendor"], "path": c.key_path(fp)}
           for fp in sorted(vendor_keys) if fp not in referenced],
        "site": site_doc,
        "log": None if source.log is None else {
            "origin": source.log.origin, "logId": source.log.log_id,
            "keyFingerprint": source.log.key_fingerprint,
            "trustedRoot": "log/trusted_root.json"},
        "audit": audit_doc,
        "claims": [claim.to_json() for claim in ev.claims],
        "notes": list(source.notes),
    }
    ev.add("evidence.json", (json.dumps(ev.document, indent=2) + "\n").encode())
    ev.add("VERIFY.md", verify_markdown(ev.claims, source).encode())
    ev.add("report.html", render_report(ev.document).encode())
    ev.add("MANIFEST", manifest(ev.files))
    return ev


def _site(ev: Evidence, source: EvidenceSource, signers: set[str]) -> dict[str, Any] | None:
    site = source.site
    if site is None:
        return None
    for path, data in site.files.items():
        ev.add(f"site/{path}", data)
    policy = f"site/{site.policy_path}"
    targets = f"site/metadata/{site.targets_version}.targets.json"
    ev.claims.append(Claim(
        id="site-policy-target",
        title=f"{targets} (the site targets in force) names the distributor policy {policy} "
        "by its SHA-256",
        commands=(f'grep -qF "$(sha256sum {policy} | cut -c1-64)" {targets}',),
        files=(policy, targets), section="site",
    ))
    for n, sig in enumerate(site.signatures, start=1):
        base = f"site/signatures/{sig.metadata.rsplit('/', 1)[-1].removesuffix('.json')}"
        signed = ev.add(f"{base}.signed.json", sig.signed)
        der = ev.add(f"{base}.{sig.keyid[:16]}.der", sig.signature)
        pem = ev.add(f"site/keys/{sig.keyid}.pem", sig.public_key_pem.encode())
        meta = f"site/{sig.metadata}"
        ev.claims.append(Claim(
            id=f"site-signature-{n}",
            title=f"TUF key {sig.keyid[:16]} signed {meta} ({signed} holds its signed part "
            "in canonical JSON)",
            commands=(
                f"grep -qF {sig.keyid} {meta}",
                f'grep -qF "$(od -An -tx1 -v {der} | tr -d " \\n")" {meta}',
                f"openssl dgst -sha256 -verify {pem} -signature {der} {signed}",
            ),
            files=(meta, signed, der, pem), section="site",
        ))
        if sig.metadata.endswith(".targets.json"):
            ev.claims.append(Claim(
                id=f"site-signed-policy-{n}",
                title=f"what key {sig.keyid[:16]} signed names the policy {policy} by its "
                "SHA-256",
                commands=(f'grep -qF "$(sha256sum {policy} | cut -c1-64)" {signed}',),
                files=(policy, signed), section="site",
            ))
    for fp in sorted(signers):
        ev.claims.append(Claim(
            id=f"site-policy-distributor-{fp[:16]}",
            title=f"the distributor policy in force lists the signing key {fp}",
            commands=(f"grep -qF {fp} {policy}",), files=(policy,), section="site",
        ))
    return {"targetsVersion": site.targets_version,
            "targetsPublished": _t(site.targets_published), "targets": targets,
            "policy": policy, "files": sorted(f"site/{p}" for p in site.files)}


def _audit(ev: Evidence, source: EvidenceSource) -> dict[str, Any]:
    chain, entries, paths = [], [], []
    for row in source.audit:
        body = json.dumps([row.seq, row.ts, row.actor, row.action, row.subject, row.details],
                          separators=(",", ":"))
        paths.append(ev.add(f"audit/entries/{row.seq}.json", body.encode()))
        chain.append(f"{row.seq} {row.prev_hash} {row.hash}\n")
        try:
            details: Any = json.loads(row.details)
        except ValueError:
            details = row.details
        entries.append({"seq": row.seq, "ts": _t(row.ts), "actor": row.actor,
                        "action": row.action, "subject": row.subject, "details": details,
                        "prevHash": row.prev_hash, "hash": row.hash, "relevant": row.relevant})
    ev.add("audit/chain.txt", "".join(chain).encode())
    head_seq, head_hash = source.audit_head
    ev.add("audit/head.txt", f"{head_seq} {head_hash}\n".encode())
    ev.claims.append(c.audit_claim(tuple(paths)))
    return {"first": source.audit[0].seq if source.audit else None,
            "head": {"seq": head_seq, "hash": head_hash}, "entries": entries}


def manifest(files: dict[str, bytes]) -> bytes:
    """``sha256sum`` format, sorted by path: ``sha256sum -c MANIFEST`` checks every file."""
    return "".join(f"{hashlib.sha256(files[p]).hexdigest()}  {p}\n"
                   for p in sorted(files)).encode()


def verify_markdown(claims: list[Claim], source: EvidenceSource) -> str:
    """``VERIFY.md``: every claim, and under it the exact commands that re-check it."""
    out = [
        "# How to verify this evidence",
        "",
        f"Evidence of {source.scope.describe()} from Airseal appliance {source.appliance_id}, "
        f"made {utc_text(source.generated)}.",
        "",
        "Run every command from this folder (`cd` into it), in any POSIX shell, with `openssl` "
        "(1.1.1 or 3.x) and GNU coreutils (`sha256sum`, `base64`, `od`, `cmp`, `wc`). Nothing "
        "reaches the network and nothing of Airseal is needed. Each command exits 0 when its "
        "claim holds and non-zero otherwise; a claim holds when all of its commands do. "
        "`report.html` is the same evidence for reading; `evidence.json` for machines.",
        "",
        "The MANIFEST says the files are as written, not who wrote them: the appliance "
        "recorded the MANIFEST's SHA-256 in its audit chain (action `evidence.export`), so "
        "compare it with `sha256sum MANIFEST` against the appliance's `airseal audit list`.",
        "",
        "Where `cosign` (v2.4 or later) is installed and the payload file is at hand, a "
        "bundle can also be checked whole, e.g. `cosign verify-blob-attestation "
        "--new-bundle-format --key keys/FINGERPRINT.pem --bundle "
        "actions/ID-vN/action.sigstore.json --trusted-root log/trusted_root.json PAYLOAD`, "
        "and a keyless vendor bundle with `cosign verify-blob PAYLOAD --bundle "
        "actions/ID-vN/vendor/vendor.sigstore.json --certificate-identity ... "
        "--certificate-oidc-issuer ... --trusted-root actions/ID-vN/vendor/trusted_root.json`. "
        "The `openssl` commands below check the same signatures without the payload, and are "
        "what this evidence relies on (cosign was not run when it was made).",
        "",
    ]
    for section, heading in SECTIONS:
        chosen = [claim for claim in claims if claim.section == section]
        if not chosen:
            continue
        out += [f"## {heading}", ""]
        for claim in chosen:
            out += [f"### `{claim.id}`: {claim.title}", "", "```sh", *claim.commands, "```", ""]
    out += [
        "## The two scripts, in full",
        "",
        "Inclusion proofs and the audit chain have no standard command; these scripts "
        "recompute them with `openssl dgst` and `sha256sum` (they are in `tools/`).",
        "",
        f"`{c.INCLUSION_SCRIPT_PATH}`:",
        "",
        "```text",
        c.INCLUSION_SCRIPT.rstrip("\n"),
        "```",
        "",
        f"`{c.AUDIT_CHAIN_SCRIPT_PATH}`:",
        "",
        "```text",
        c.AUDIT_CHAIN_SCRIPT.rstrip("\n"),
        "```",
        "",
    ]
    if source.notes:
        out += ["## What this evidence does not contain", ""]
        out += [f"- {note}" for note in source.notes]
        out.append("")
    return "\n".join(out)


def _site_entry(statement_bundle: bytes, log_id_hex: str) -> Any:
    """The export statement bundle's entry in the site log (it is leaf N: the export's
    checkpoint had N entries), or None."""
    wanted = base64.b64encode(bytes.fromhex(log_id_hex)).decode()
    material = json.loads(statement_bundle).get("verificationMaterial") or {}
    for item in material.get("tlogEntries") or []:
        if item.get("logId", {}).get("keyId") == wanted:
            return item
    return None
