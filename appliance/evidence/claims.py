"""Signed objects as files an auditor's tools read, and the commands that re-check them.

Every check is a short POSIX shell command over ``openssl`` and coreutils, run from the evidence
folder: a detached signature becomes the DER signature and the exact signed bytes (``openssl dgst
-sha256 -verify``), a signature over a digest the 32 digest bytes (``openssl pkeyutl -verify``).
The Merkle inclusion proof and the audit hash chain have no standard command-line tool, so the
evidence carries two small shell scripts (:data:`INCLUSION_SCRIPT`, :data:`AUDIT_CHAIN_SCRIPT`)
that recompute them with ``openssl dgst`` and ``sha256sum``: short enough to read in full, and
printed in ``VERIFY.md``. No code here verifies anything for the auditor; it only lays out what
their tools verify.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from airseal.appliance.evidence.model import Claim, Evidence
from airseal.errors import AirsealError
from airseal.trustroot.dsse import IN_TOTO_PAYLOAD_TYPE, pae
from airseal.trustroot.keys import load_public_key, verify_message

INCLUSION_SCRIPT_PATH = "tools/verify-inclusion.sh"
AUDIT_CHAIN_SCRIPT_PATH = "tools/verify-audit-chain.sh"

INCLUSION_SCRIPT = r"""#!/bin/sh
# Usage: sh tools/verify-inclusion.sh DIR
# Recompute a transparency-log inclusion proof (RFC 9162 section 2.1.3.2) with openssl.
# DIR holds body.json (the logged entry), index, size, proof/NN.bin (the proof's hashes, in
# order) and checkpoint-body.txt (the signed checkpoint: origin, size, base64 root hash).
set -eu
d=$1
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
index=$(cat "$d/index"); size=$(cat "$d/size")
fail() { echo "$d: $1" >&2; exit 1; }
[ "$(sed -n 2p "$d/checkpoint-body.txt")" = "$size" ] || fail "the checkpoint's size differs"
fn=$index; sn=$((size - 1))
{ printf '\000'; cat "$d/body.json"; } | openssl dgst -sha256 -binary > "$t/r"
for p in "$d"/proof/*.bin; do
  [ -e "$p" ] || break
  [ "$sn" -gt 0 ] || fail "more proof hashes than tree levels"
  if [ $((fn % 2)) -eq 1 ] || [ "$fn" -eq "$sn" ]; then
    { printf '\001'; cat "$p" "$t/r"; } | openssl dgst -sha256 -binary > "$t/n"
    while [ $((fn % 2)) -eq 0 ] && [ "$fn" -ne 0 ]; do fn=$((fn / 2)); sn=$((sn / 2)); done
  else
    { printf '\001'; cat "$t/r" "$p"; } | openssl dgst -sha256 -binary > "$t/n"
  fi
  mv "$t/n" "$t/r"; fn=$((fn / 2)); sn=$((sn / 2))
done
[ "$sn" -eq 0 ] || fail "fewer proof hashes than tree levels"
sed -n 3p "$d/checkpoint-body.txt" | base64 -d > "$t/root"
cmp -s "$t/r" "$t/root" || fail "the proof does not lead to the checkpoint's root hash"
echo "$d: entry $index is in the log of size $size"
"""

AUDIT_CHAIN_SCRIPT = r"""#!/bin/sh
# Usage: sh tools/verify-audit-chain.sh
# Recompute the audit hash chain: hash(row) = SHA-256(prev_hash (64 hex characters) followed by
# audit/entries/SEQ.json, the exact JSON array [seq, ts, actor, action, subject, details] the
# appliance hashed). audit/chain.txt lists "seq prev_hash hash" per row; audit/head.txt the head.
set -eu
prev=""; last=""
while read -r seq prev_hash hash; do
  if [ -n "$last" ]; then
    [ "$seq" -eq $((last + 1)) ] || { echo "row $seq: rows missing before it" >&2; exit 1; }
    [ "$prev_hash" = "$prev" ] || { echo "row $seq does not follow row $last" >&2; exit 1; }
  fi
  got=$({ printf '%s' "$prev_hash"; cat "audit/entries/$seq.json"; } | sha256sum | cut -c1-64)
  [ "$got" = "$hash" ] || { echo "row $seq: its content does not give its hash" >&2; exit 1; }
  prev=$hash; last=$seq
done < audit/chain.txt
read -r head_seq head_hash < audit/head.txt
[ "$last" = "$head_seq" ] && [ "$prev" = "$head_hash" ] || {
  echo "the chain does not end at the recorded head" >&2; exit 1; }
echo "audit chain: rows up to $last link to head $head_hash"
"""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def key_path(fp: str) -> str:
    return f"keys/{fp}.pem"


def key_claim(fp: str, names: tuple[str, ...], roles: tuple[str, ...]) -> Claim:
    path = key_path(fp)
    label = ", ".join(names) or "no name here"
    return Claim(
        id=f"key-{fp[:16]}",
        title=f"{path} ({label}; {', '.join(roles)}) has SHA-256 fingerprint {fp} "
        "(of its DER SubjectPublicKeyInfo)",
        commands=(
            f'test "$(openssl pkey -pubin -in {path} -outform DER | sha256sum | cut -c1-64)" '
            f"= {fp}",
        ),
        files=(path,),
        section="keys",
    )


@dataclass(frozen=True)
class DsseLayout:
    """A DSSE bundle laid out under ``folder``: the paths and what each signature is."""

    folder: str
    bundle_path: str
    statement_path: str
    pae_path: str
    payload_type: str
    payload: bytes
    statement: dict[str, Any]
    signatures: tuple[tuple[str, bytes], ...]
    """(path of the DER signature, signature bytes) per envelope signature."""
    tlog_entry: dict[str, Any] | None


def lay_out_dsse(evidence: Evidence, folder: str, bundle_json: bytes, name: str) -> DsseLayout:
    """Write the bundle as received, its statement (the DSSE payload), the PAE bytes every
    signature covers, and each signature in DER."""
    data = json.loads(bundle_json)
    envelope = data["dsseEnvelope"]
    payload = base64.b64decode(envelope["payload"])
    payload_type = envelope["payloadType"]
    if payload_type != IN_TOTO_PAYLOAD_TYPE:  # it is written into a shell command below
        raise ValueError(f"{folder}: payload type {payload_type!r} is not in-toto")
    bundle_path = evidence.add(f"{folder}/{name}", bundle_json)
    statement_path = evidence.add(f"{folder}/statement.json", payload)
    pae_path = evidence.add(f"{folder}/pae.bin", pae(payload_type, payload))
    signatures = []
    for n, item in enumerate(envelope["signatures"], start=1):
        sig = base64.b64decode(item["sig"])
        signatures.append((evidence.add(f"{folder}/signature-{n}.der", sig), sig))
    entries = data.get("verificationMaterial", {}).get("tlogEntries") or []
    return DsseLayout(folder, bundle_path, statement_path, pae_path, payload_type, payload,
                      json.loads(payload), tuple(signatures), entries[0] if entries else None)


def signer_of(layout: DsseLayout, index: int, keys: dict[str, str]) -> str | None:
    """The fingerprint (among ``keys``: fingerprint -> PEM) whose key made signature ``index``."""
    sig = layout.signatures[index][1]
    message = pae(layout.payload_type, layout.payload)
    for fp, pem in keys.items():
        try:
            verify_message(load_public_key(pem.encode()), sig, message)
        except AirsealError:
            continue
        return fp
    return None


def dsse_claims(layout: DsseLayout, what: str, signers: list[str | None], section: str,
                slug: str) -> list[Claim]:
    """The statement is the bundle's payload, the PAE is built from it, and each signature
    verifies with its signer's key."""
    f = layout
    claims = [
        Claim(
            id=f"{slug}-statement",
            title=f"{f.statement_path} is the payload of {what}'s DSSE envelope, and "
            f"{f.pae_path} is its DSSE pre-authentication encoding (the bytes signed)",
            commands=(
                f'grep -qF "$(base64 -w0 {f.statement_path})" {f.bundle_path}',
                "{ printf 'DSSEv1 %s %s %s ' "
                f"{len(f.payload_type.encode())} '{f.payload_type}' "
                f'"$(wc -c < {f.statement_path} | tr -d " ")"; cat {f.statement_path}; }} '
                f"| cmp -s - {f.pae_path}",
            ),
            files=(f.statement_path, f.pae_path, f.bundle_path),
            section=section,
        )
    ]
    for n, ((sig_path, _sig), fp) in enumerate(zip(f.signatures, signers, strict=True), start=1):
        if fp is None:
            continue
        claims.append(Claim(
            id=f"{slug}-signature-{n}",
            title=f"signature {n} of {what} was made by key {fp}",
            commands=(
                f'grep -qF "$(base64 -w0 {sig_path})" {f.bundle_path}',
                f"openssl dgst -sha256 -verify {key_path(fp)} -signature {sig_path} {f.pae_path}",
            ),
            files=(sig_path, f.pae_path, f.bundle_path, key_path(fp)),
            section=section,
        ))
    return claims


def tlog_claims(evidence: Evidence, layout: DsseLayout, what: str, log_fp: str, log_id: str,
                section: str, slug: str) -> tuple[list[Claim], dict[str, Any]]:
    """The log entry of a DSSE bundle: its SET, its checkpoint's signature, its inclusion proof,
    and that the entry names this statement and signature. Returns the claims and a summary."""
    from airseal.trustroot.tlog.checkpoint import SignedNote
    from airseal.trustroot.tlog.entries import set_payload

    entry = layout.tlog_entry
    assert entry is not None
    d = f"{layout.folder}/tlog"
    body = base64.b64decode(entry["canonicalizedBody"])
    index = int(entry["logIndex"])
    integrated = int(entry["integratedTime"])
    evidence.add(f"{d}/entry.json", (json.dumps(entry, indent=2) + "\n").encode())
    body_path = evidence.add(f"{d}/body.json", body)
    set_path = evidence.add(
        f"{d}/set-payload.json", set_payload(body, integrated, bytes.fromhex(log_id), index)
    )
    set_sig = evidence.add(
        f"{d}/set-signature.der",
        base64.b64decode(entry["inclusionPromise"]["signedEntryTimestamp"]),
    )
    proof = entry["inclusionProof"]
    note_text = proof["checkpoint"]["envelope"]
    note = SignedNote.parse(note_text)
    evidence.add(f"{d}/checkpoint.note", note_text.encode())
    cp_body = evidence.add(f"{d}/checkpoint-body.txt", note.body.encode())
    cp_sig = evidence.add(f"{d}/checkpoint-signature.der", note.signatures[0].signature)
    evidence.add(f"{d}/index", f"{index}\n".encode())
    evidence.add(f"{d}/size", f"{int(proof['treeSize'])}\n".encode())
    proof_files = [
        evidence.add(f"{d}/proof/{n:02d}.bin", base64.b64decode(h))
        for n, h in enumerate(proof["hashes"])
    ]
    log_key = key_path(log_fp)
    first_sig = layout.signatures[0][0]
    claims = [
        Claim(
            id=f"{slug}-log-entry",
            title=f"log entry {index} ({body_path}) records {what}: its payload hash and its "
            "first signature",
            commands=(
                f'grep -qF "$(sha256sum {layout.statement_path} | cut -c1-64)" {body_path}',
                f'grep -qF "$(base64 -w0 {first_sig})" {body_path}',
                f'grep -qF "$(base64 -w0 {body_path})" {layout.bundle_path}',
            ),
            files=(body_path, layout.statement_path, first_sig, layout.bundle_path),
            section=section,
        ),
        Claim(
            id=f"{slug}-log-set",
            title=f"the log signed a promise (SET) to include entry {index} at integrated time "
            f"{integrated}",
            commands=(
                f'grep -qF "$(base64 -w0 {body_path})" {set_path}',
                f"openssl dgst -sha256 -verify {log_key} -signature {set_sig} {set_path}",
            ),
            files=(set_path, set_sig, body_path, log_key),
            section=section,
        ),
        Claim(
            id=f"{slug}-log-checkpoint",
            title=f"the checkpoint {cp_body} (tree size {proof['treeSize']}) is signed by the "
            "log key",
            commands=(
                f"openssl dgst -sha256 -verify {log_key} -signature {cp_sig} {cp_body}",
                f'head -c "$(wc -c < {cp_body})" {d}/checkpoint.note | cmp -s - {cp_body}',
            ),
            files=(cp_body, cp_sig, f"{d}/checkpoint.note", log_key),
            section=section,
        ),
        Claim(
            id=f"{slug}-log-inclusion",
            title=f"entry {index} is included in the tree that checkpoint commits to",
            commands=(f"sh {INCLUSION_SCRIPT_PATH} {d}",),
            files=(body_path, cp_body, f"{d}/index", f"{d}/size", *proof_files,
                   INCLUSION_SCRIPT_PATH),
            section=section,
        ),
    ]
    summary = {"index": index, "integratedTime": integrated, "treeSize": int(proof["treeSize"]),
               "folder": d}
    return claims, summary


def vendor_claims(evidence: Evidence, folder: str, vendor_json: bytes, payload_sha256: str,
                  statement_path: str, slug: str) -> tuple[list[Claim], dict[str, Any]]:
    """The vendor's signature over the payload's SHA-256, as intake verified it."""
    data = json.loads(vendor_json)
    d = f"{folder}/vendor"
    evidence.add(f"{d}/evidence.json", vendor_json)
    method = data["method"]
    summary: dict[str, Any] = {"method": method, "folder": d}
    if method == "keyless":
        bundle = evidence.add(f"{d}/vendor.sigstore.json", data["bundle"].encode())
        root = evidence.add(f"{d}/trusted_root.json", data["trustedRoot"].encode())
        summary.update(identity=data["identity"], issuer=data["issuer"], bundle=bundle,
                       trustedRoot=root)
        return [], summary
    from airseal.trustroot.keys import fingerprint

    pem = data["publicKey"]
    fp = fingerprint(load_public_key(pem.encode()))
    evidence.add(key_path(fp), pem.encode())
    if method == "cosign-signature":
        sig = base64.b64decode(data["signature"])
    else:
        bundle = json.loads(data["bundle"])
        evidence.add(f"{d}/vendor.sigstore.json", data["bundle"].encode())
        sig = base64.b64decode(bundle["messageSignature"]["signature"])
    sig_path = evidence.add(f"{d}/signature.der", sig)
    digest_path = evidence.add(f"{d}/payload-sha256.bin", bytes.fromhex(payload_sha256))
    summary.update(keyFingerprint=fp, signature=sig_path)
    claim = Claim(
        id=f"{slug}-vendor",
        title=f"the vendor key {fp} signed the payload's SHA-256 {payload_sha256} "
        f"({method}), and the signed statement names that digest",
        commands=(
            f'test "$(od -An -tx1 -v {digest_path} | tr -d " \\n")" = {payload_sha256}',
            f"grep -qF {payload_sha256} {statement_path}",
            f"openssl pkeyutl -verify -pubin -inkey {key_path(fp)} -sigfile {sig_path} "
            f"-in {digest_path} -pkeyopt digest:sha256",
        ),
        files=(digest_path, sig_path, statement_path, key_path(fp)),
        section="vendor",
    )
    return [claim], summary


def audit_claim(entries: tuple[str, ...]) -> Claim:
    return Claim(
        id="audit-chain",
        title="the audit entries link, hash by hash, to the audit head recorded at export",
        commands=(f"sh {AUDIT_CHAIN_SCRIPT_PATH}",),
        files=("audit/chain.txt", "audit/head.txt", *entries, AUDIT_CHAIN_SCRIPT_PATH),
        section="audit",
    )


def manifest_claim() -> Claim:
    return Claim(
        id="manifest",
        title="every file is as written: MANIFEST lists each with its SHA-256",
        commands=("sha256sum -c --quiet --strict MANIFEST",),
        files=("MANIFEST",),
        section="files",
    )
