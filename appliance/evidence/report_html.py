"""``report.html``: the evidence for people, one self-contained page (inline CSS, no scripts, no
fonts or images fetched), readable in any browser offline. Pure: the document in, text out."""

from __future__ import annotations

import json
from html import escape
from typing import Any

_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #1b1b1b;
       padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #bbb; margin-top: 2em; }
table { border-collapse: collapse; width: 100%; margin: 0.6em 0 1.2em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #f0f0f0; }
code, .fp { font-family: ui-monospace, monospace; font-size: 0.9em; word-break: break-all; }
.ok { color: #0a6b2d; font-weight: 600; } .bad { color: #a40000; font-weight: 600; }
.muted { color: #666; } pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; }
@media print { h2 { page-break-after: avoid; } }
"""

_GOOD = {"succeeded", "already-done", "completed"}


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _code(value: Any) -> str:
    return f"<code>{_e(value)}</code>"


def _outcome(value: str) -> str:
    css = "ok" if value in _GOOD else "bad"
    return f'<span class="{css}">{_e(value)}</span>'


def render_report(doc: dict[str, Any]) -> str:
    names = {k["fingerprint"]: ", ".join(k["names"]) for k in doc["keys"]}
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Airseal evidence: {_e(doc['scope']['kind'])} {_e(doc['scope']['value'])}"
        "</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Evidence: {_e(doc['scope']['kind'])} {_e(doc['scope']['value'])}</h1>",
        f'<p class="muted">Airseal appliance {_code(doc["applianceId"])}, made '
        f"{_e(doc['generated'])}. Every statement here is re-checked by the commands in "
        f"<code>VERIFY.md</code> ({len(doc['claims'])} claims) with openssl and coreutils.</p>",
    ]
    parts.append("<h2>What was signed, and by whom</h2>")
    rows = []
    for a in doc["actions"]:
        signers = "<br>".join(f'<span class="fp">{_e(fp)}</span> ({_e(names.get(fp, ""))})'
                              for fp in a["signers"]) or '<span class="bad">no known key</span>'
        log = a["log"]
        rows.append([
            f"<b>{_e(a['name'])}</b><br>{_code(a['id'])} v{_e(a['version'])}",
            f"{_e(a['payload']['name'])} ({_e(a['payload']['size'])} bytes)<br>"
            f'SHA-256 <span class="fp">{_e(a["payload"]["sha256"])}</span>',
            signers,
            f"{_e(a['created'])} to {_e(a['validUntil'])}"
            + (f'<br><span class="bad">revoked {_e(a["revoked"])}</span>' if a["revoked"] else ""),
            "-" if log is None else f"entry {_e(log['index'])} of {_e(log['treeSize'])}",
        ])
    parts.append(_table(["Action", "Payload", "Signed by (fingerprint)", "Valid", "Log"], rows))

    parts.append("<h2>Vendor verification at intake</h2>")
    rows = []
    for a in doc["actions"]:
        intake = a["intake"]
        vendor = intake["evidence"] or {}
        rows.append([
            f"{_e(a['name'])} v{_e(a['version'])}", _e(intake["method"]),
            '<span class="ok">verified</span>' if intake["verified"]
            else '<span class="bad">not verified</span>',
            f'<span class="fp">{_e(intake["signer"] or "-")}</span>',
            "kept here, and carried to endpoints" if vendor
            else "-" if intake["method"] == "none"
            else "not kept (cannot be checked from the digest alone)",
            _e(intake["added"]),
        ])
    parts.append(_table(["Action", "Method", "Result", "Signer (key fingerprint or identity)",
                         "Evidence", "Added"], rows))

    site = doc["site"]
    parts.append("<h2>Site policy in force</h2>")
    if site is None:
        parts.append("<p>This appliance has no site repository: endpoints pin the "
                     "distributor keys directly.</p>")
    else:
        parts.append(
            f"<p>Targets version {_e(site['targetsVersion'])} (published "
            f"{_e(site['targetsPublished'] or 'at a time the audit chain does not record')}), "
            f"distributor policy {_code(site['policy'])}; "
            f"{len(site['files'])} metadata files under <code>site/</code>.</p>")

    parts.append("<h2>Exports</h2>")
    rows = [[
        f"{_code(e['id'])}", _e(e["sequence"]),
        f'{_e(e["key"]["name"])}<br><span class="fp">{_e(e["key"]["fingerprint"])}</span>',
        _e(e["created"]), ", ".join(f"{_e(x['id'])} v{_e(x['version'])}" for x in e["actions"]),
        "kept" if e["statement"] else '<span class="bad">not kept</span>',
    ] for e in doc["exports"]]
    parts.append(_table(["Export", "Sequence", "Signed by", "Created", "Actions",
                         "Signed statement"], rows))

    parts.append("<h2>Endpoints that imported it</h2>")
    rows = []
    for r in doc["receipts"]:
        outcomes = "<br>".join(f"{_e(x['id'])} v{_e(x['version'])}: {_outcome(x['outcome'])}"
                               + (f" ({_e(x['reason'])})" if x["reason"] else "")
                               for x in r["actions"])
        rows.append([
            f"<b>{_e(r['agentId'])}</b><br>{_e(r['hostname'])} ({_e(r['os'])})",
            f'<span class="fp">{_e(r["keyFingerprint"])}</span><br>enrolment: '
            f"{_e(r['enrolment'])}",
            _code(r["exportId"][:12]), _outcome(r["status"]), outcomes, _e(r["finished"]),
        ])
    parts.append(_table(["Agent", "Agent key", "Export", "Status", "Actions", "Finished"], rows))

    parts.append("<h2>Keys</h2>")
    parts.append(_table(["Fingerprint (SHA-256 of DER SPKI)", "Names", "Roles", "File"], [
        [f'<span class="fp">{_e(k["fingerprint"])}</span>', _e(", ".join(k["names"])),
         _e(", ".join(k["roles"])), _code(k["path"])] for k in doc["keys"]]))

    log = doc["log"]
    parts.append("<h2>Transparency log</h2>")
    parts.append("<p>No log: this appliance does not keep one.</p>" if log is None else
                 f"<p>Log {_code(log['origin'])}, id {_code(log['logId'])}, key "
                 f'<span class="fp">{_e(log["keyFingerprint"])}</span>; '
                 f"{_code(log['trustedRoot'])} names it for Sigstore verifiers.</p>")

    audit = doc["audit"]
    parts.append("<h2>Audit chain</h2>")
    parts.append(f"<p>Entries {_e(audit['first'])} to {_e(audit['head']['seq'])}, linked to the "
                 f"head {_code(audit['head']['hash'])}; entries about this evidence's subject "
                 "are in bold.</p>")
    rows = []
    for entry in audit["entries"]:
        mark = (lambda s: f"<b>{s}</b>") if entry["relevant"] else (lambda s: s)
        rows.append([mark(_e(entry["seq"])), _e(entry["ts"]), _e(entry["actor"]),
                     mark(_e(entry["action"])), _e(entry["subject"]),
                     _code(json.dumps(entry["details"], sort_keys=True))])
    parts.append(_table(["Seq", "Time", "Actor", "Action", "Subject", "Details"], rows))

    parts.append("<h2>Claims and how to check them</h2>")
    rows = [[_code(claim["id"]), _e(claim["title"]),
             "<pre>" + _e("\n".join(claim["commands"])) + "</pre>"] for claim in doc["claims"]]
    parts.append(_table(["Claim", "Statement", "Commands (run in this folder)"], rows))
    if doc["notes"]:
        parts.append("<h2>Not included</h2><ul>"
                     + "".join(f"<li>{_e(n)}</li>" for n in doc["notes"]) + "</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
