"""DSSE envelopes carrying in-toto v1 Statements: how actions, exports and receipts are signed.

The signature covers the DSSE pre-authentication encoding (PAE) of the payload type and the
payload bytes, so the statement is only parsed *after* its signature verified (see
:func:`airseal.trustroot.verify.verify_dsse_bundle`). Statements are validated on construction: an
object
that exists is well-formed.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from airseal.trustroot.errors import StatementError
from airseal.trustroot.untrusted_json import check_json_depth

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
MAX_STATEMENT_BYTES = 8 * 1024 * 1024
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


class Subject(BaseModel):
    """An in-toto ResourceDescriptor restricted to what Airseal uses: a name and its SHA-256."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=1024)
    digest: dict[
        Annotated[str, StringConstraints(max_length=64)],
        Annotated[str, StringConstraints(max_length=1024)],
    ] = Field(max_length=16)
    """A DigestSet: a few algorithms at most, each a bounded hex string."""

    @field_validator("digest")
    @classmethod
    def _sha256_present(cls, value: dict[str, str]) -> dict[str, str]:
        sha = value.get("sha256")
        if sha is None or not _SHA256_HEX.match(sha):
            raise ValueError("subject digest must contain a lowercase hex sha256")
        return value

    @property
    def sha256(self) -> str:
        return self.digest["sha256"]


class Statement(BaseModel):
    """An in-toto v1 Statement. ``predicate`` is validated by whoever owns its type."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    type_: str = Field(alias="_type", default=STATEMENT_TYPE)
    subject: tuple[Subject, ...] = Field(min_length=1)
    predicate_type: str = Field(alias="predicateType", min_length=1)
    predicate: dict[str, Any]

    @field_validator("type_")
    @classmethod
    def _v1(cls, value: str) -> str:
        if value != STATEMENT_TYPE:
            raise ValueError(f"statement type must be {STATEMENT_TYPE}")
        return value

    def to_payload(self) -> bytes:
        """Canonical-enough JSON bytes (sorted keys, no spaces): what gets signed."""
        data = self.model_dump(mode="json", by_alias=True)
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_payload(cls, payload: bytes, *, subject: str | None = None) -> Statement:
        if len(payload) > MAX_STATEMENT_BYTES:
            raise StatementError("statement is larger than the limit", subject=subject)
        check_json_depth(payload, subject=subject, error=StatementError)
        try:
            return cls.model_validate_json(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "statement"
            raise StatementError(f"{where}: {first['msg']}", subject=subject) from None
