"""Signing and verifying files ("blobs") the way ``cosign sign-blob/verify-blob --key`` do.

Content is streamed through SHA-256 once (constant memory, any size) and the digest is signed.
Ed25519 alone must sign and verify the content itself (PureEdDSA): the file is memory-mapped, so
the page cache, not the heap, holds it.

`airseal verify-blob FILE --key K.pub --signature S` should start as fast as openssl: the
signing side (the key store, the audit log, SQLite) and the bundle models (sigstore_models,
pydantic) load inside the functions that need them.
"""

from __future__ import annotations

import base64
import mmap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from airseal._internal.atomic import read_capped
from airseal.appliance.errors import UsageError
from airseal.trustroot.digest import ProgressCallback, sha256_stream
from airseal.trustroot.keys import PublicKey, fingerprint, load_public_key
from airseal.trustroot.verify import (
    MAX_SIGNATURE_TEXT_BYTES,
    VerifiedBlob,
    verify_blob_bundle,
    verify_detached_signature,
)

if TYPE_CHECKING:
    import sqlite_utils

    from airseal.appliance.home import Home
    from airseal.appliance.prompts import Prompter


@dataclass(frozen=True)
class BlobSignature:
    path: Path
    sha256: str
    size: int
    key_name: str
    key_fingerprint: str
    signature: bytes
    bundle_json: bytes

    @property
    def signature_b64(self) -> bytes:
        """cosign's ``--output-signature`` form: base64 of the signature, no newline."""
        return base64.b64encode(self.signature)


def hash_file(path: Path, on_progress: ProgressCallback | None = None) -> tuple[bytes, int]:
    with open(path, "rb", buffering=0) as handle:
        return sha256_stream(handle, on_progress=on_progress)


@contextmanager
def mapped(path: Path) -> Iterator[bytes | memoryview]:
    """The whole file as a buffer without reading it into the heap (Ed25519 only)."""
    with open(path, "rb") as handle:
        if Path(path).stat().st_size == 0:
            yield b""
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as region:
            view = memoryview(region)
            try:
                yield view
            finally:
                view.release()  # the map cannot close while a view of it is alive


def sign_blob(
    home: Home,
    db: sqlite_utils.Database,
    path: Path,
    key_name: str,
    prompter: Prompter,
    *,
    on_progress: ProgressCallback | None = None,
) -> BlobSignature:
    from airseal.appliance import audit
    from airseal.appliance.keystore import get_key, open_signer
    from airseal.appliance.tlog_store import LogAppender
    from airseal.trustroot.bundle import bundle_to_json, message_signature_bundle

    record = get_key(db, key_name)
    with open_signer(home, record, prompter) as signer:
        digest, size = hash_file(path, on_progress)
        if signer.algorithm.prehashed:
            signature = signer.sign_digest(digest)
        else:
            with mapped(path) as content:
                signature = signer.sign_message(content)  # type: ignore[arg-type]
        bundle = message_signature_bundle(signer.public_key, digest, signature)
        public_key = signer.public_key
    with LogAppender(home, db, prompter) as log:
        bundle_json = log.attach(bundle_to_json(bundle), public_key, f"blob {Path(path).name}")
    audit.record(
        home,
        db,
        "sign-blob",
        Path(path).name,
        {"sha256": digest.hex(), "size": size, "key": key_name, "fingerprint": record.fingerprint},
    )
    return BlobSignature(
        path=Path(path),
        sha256=digest.hex(),
        size=size,
        key_name=key_name,
        key_fingerprint=record.fingerprint,
        signature=signature,
        bundle_json=bundle_json,
    )


def verify_blob(
    path: Path,
    key: PublicKey,
    *,
    signature_path: Path | None = None,
    bundle_path: Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> VerifiedBlob:
    """Verify ``path`` against a detached signature or a key-based bundle. Raises on failure."""
    if (signature_path is None) == (bundle_path is None):
        raise UsageError("give exactly one of --signature or --bundle")
    digest, _ = hash_file(path, on_progress)
    with mapped(path) if not _prehashed(key) else _nothing() as message:
        if signature_path is not None:
            text = read_capped(signature_path, MAX_SIGNATURE_TEXT_BYTES)
            return verify_detached_signature(
                key, text, digest, message=message, subject=str(signature_path)
            )
        assert bundle_path is not None
        from airseal.trustroot.bundle import MAX_BUNDLE_BYTES, parse_bundle

        bundle = parse_bundle(read_capped(bundle_path, MAX_BUNDLE_BYTES), subject=str(bundle_path))
        return verify_blob_bundle(key, bundle, digest, message=message, subject=str(bundle_path))


def _prehashed(key: PublicKey) -> bool:
    from airseal.trustroot.keys import key_algorithm

    return key_algorithm(key).prehashed


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def load_key_argument(
    value: str, db_opener: object, module: str | None = None
) -> tuple[PublicKey, str]:
    """``--key`` is a PEM (or cosign.pub) public key file, a PKCS#11 URI (RFC 7512), or the name
    of a key in the appliance home.

    A value that is neither says exactly that; one that looks like a path (a separator, or a key
    file's suffix) is reported as the missing file it most likely is, not as an unknown key."""
    if value.lower().startswith("pkcs11:"):  # RFC 7512; python-pkcs11 loads only then
        from airseal.appliance.signers.pkcs11.uri import public_key_from_uri

        return public_key_from_uri(value, module)
    candidate = Path(value)
    if candidate.is_file():
        pem = read_capped(candidate, 64 * 1024)
        key = load_public_key(pem, subject=str(candidate))
        return key, f"{candidate} ({fingerprint(key)[:16]})"
    assert callable(db_opener)
    from airseal.appliance.errors import HomeError, KeyNotFound
    from airseal.appliance.keystore import get_key

    try:
        record = get_key(db_opener(), value)
    except (HomeError, KeyNotFound) as exc:
        if _looks_like_a_path(value):
            raise UsageError(
                f"--key {value!r} is neither an existing file nor a key name in the appliance "
                "home: the file does not exist",
                subject=value,
                hint="give the path of a PEM or cosign.pub public key file, or a name from "
                "`airseal key list`",
            ) from None
        if isinstance(exc, HomeError):
            raise
        raise UsageError(
            f"--key {value!r} is neither an existing file nor a key name in the appliance home",
            subject=value,
            hint="give the path of a PEM or cosign.pub public key file, or a name from "
            "`airseal key list`",
        ) from None
    return record.public_key, f"key {record.name} ({record.fingerprint[:16]})"


def _looks_like_a_path(value: str) -> bool:
    return (
        "/" in value
        or "\\" in value
        or value.startswith("~")
        or value.lower().endswith((".pub", ".pem", ".key", ".crt"))
    )
