"""Intake: integrity check 1 of 3. Files enter the appliance store only after verification.

The file is streamed once into a temporary name inside the store while it is hashed; the vendor
signature is then verified against the *stored* bytes (so a source changed mid-copy cannot slip
through), and only then is the file renamed to its SHA-256. A refused file leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from airseal._internal.atomic import fsync_dir, read_capped, write_atomic
from airseal.appliance import audit, settings
from airseal.appliance.blobs import verify_blob
from airseal.appliance.errors import ApplianceError, UsageError
from airseal.appliance.home import Home
from airseal.media.names import name_problem
from airseal.media.vendor import (
    MAX_VENDOR_BYTES,
    VendorEvidence,
    VendorEvidenceInvalid,
    encode_signature,
    verify_vendor_evidence,
)
from airseal.trustroot.bundle import MAX_BUNDLE_BYTES
from airseal.trustroot.digest import ProgressCallback, read_chunks, sha256_stream
from airseal.trustroot.errors import VerificationError
from airseal.trustroot.identity import CertificatePolicy
from airseal.trustroot.keys import PublicKey, fingerprint, spki_pem


class IntakeRefused(VerificationError):
    title = "Intake refused"
    hint = "add the file with its vendor signature (--signature/--key, or --bundle)"


class FileNotInStore(ApplianceError):
    title = "File not in store"
    hint = "add it first with `airseal file add PATH`; `airseal file list` shows the store"


@dataclass(frozen=True)
class VendorSignature:
    """What the operator says vouches for a file (at most one of the three forms)."""

    signature: Path | None = None
    bundle: Path | None = None
    key: PublicKey | None = None
    identity: str | None = None
    issuer: str | None = None
    trusted_root: Path | None = None
    trusted_root_json: bytes | None = None
    """The trusted root's bytes, when already chosen (the service picks the imported one)."""
    identity_regexp: str | None = None
    issuer_regexp: str | None = None

    @property
    def keyless(self) -> bool:
        return any(
            v is not None
            for v in (self.identity, self.issuer, self.identity_regexp, self.issuer_regexp)
        )

    @property
    def method(self) -> str:
        if self.signature is not None:
            return "cosign-signature"
        if self.bundle is not None and self.keyless:
            return "keyless"
        if self.bundle is not None:
            return "bundle-key"
        return "none"


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    name: str
    size: int
    added: str
    method: str
    verified: bool
    signer: str | None

    @property
    def path_in(self) -> str:
        return self.sha256

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def store_path(home: Home, sha256: str) -> Path:
    return home.store_dir / sha256


def _check_vouching(vendor: VendorSignature) -> None:
    if vendor.signature is not None and vendor.bundle is not None:
        raise UsageError("give --signature or --bundle, not both")
    if vendor.signature is not None and vendor.key is None:
        raise UsageError("--signature needs --key (the vendor's public key)")
    if vendor.bundle is not None and vendor.key is None and not vendor.keyless:
        raise UsageError(
            "--bundle needs --key, or --certificate-identity and "
            "--certificate-oidc-issuer for a keyless bundle"
        )
    if vendor.keyless:
        _policy(vendor)  # exactly one of each identity/issuer pair, valid patterns
    if vendor.keyless and vendor.key is not None:
        raise UsageError("a keyless bundle is verified by identity, not --key")


def _policy(vendor: VendorSignature) -> CertificatePolicy:
    if (vendor.identity is None and vendor.identity_regexp is None) != (
        vendor.issuer is None and vendor.issuer_regexp is None
    ):
        raise UsageError(
            "--certificate-identity and --certificate-oidc-issuer go together (or their "
            "-regexp forms)"
        )
    return CertificatePolicy(
        vendor.identity, vendor.identity_regexp, vendor.issuer, vendor.issuer_regexp
    )


def _verify(
    stored: Path, digest: bytes, vendor: VendorSignature
) -> tuple[str | None, bytes | None]:
    """Check the vendor signature over the stored copy; returns who signed, and the evidence to
    carry to endpoints (``None`` when it cannot be checked from the digest alone)."""
    if vendor.method == "keyless":
        from airseal.trustroot.keyless import default_trusted_root_json, verify_keyless_bundle

        assert vendor.bundle is not None
        root = vendor.trusted_root_json
        if root is None and vendor.trusted_root is not None:
            root = read_capped(vendor.trusted_root, 8 * 1024 * 1024)
        bundle_bytes = read_capped(vendor.bundle, MAX_BUNDLE_BYTES)
        result = verify_keyless_bundle(
            bundle_bytes,
            digest,
            policy=_policy(vendor),
            trusted_root_json=root,
            subject=str(vendor.bundle),
        )
        evidence = VendorEvidence(
            method="keyless",
            bundle=bundle_bytes.decode("utf-8"),
            identity=result.identity,
            issuer=result.issuer,
            trusted_root=(root or default_trusted_root_json()).decode("utf-8"),
        )
        return f"{result.identity} ({result.issuer})", _carried(evidence, digest)
    if vendor.method == "none":
        return None, None
    assert vendor.key is not None
    verify_blob(stored, vendor.key, signature_path=vendor.signature, bundle_path=vendor.bundle)
    pem = spki_pem(vendor.key).decode("ascii")
    if vendor.signature is not None:
        text = read_capped(vendor.signature, 16 * 1024)
        evidence = VendorEvidence(
            method="cosign-signature", signature=encode_signature(text), public_key=pem
        )
    else:
        assert vendor.bundle is not None
        evidence = VendorEvidence(
            method="bundle-key",
            bundle=read_capped(vendor.bundle, MAX_BUNDLE_BYTES).decode("utf-8"),
            public_key=pem,
        )
    return fingerprint(vendor.key), _carried(evidence, digest)


