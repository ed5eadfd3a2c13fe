"""The shapes evidence is made of: what :mod:`.collect` reads from the appliance (plain bytes and
strings, nothing open), and what :mod:`.build` makes of it (files, claims, the document)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

SAFE_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$")
"""Evidence paths: made of ids, digests and fixed names (agent and export ids are validated
identifiers), never anything a shell would read as more than a word."""

ScopeKind = Literal["action", "export", "since"]


@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    value: str

    def describe(self) -> str:
        return {"action": "action", "export": "export", "since": "everything since"}[
            self.kind
        ] + f" {self.value}"


@dataclass(frozen=True)
class KeySource:
    """A public key the evidence names, with every name and role the appliance knows it by."""

    fingerprint: str
    pem: str
    names: tuple[str, ...]
    roles: tuple[str, ...]
    """distributor, log, agent, vendor, site-root, site-targets"""


@dataclass(frozen=True)
class VendorSource:
    """What intake recorded and the vendor evidence it kept for a payload."""

    method: str
    verified: bool
    signer: str | None
    added: str
    evidence: bytes | None
    """The carried vendor evidence (JSON), None when intake kept none (no signature, or one
    that cannot be checked from the digest alone)."""


@dataclass(frozen=True)
class ActionSource:
    id: str
    version: int
    name: str
    os: str
    mode: str
    payload_name: str
    payload_sha256: str
    payload_size: int
    key_name: str
    key_fingerprint: str
    created: str
    valid_until: str
    revoked: str | None
    bundle: bytes
    vendor: VendorSource


@dataclass(frozen=True)
class ExportSource:
    id: str
    sequence: int
    key_name: str
    key_fingerprint: str
    created: str
    expires: str
    target: str
    actions: tuple[tuple[str, int], ...]
    statement: bytes | None
    """The signed export statement as the media got it; None for exports made before the
    appliance kept it."""


@dataclass(frozen=True)
class ReceiptActionSource:
    id: str
    version: int
    outcome: str
    reason: str | None
    exit_code: int | None


@dataclass(frozen=True)
class ReceiptSource:
    agent_id: str
    agent_name: str
    hostname: str
    os: str
    basis: str
    """How the agent's key was enrolled: administrator, operator-approved or first-use."""
    key_fingerprint: str
    export_id: str
    status: str
    finished: str
    imported: str
    sha256: str
    bundle: bytes
    actions: tuple[ReceiptActionSource, ...]


@dataclass(frozen=True)
class AuditRowSource:
    seq: int
    ts: str
    actor: str
    action: str
    subject: str
    details: str
    prev_hash: str
    hash: str
    relevant: bool


@dataclass(frozen=True)
class SiteSource:
    """The site repository's metadata in force at the scope's time (every root up to it, the
    targets version then published, and its distributor policy)."""

    files: dict[str, bytes]
    """path under ``site/`` -> bytes (``metadata/N.root.json``, ``metadata/N.targets.json``,
    ``targets/<sha256>.policy.json``)."""
    targets_version: int
    targets_published: str | None
    """When the audit chain says that targets version was published (None: not recorded)."""
    policy_path: str
    signatures: tuple[TufSignature, ...] = ()


@dataclass(frozen=True)
class TufSignature:
    """One signature on a site metadata file, with what openssl needs to check it."""

    metadata: str
    """The metadata file under ``site/`` (``metadata/N.targets.json``)."""
    signed: bytes
    """Its ``signed`` part in canonical JSON: the bytes the key signed."""
    keyid: str
    signature: bytes
    public_key_pem: str
    """The key as the delegating root lists it."""


@dataclass(frozen=True)
class LogSource:
    origin: str
    key_fingerprint: str
    log_id: str
    trusted_root: bytes


@dataclass(frozen=True)
class EvidenceSource:
    scope: Scope
    generated: datetime
    appliance_id: str
    actions: tuple[ActionSource, ...]
    exports: tuple[ExportSource, ...]
    receipts: tuple[ReceiptSource, ...]
    keys: tuple[KeySource, ...]
    audit: tuple[AuditRowSource, ...]
    audit_head: tuple[int, str]
    site: SiteSource | None = None
    log: LogSource | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Claim:
    """One statement an auditor can re-check: the commands (POSIX shell, run from the evidence
    folder) exit 0 exactly when it holds."""

    id: str
    title: str
    commands: tuple[str, ...]
    files: tuple[str, ...]
    section: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "section": self.section,
                "commands": list(self.commands), "files": list(self.files)}


@dataclass
class Evidence:
    """Everything to write: file path (relative, POSIX) -> bytes, the claims, the document."""

    files: dict[str, bytes] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)

    def add(self, path: str, data: bytes) -> str:
        """Add a file; its path goes into shell commands unquoted, so only plain names pass."""
        if not SAFE_PATH.match(path) or ".." in path.split("/"):
            raise ValueError(f"unsafe evidence path {path!r}")
        if path in self.files and self.files[path] != data:
            raise ValueError(f"two different files at {path}")
        self.files[path] = data
        return path


@dataclass(frozen=True)
class EvidenceWritten:
    """What `airseal evidence export` made: where, of what, and the MANIFEST's digest (also in
    the audit chain, so the evidence can be matched to the appliance that issued it)."""

    path: str
    scope: Scope
    actions: int
    exports: int
    receipts: int
    claims: int
    files: int
    bytes: int
    manifest_sha256: str

    def describe(self) -> list[str]:
        return [
            f"Wrote evidence of {self.scope.describe()} to {self.path}",
            f"  {self.actions} action version(s), {self.exports} export(s), "
            f"{self.receipts} receipt(s); {self.claims} claims in VERIFY.md",
            f"  {self.files} files, {self.bytes} bytes; MANIFEST sha256 {self.manifest_sha256}",
            "  open report.html in a browser; VERIFY.md lists the commands that re-check it",
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": 1, "path": self.path,
            "scope": {"kind": self.scope.kind, "value": self.scope.value},
            "actions": self.actions, "exports": self.exports, "receipts": self.receipts,
            "claims": self.claims, "files": self.files, "bytes": self.bytes,
            "manifestSha256": self.manifest_sha256,
        }
