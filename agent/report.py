"""What an import did: the value the pipeline returns to its front end (CLI now, UI later)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from airseal.errors import AirsealError

ImportStatus = Literal["completed", "partial", "refused", "dry-run"]


@dataclass
class ActionReport:
    id: str
    version: int
    name: str
    mode: str
    outcome: str
    """succeeded | failed | skipped | already-done | interrupted | refused | not-run | would-run
    | not-retried (failed before; the retry policy holds it back)"""
    reason: str | None = None
    exit_code: int | None = None
    output: str | None = None
    reboot_requested: bool = False
    vendor: str | None = None
    """The vendor's signer, when a vendor signature travelled with the action and held here."""

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "name": self.name,
            "mode": self.mode,
            "outcome": self.outcome,
            "reason": self.reason,
            "exitCode": self.exit_code,
            "rebootRequested": self.reboot_requested,
            "output": self.output,
            "vendorSigner": self.vendor,
        }


def error_check(error: AirsealError) -> str:
    """The check that failed: the error's own ``check``, else its title as a slug
    (``invalid-signature``, ``malformed-bundle``) for trustroot errors, which carry none."""
    check = getattr(error, "check", None)
    if isinstance(check, str) and check:
        return check
    return "-".join(error.title.lower().split())[:64] or "import"


def error_json(error: AirsealError) -> dict[str, Any]:
    return {
        "title": error.title,
        "check": error_check(error),
        "subject": error.subject,
        "detail": error.detail,
        "hint": error.hint or None,
        "message": str(error),
    }


@dataclass
class ImportReport:
    import_id: int
    media: str
    started: datetime
    status: ImportStatus = "refused"
    finished: datetime | None = None
    export_id: str | None = None
    sequence: int | None = None
    distributor: str | None = None
    distributor_name: str | None = None
    repeat: bool = False
    """The very export accepted last was imported again (idempotent)."""
    approved_now: bool = False
    actions: list[ActionReport] = field(default_factory=list)
    error: AirsealError | None = None
    interrupted: list[dict[str, Any]] = field(default_factory=list)
    """Runs an earlier, crashed import left unfinished, found when this one started."""
    receipt_path: str | None = None
    reboot: str = "none"
    warnings: list[str] = field(default_factory=list)
    cleaned_up: list[str] = field(default_factory=list)
    """What an earlier, killed import left (placement temporaries, staging) and this one
    removed when it started."""

    @property
    def refused(self) -> bool:
        return self.status == "refused"

    @property
    def failed_actions(self) -> list[ActionReport]:
        """Actions whose result on this endpoint is a failure: failed now, or failed before and
        held back by the retry policy (the endpoint is still not as the media asks)."""
        return [a for a in self.actions if a.outcome in ("failed", "not-retried")]

    def raise_for_refusal(self) -> None:
        if self.error is not None:
            raise self.error

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "import": self.import_id,
            "media": self.media,
            "status": self.status,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat() if self.finished else None,
            "exportId": self.export_id,
            "sequence": self.sequence,
            "distributor": self.distributor,
            "distributorName": self.distributor_name,
            "repeat": self.repeat,
            "approvedNow": self.approved_now,
            "actions": [a.to_json_dict() for a in self.actions],
            "error": error_json(self.error) if self.error else None,
            "interrupted": self.interrupted,
            "receipt": self.receipt_path,
            "reboot": self.reboot,
            "warnings": self.warnings,
            "cleanedUp": self.cleaned_up,
        }
