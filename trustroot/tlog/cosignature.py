"""C2SP ``cosignature/v1`` witness cosignatures on checkpoints (c2sp.org/tlog-cosignature).

A witness signs, with Ed25519, the message ``cosignature/v1\\ntime <T>\\n`` followed by the whole
checkpoint body, and adds one signed-note line ``— <name> base64(key ID || u64 T || signature)``
where the key ID is ``SHA-256(name || "\\n" || 0x04 || 32-byte public key)[:4]``. Witness keys
are written as C2SP vkeys, ``<name>+<hex key ID>+<base64(0x04 || public key)>``.

Hand-written because no maintained Python library implements it; it is a few lines of byte
layout over ``cryptography``'s Ed25519, and the spec fixes every byte (the tests check the layout
and the refusals). Pure: the caller supplies the signing function and the time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from airseal.trustroot.errors import LogProofError
from airseal.trustroot.tlog.checkpoint import Checkpoint, NoteSignature, SignedNote

COSIGNATURE_V1 = "cosignature/v1"
ED25519_COSIGNATURE_TYPE = 0x04
MAX_TIMESTAMP = 2**63 - 1
_NAME_FORBIDDEN = (" ", "+", "\n")


def _check_name(name: str) -> str:
    if not name or len(name) > 253 or any(c in name for c in _NAME_FORBIDDEN) or \
            not name.isprintable():
        raise ValueError(f"witness name {name!r} must be printable, without spaces or '+'")
    return name


@dataclass(frozen=True)
class WitnessKey:
    """A witness's name and 32-byte Ed25519 public key (what a site policy names)."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public_key) != 32:
            raise ValueError("an Ed25519 witness public key is 32 bytes")

    @property
    def key_id(self) -> bytes:
        return hashlib.sha256(
            self.name.encode() + b"\n" + bytes([ED25519_COSIGNATURE_TYPE]) + self.public_key
        ).digest()[:4]

    def vkey(self) -> str:
        raw = base64.b64encode(bytes([ED25519_COSIGNATURE_TYPE]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{raw}"

    @classmethod
    def from_vkey(cls, text: str) -> WitnessKey:
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise ValueError("a witness vkey is <name>+<hex key id>+<base64 key>")
        name, hex_id, b64 = parts
        try:
            raw = base64.b64decode(b64, validate=True)
            wanted = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError):
            raise ValueError("the witness vkey's key id or key is not hex / base64") from None
        if len(raw) != 33 or raw[0] != ED25519_COSIGNATURE_TYPE:
            raise ValueError("the witness vkey is not an Ed25519 cosignature/v1 key (type 0x04)")
        key = cls(_check_name(name), raw[1:])
        if key.key_id != wanted:
            raise ValueError(f"the witness vkey's key id {hex_id} does not match its key")
        return key


def signed_message(body: str, timestamp: int) -> bytes:
    """What a ``cosignature/v1`` signs for a checkpoint ``body`` at ``timestamp``."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError("a cosignature timestamp is a POSIX time below 2**63")
    return f"{COSIGNATURE_V1}\ntime {timestamp}\n{body}".encode()


def cosign(
    note_text: str, witness: WitnessKey, sign: Callable[[bytes], bytes], *, timestamp: int
) -> str:
    """The note with ``witness``'s cosignature line added (an earlier one by it replaced)."""
    note = SignedNote.parse(note_text)
    Checkpoint.parse(note.body)
    signature = sign(signed_message(note.body, timestamp))
    if len(signature) != 64:
        raise ValueError("an Ed25519 signature is 64 bytes")
    line = NoteSignature(witness.name, witness.key_id, timestamp.to_bytes(8, "big") + signature)
    kept = tuple(
        s for s in note.signatures if not (s.name == witness.name and s.key_hint == witness.key_id)
    )
    return SignedNote(note.body, (*kept, line)).text()


@dataclass(frozen=True)
class Cosignature:
    witness: WitnessKey
    timestamp: int


def verify_cosignatures(note_text: str, witnesses: Sequence[WitnessKey]) -> list[Cosignature]:
    """The valid cosignatures of ``witnesses`` on the note (lines of other keys are ignored,
    as the spec says; a line that claims a listed witness's key ID and does not verify is an
    error, because only a forger or a broken witness writes one)."""
    note = SignedNote.parse(note_text)
    body = note.body.encode()
    found: dict[str, Cosignature] = {}
    for witness in witnesses:
        for sig in note.signatures:
            if sig.name != witness.name or sig.key_hint != witness.key_id:
                continue
            if len(sig.signature) != 72:
                raise LogProofError(
                    f"the cosignature of witness {witness.name} is not 8 + 64 bytes",
                    check="tlog.witness.signature",
                )
            timestamp = int.from_bytes(sig.signature[:8], "big")
            message = f"{COSIGNATURE_V1}\ntime {timestamp}\n".encode() + body
            try:
                Ed25519PublicKey.from_public_bytes(witness.public_key).verify(
                    sig.signature[8:], message
                )
            except _CryptoInvalidSignature:
                raise LogProofError(
                    f"the cosignature of witness {witness.name} does not verify",
                    check="tlog.witness.signature",
                    hint="the checkpoint or its cosignature was altered; cosign it again",
                ) from None
            found[witness.name] = Cosignature(witness, timestamp)
    return list(found.values())


def require_quorum(
    note_text: str, witnesses: Sequence[WitnessKey], quorum: int, *, subject: str | None = None
) -> list[Cosignature]:
    """At least ``quorum`` distinct listed witnesses cosigned the note; else refused. A quorum
    of 0 with witnesses listed, or more than listed, is a policy error (fail closed)."""
    if not 1 <= quorum <= len(witnesses):
        raise LogProofError(
            f"the witness quorum {quorum} is not between 1 and the {len(witnesses)} witnesses "
            "the policy names",
            check="tlog.witness.policy", subject=subject,
        )
    good = verify_cosignatures(note_text, witnesses)
    if len(good) < quorum:
        have = ", ".join(c.witness.name for c in good) or "none"
        raise LogProofError(
            f"the checkpoint carries cosignatures of {len(good)} of the {quorum} witnesses the "
            f"site policy requires (valid: {have})",
            check="tlog.witness.quorum", subject=subject,
            hint="take the checkpoint to the site's witnesses (`airseal witness cosign`), bring "
                 "their cosignatures back to the appliance, and export again",
        )
    return good