def _carried(evidence: VendorEvidence, digest: bytes) -> bytes | None:
    """The evidence as it will travel, if an endpoint can check it from the digest alone (an
    Ed25519 message signature covers the whole content, so it stays here)."""
    try:
        verify_vendor_evidence(evidence, digest, subject="vendor evidence")
    except VendorEvidenceInvalid:
        return None
    return evidence.to_json_bytes()


def vendor_evidence_path(home: Home, sha256: str) -> Path:
    """Where intake keeps the vendor evidence of a stored file (apart from the store, which
    holds only content named by its digest)."""
    return home.root / "vendor" / f"{sha256}.json"


def read_vendor_evidence(home: Home, sha256: str) -> bytes | None:
    path = vendor_evidence_path(home, sha256)
    try:
        return read_capped(path, MAX_VENDOR_BYTES)
    except FileNotFoundError:
        return None


def add_file(
    home: Home,
    db: sqlite_utils.Database,
    source: Path,
    vendor: VendorSignature,
    *,
    name: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> StoredFile:
    """Verify and store ``source``. Raises (leaving nothing in the store) when refused."""
    _check_vouching(vendor)
    name = name or Path(source).name
    problem = name_problem(name)
    if problem is not None:
        raise UsageError(f"file name {name!r} {problem}", hint="rename it or pass --name")
    if vendor.method == "none" and settings.get_flag(db, "intake.require-signature"):
        raise IntakeRefused("site policy requires a vendor signature", subject=str(source))
    incoming = home.store_dir / f".incoming-{uuid.uuid4().hex}"
    try:
        digest, size = _copy_and_hash(Path(source), incoming, on_progress)
        try:
            signer, evidence = _verify(incoming, digest, vendor)
        except VerificationError as error:
            audit.record(
                home,
                db,
                "file.refused",
                name,
                {"sha256": digest.hex(), "method": vendor.method, "why": error.title},
            )
            raise
        final = store_path(home, digest.hex())
        carried = vendor_evidence_path(home, digest.hex())
        if evidence is not None:
            carried.parent.mkdir(mode=0o700, exist_ok=True)
            write_atomic(carried, evidence, mode=0o400)
        else:  # the evidence always reflects the latest intake of this content
            with contextlib.suppress(FileNotFoundError):
                carried.unlink()
        if final.exists():
            incoming.unlink()
        else:
            os.replace(incoming, final)
            fsync_dir(home.store_dir)
    finally:
        with contextlib.suppress(FileNotFoundError):
            incoming.unlink()
    stored = StoredFile(
        sha256=digest.hex(),
        name=name,
        size=size,
        added=datetime.now(UTC).isoformat(timespec="seconds"),
        method=vendor.method,
        verified=vendor.method != "none",
        signer=signer,
    )
    db.table("files").upsert({**stored.to_dict(), "verified": int(stored.verified)}, pk="sha256")
    audit.record(
        home,
        db,
        "file.add",
        name,
        {"sha256": stored.sha256, "size": size, "method": stored.method, "signer": signer},
    )
    return stored


def _copy_and_hash(
    source: Path, target: Path, on_progress: ProgressCallback | None
) -> tuple[bytes, int]:
    digest, total = hashlib.sha256(), 0
    # `dst` is buffered so that a short write() is retried rather than silently dropped; chunks
    # larger than its buffer still go straight to the file.
    with open(source, "rb", buffering=0) as src, open(target, "xb") as dst:
        os.fchmod(dst.fileno(), 0o400)
        for chunk in read_chunks(src):
            digest.update(chunk)
            dst.write(chunk)
            n = len(chunk)
            total += n
            if on_progress is not None:
                on_progress(n)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.digest(), total


def _row(row: dict[str, Any]) -> StoredFile:
    return StoredFile(**{**row, "verified": bool(row["verified"])})


def list_files(db: sqlite_utils.Database) -> list[StoredFile]:
    return [_row(r) for r in db["files"].rows_where(order_by="added desc")]


def find_file(db: sqlite_utils.Database, reference: str) -> StoredFile:
    """A stored file by SHA-256 (or a unique prefix of 8+ hex digits), or by the path of a copy."""
    ref = reference.lower()
    if len(ref) >= 8 and all(c in "0123456789abcdef" for c in ref) and not Path(reference).exists():
        rows = list(db["files"].rows_where("sha256 LIKE ?", [ref + "%"]))
        if len(rows) == 1:
            return _row(rows[0])
        if len(rows) > 1:
            raise UsageError(f"{reference} matches {len(rows)} files: give more digits")
        raise FileNotInStore(f"no stored file has sha256 {reference}", subject=reference)
    path = Path(reference)
    if not path.is_file():
        raise FileNotInStore(
            f"{reference} is neither a stored digest nor a file", subject=reference
        )
    with open(path, "rb", buffering=0) as handle:
        digest, _ = sha256_stream(handle)
    rows = list(db["files"].rows_where("sha256 = ?", [digest.hex()]))
    if not rows:
        raise FileNotInStore(
            f"{path.name} (sha256 {digest.hex()[:16]}…) was never added", subject=str(path)
        )
    return _row(rows[0])
