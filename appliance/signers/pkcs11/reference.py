"""The database's handle on a token key: where it lives and what its public key is."""

from __future__ import annotations

import os
from dataclasses import dataclass

from airseal.trustroot.keys import PublicKey, load_public_key


@dataclass(frozen=True)
class Pkcs11KeyRef:
    """Where a token key lives and what its public key is. Holds no secret: store it as is.

    The token is found again by serial (labels can repeat); the key by its ``CKA_ID`` (hex).
    Validated on construction: the public key must parse and be of a supported algorithm.
    """

    module_path: str
    token_label: str
    token_serial: str
    key_id: str
    key_label: str
    public_key_pem: bytes

    def __post_init__(self) -> None:
        if not self.module_path or not os.path.isabs(self.module_path):
            raise ValueError("module_path must be an absolute path")
        if not (self.token_serial or self.token_label):
            raise ValueError("a token key reference needs the token's serial or label")
        try:
            raw_id = bytes.fromhex(self.key_id)
        except ValueError:
            raise ValueError("key_id must be hex") from None
        if raw_id.hex() != self.key_id:
            raise ValueError("key_id must be lowercase hex")
        load_public_key(self.public_key_pem, subject="token public key")

    @property
    def key_id_bytes(self) -> bytes:
        return bytes.fromhex(self.key_id)

    def public_key(self) -> PublicKey:
        return load_public_key(self.public_key_pem, subject="token public key")

    @property
    def token_selector(self) -> str:
        """Serial when the token has one (unique), else its label."""
        return self.token_serial or self.token_label

    def to_record(self) -> dict[str, str]:
        """Plain strings for a database row or JSON."""
        return {
            "module_path": self.module_path,
            "token_label": self.token_label,
            "token_serial": self.token_serial,
            "key_id": self.key_id,
            "key_label": self.key_label,
            "public_key_pem": self.public_key_pem.decode("ascii"),
        }

    @classmethod
    def from_record(cls, record: dict[str, str]) -> Pkcs11KeyRef:
        return cls(
            module_path=record["module_path"],
            token_label=record["token_label"],
            token_serial=record["token_serial"],
            key_id=record["key_id"],
            key_label=record["key_label"],
            public_key_pem=record["public_key_pem"].encode("ascii"),
        )

