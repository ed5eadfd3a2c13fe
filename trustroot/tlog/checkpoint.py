"""C2SP signed-note checkpoints (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).

A checkpoint body is three lines, ``<origin>\\n<size>\\n<base64 root>\\n``, then optional extension
lines; the signed note adds a blank line and one ``— <name> <base64(key hint || signature)>`` line
per signature. Signatures here are ECDSA P-256 over SHA-256 of the body with the 4-byte key hint
Rekor v1 uses, the first bytes of SHA-256 of the key's DER SPKI (i.e. of the log id), which is what
sigstore-go, sigstore-js and sigstore-python look for. Hand-written because sigstore-python's
parser (``sigstore._internal.rekor.checkpoint``) is private and verify-only, and the format is
a few lines; the tests parse real public-good checkpoints with it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from airseal.trustroot.errors import InvalidSignature, LogProofError
from airseal.trustroot.keys import PublicKey, spki_der, verify_message
from airseal.trustroot.signer import Signer
from airseal.trustroot.tlog.merkle import HASH_SIZE

MAX_NOTE_BYTES = 64 * 1024
MAX_SIGNATURES = 100
SIGNATURE_PREFIX = "\u2014 "
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_ORIGIN = re.compile(rf"^{_HOST_LABEL}(?:\.{_HOST_LABEL})*$")
_SIZE = re.compile(r"^(0|[1-9][0-9]{0,19})$")


def check_origin(origin: str) -> str:
    """A log origin must be a bare host-like name (no scheme, port or path): verifiers such as
    sigstore-go derive the expected origin from the host of the log's ``baseUrl``."""
    if len(origin) > 253 or not _ORIGIN.match(origin):
        raise ValueError(
            f"log origin {origin!r} is not a bare host name (lower-case letters, digits, dots, "
            "hyphens; no scheme, port or path), e.g. log.airseal.example"
        )
    return origin


def key_hint(key: PublicKey) -> bytes:
    """The 4-byte signed-note key hint Rekor v1 uses: SHA-256 of the DER SPKI, first 4 bytes."""
    return hashlib.sha256(spki_der(key)).digest()[:4]


@dataclass(frozen=True)
class Checkpoint:
    """A log's commitment to its first ``size`` entries."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise ValueError("checkpoint origin must be one non-empty line")
        if self.size < 0 or len(self.root_hash) != HASH_SIZE:
            raise ValueError("checkpoint size must be >= 0 and the root a SHA-256 hash")

    def body(self) -> str:
        root = base64.b64encode(self.root_hash).decode("ascii")
        lines = [self.origin, str(self.size), root, *self.extensions]
        return "".join(line + "\n" for line in lines)

    def describe(self) -> str:
        return f"{self.origin} size {self.size} root {self.root_hash.hex()[:16]}"

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        if not body.endswith("\n"):
            raise LogProofError("checkpoint body does not end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise LogProofError("checkpoint body has fewer than three lines")
        origin, size, root, *rest = lines
        if not origin or not _SIZE.match(size):
            raise LogProofError(f"checkpoint has a bad origin or size line ({size!r})")
        try:
            raw = base64.b64decode(root, validate=True)
        except ValueError:  # binascii.Error, or a non-ASCII str
            raise LogProofError("checkpoint root hash is not base64") from None
        if len(raw) != HASH_SIZE or any(not line for line in rest):
            raise LogProofError("checkpoint root hash is not 32 bytes or has an empty line")
        return cls(origin, int(size), raw, tuple(rest))


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_hint: bytes
    signature: bytes

    def line(self) -> str:
        blob = base64.b64encode(self.key_hint + self.signature).decode("ascii")
        return f"{SIGNATURE_PREFIX}{self.name} {blob}\n"


@dataclass(frozen=True)
class SignedNote:
    body: str
    signatures: tuple[NoteSignature, ...]

    def text(self) -> str:
        return self.body + "\n" + "".join(s.line() for s in self.signatures)

    @classmethod
    def parse(cls, text: str) -> SignedNote:
        if len(text.encode("utf-8")) > MAX_NOTE_BYTES:
            raise LogProofError(f"signed note is larger than {MAX_NOTE_BYTES} bytes")
        split = text.find("\n\n")
        if split < 0 or not text.endswith("\n"):
            raise LogProofError("signed note has no blank line before its signatures")
        body, sig_text = text[: split + 1], text[split + 2 : -1]
        signatures = []
        for line in sig_text.split("\n"):
            if not line.startswith(SIGNATURE_PREFIX):
                raise LogProofError("signed note has a signature line without the em dash prefix")
            parts = line[len(SIGNATURE_PREFIX) :].split(" ")
            if len(parts) != 2 or not parts[0]:
                raise LogProofError("signed note signature line is not '— <name> <signature>'")
            try:
                blob = base64.b64decode(parts[1], validate=True)
            except ValueError:  # binascii.Error, or a non-ASCII str
                raise LogProofError("signed note signature is not base64") from None
            if len(blob) < 5:
                raise LogProofError("signed note signature is too short")
            signatures.append(NoteSignature(parts[0], blob[:4], blob[4:]))
        if not signatures or len(signatures) > MAX_SIGNATURES:
            raise LogProofError(f"signed note has {len(signatures)} signatures")
        return cls(body, tuple(signatures))


def sign_checkpoint(checkpoint: Checkpoint, *, name: str, signer: Signer) -> str:
    """The signed-note text of ``checkpoint``, signed by the log key under ``name``."""
    body = checkpoint.body()
    signature = signer.sign_message(body.encode("utf-8"))
    note = SignedNote(body, (NoteSignature(name, key_hint(signer.public_key), signature),))
    return note.text()


def verify_checkpoint(
    text: str, *, key: PublicKey, name: str, origin: str | None = None,
    hint: bytes | None = None,
) -> Checkpoint:
    """Parse a signed checkpoint and check the log key's signature on it.

    ``name`` is the signer name the log signs under; ``origin`` (when given) must equal the
    checkpoint's origin line exactly, so a checkpoint of another log is refused even if signed
    with the same key. Other signatures (witness cosignatures) are ignored here. ``hint``: the
    signature's key hint when it is not :func:`key_hint`'s (a Rekor v2 Ed25519 or RSA key's
    C2SP key id, :func:`airseal.trustroot.tlog.rekor_v2.checkpoint_key_id`).
    """
    note = SignedNote.parse(text)
    checkpoint = Checkpoint.parse(note.body)
    if origin is not None and checkpoint.origin != origin:
        raise LogProofError(
            f"checkpoint is for log {checkpoint.origin!r}, expected {origin!r}",
            check="tlog.checkpoint.origin",
        )
    hint = key_hint(key) if hint is None else hint[:4]
    candidates = [s for s in note.signatures if s.name == name and s.key_hint == hint]
    if not candidates:
        raise LogProofError(
            f"checkpoint carries no signature by {name!r} with key hint {hint.hex()}",
            check="tlog.checkpoint.signature",
        )
    for sig in candidates:
        try:
            verify_message(key, sig.signature, note.body.encode("utf-8"))
        except InvalidSignature:
            continue
        return checkpoint
    raise LogProofError(
        f"checkpoint signature by {name!r} does not verify with the log key",
        check="tlog.checkpoint.signature",
    )
