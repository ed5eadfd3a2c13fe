"""The receipt an agent writes back onto the media: an in-toto Statement in a DSSE bundle.

``airseal/receipts/<agent-id>/<export-id>.json`` is a Sigstore bundle v0.3 (the same shape as
action and export bundles) signed with the agent's own key. Its statement:

- subject: the export statement file the receipt answers (name ``export.sigstore.json``, sha256
  of the bundle bytes the agent verified), so a receipt cannot be moved onto another export;
- predicate type ``https://airseal.dev/receipt/v1``, predicate :class:`ReceiptPredicate`: who
  (agent id, its public key, host, OS), which export, when, the overall status, a refusal's check
  and file, and one :class:`ActionResult` per action of the export.

The predicate carries the agent's public key so that the signature can be checked on its own;
that proves only that someone holds the key. The appliance counts a receipt only when its agent
id is enrolled there with that key (:mod:`airseal.appliance.enrolment`); a receipt under an
enrolled id with another key is refused, and one of an agent not enrolled is kept aside.

It lives in ``media`` because it is the on-media format shared by the agent (which writes
receipts) and the appliance (which imports them), and neither may import the other.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from airseal.media import layout
from airseal.media.errors import InvalidExportStatement
from airseal.media.limits import MAX_ACTIONS, MAX_EXIT_CODE, MAX_RECEIPT_BYTES, MIN_EXIT_CODE
from airseal.media.statement import (
    Identifier,
    OperatingSystem,
    SequenceNumber,
    Sha256Hex,
    ShortText,
    UtcDatetime,
    validation_detail,
)
from airseal.trustroot.dsse import Statement, Subject

RECEIPT_PREDICATE_TYPE: Final = "https://airseal.dev/receipt/v1"
MAX_REASON_CHARS: Final = 512
MAX_AGENT_KEY_PEM: Final = 4096
RECEIPT_SUBJECT_NAME: Final = layout.STATEMENT_NAME

Outcome = Literal[
    "succeeded", "failed", "skipped", "already-done", "interrupted", "refused", "not-run"
]
ReceiptStatus = Literal["completed", "partial", "refused"]
RebootState = Literal["none", "started", "pending"]
"""``started``: the agent started the reboot command right after writing this receipt;
``pending``: an action needs a reboot the agent was told not to start (``--no-reboot``)."""


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


def _pem(value: str) -> str:
    if not value.startswith("-----BEGIN PUBLIC KEY-----"):
        raise ValueError("must be a PEM public key (SubjectPublicKeyInfo)")
    return value


Reason = Annotated[str, StringConstraints(max_length=MAX_REASON_CHARS), AfterValidator(_no_nul)]
PublicKeyPem = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_AGENT_KEY_PEM), AfterValidator(_pem)
]
Check = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_no_nul)]
MediaPathText = Annotated[str, StringConstraints(max_length=1024), AfterValidator(_no_nul)]


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ActionResult(_Model):
    """What happened to one action of the export on this endpoint."""

    id: Identifier
    version: SequenceNumber
    outcome: Outcome
    reason: Reason | None = None
    exit_code: Annotated[StrictInt, Field(ge=MIN_EXIT_CODE, le=MAX_EXIT_CODE)] | None = None
    reboot_requested: StrictBool = False


class Refusal(_Model):
    """Why the import was refused: the check and the file, as the agent reported them."""

    check: Check
    subject: MediaPathText | None = None
    detail: Reason


class ReceiptPredicate(_Model):
    agent_id: Identifier
    agent_key: PublicKeyPem
    hostname: ShortText
    os: OperatingSystem
    export_id: Identifier
    sequence: SequenceNumber
    distributor: Sha256Hex
    status: ReceiptStatus
    refusal: Refusal | None = None
    started: UtcDatetime
    finished: UtcDatetime
    reboot: RebootState = "none"
    actions: tuple[ActionResult, ...] = Field(default=(), max_length=MAX_ACTIONS)

    @model_validator(mode="after")
    def _consistent(self) -> ReceiptPredicate:
        if (self.status == "refused") != (self.refusal is not None):
            raise ValueError("a refusal is given exactly when the status is refused")
        if self.finished < self.started:
            raise ValueError("finished is before started")
        ids = [a.id for a in self.actions]
        if len(set(ids)) != len(ids):
            raise ValueError("an action appears twice")
        return self


def receipt_media_path(agent_id: str, export_id: str) -> str:
    """Where the receipt goes, relative to ``airseal/``
    (:func:`airseal.media.rules.receipt_problem`)."""
    return f"{layout.RECEIPTS_DIR}/{agent_id}/{export_id}.json"


def receipt_statement(predicate: ReceiptPredicate, export_bundle_sha256: str) -> Statement:
    return Statement(
        subject=(Subject(name=RECEIPT_SUBJECT_NAME, digest={"sha256": export_bundle_sha256}),),
        predicateType=RECEIPT_PREDICATE_TYPE,
        predicate=predicate.to_json_dict(),
    )


def read_receipt_statement(statement: Statement, *, subject: str | None = None) -> ReceiptPredicate:
    """Validate a receipt Statement's shape (its signature is checked by whoever holds a key)."""
    if statement.predicate_type != RECEIPT_PREDICATE_TYPE:
        raise InvalidExportStatement(
            f"predicate type is {statement.predicate_type!r}, not {RECEIPT_PREDICATE_TYPE!r}",
            subject=subject,
        )
    if len(statement.subject) != 1 or statement.subject[0].name != RECEIPT_SUBJECT_NAME:
        raise InvalidExportStatement(
            f"a receipt has one subject, {RECEIPT_SUBJECT_NAME}", subject=subject
        )
    try:
        return ReceiptPredicate.model_validate(statement.predicate)
    except ValidationError as exc:
        raise InvalidExportStatement(validation_detail(exc), subject=subject) from None


__all__ = [
    "MAX_RECEIPT_BYTES",
    "RECEIPT_PREDICATE_TYPE",
    "ActionResult",
    "Outcome",
    "ReceiptPredicate",
    "Refusal",
    "read_receipt_statement",
    "receipt_media_path",
    "receipt_statement",
]
