"""Results that both front ends show: each says itself in words (``describe``) and as JSON.

The CLI prints ``describe()`` lines and emits ``to_json()`` for ``--json``; the TUI shows the same
lines. A text that an operator reads in both front ends is written here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airseal._internal.times import utc_text

if TYPE_CHECKING:
    from airseal.appliance.signers.pkcs11 import TokenInfo
    from airseal.media.check import CheckReport
    from airseal.media.parity import RepairReport


@dataclass(frozen=True)
class Initialised:
    """The appliance home after ``init``: created now, or found already there."""

    home: Path
    created: bool
    appliance_id: str
    schema: int

    def describe(self) -> list[str]:
        state = "Created" if self.created else "Already initialised:"
        return [f"{state} {self.home} (appliance {self.appliance_id}, schema {self.schema})"]

    def to_json(self) -> dict[str, Any]:
        return {
            "home": str(self.home),
            "created": self.created,
            "appliance_id": self.appliance_id,
            "schema": self.schema,
        }


@dataclass(frozen=True)
class AuditRow:
    """One audit log row as stored (``details`` is the recorded JSON text, unparsed)."""

    seq: int
    ts: str
    actor: str
    action: str
    subject: str
    details: str

    def describe(self) -> list[str]:
        return [
            f"{self.seq:>6} {self.ts} {self.actor:<10} {self.action:<14} {self.subject} "
            f"{self.details}"
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "details": self.details,
        }


@dataclass(frozen=True)
class MediaCheck:
    """The courier's check of one medium: complete and undamaged, or what is wrong."""

    report: CheckReport

    @property
    def ok(self) -> bool:
        return self.report.ok

    def describe(self) -> list[str]:
        report = self.report
        if report.ok:
            lines = [
                f"Media COMPLETE: export {report.export_id} (sequence {report.sequence}), "
                f"{report.actions} action(s), {report.files_checked} listed files, "
                f"{report.bytes_checked} bytes checked (the export statement aside)"
            ]
            if report.expires is not None:
                state = "EXPIRED" if report.expired else "valid until"
                lines.append(f"  {state} {utc_text(report.expires)}")
            lines.append(f"  authenticity: {report.authenticity}")
            return lines
        lines = [f"Media {report.status.upper()}: {report.mount}"]
        lines += [f"  {f.check:<10} {f.path}: {f.reason}" for f in report.findings]
        lines.append("  do not carry this media: export again at the appliance")
        return lines

    def to_json(self) -> dict[str, Any]:
        return self.report.to_json_dict()


@dataclass(frozen=True)
class MediaRepair:
    """`airseal media repair`: what par2 found and repaired, and the courier's check after."""

    report: RepairReport

    @property
    def ok(self) -> bool:
        return self.report.ok

    def describe(self) -> list[str]:
        report = self.report
        if report.outcome == "intact":
            lines = ["Repair: nothing to repair (every protected file is intact)"]
        elif report.outcome == "repaired":
            lines = ["Repair: REPAIRED"]
        else:
            lines = [
                f"Repair: NOT POSSIBLE: the damage is beyond the repair data's limit; "
                f"{report.blocks_short} more recovery block(s) (about {report.bytes_short} "
                f"bytes) would be needed ({report.recovery_blocks} held in all)"
            ]
        for f in report.files:
            if f.state == "damaged" and f.blocks is not None:
                lines.append(f"  damaged  {f.path}: {f.blocks_found} of {f.blocks} blocks intact")
            elif f.state != "found":
                lines.append(f"  {f.state:<8} {f.path}")
        if report.outcome == "beyond-limit":
            lines.append("  do not carry this media: export it again at the appliance")
        lines += MediaCheck(report.check).describe()
        return lines

    def to_json(self) -> dict[str, Any]:
        return self.report.to_json_dict()


TOKEN_COLUMNS = (
    "Slot",
    "Label",
    "Serial",
    "Manufacturer",
    "Model",
    "Free public",
    "Free private",
    "State",
)


@dataclass(frozen=True)
class TokenTable:
    """The slots and tokens a PKCS#11 module sees, as the operator reads them."""

    module: str
    tokens: tuple[TokenInfo, ...]

    @property
    def title(self) -> str:
        return f"Tokens in {self.module}"

    @property
    def empty_text(self) -> str:
        return f"No token is present in {self.module}."

    def rows(self) -> list[tuple[str, ...]]:
        """One row per token, in :data:`TOKEN_COLUMNS` order."""
        return [
            (
                str(info.slot_id),
                info.label or "-",
                info.serial or "-",
                info.manufacturer,
                info.model,
                info.public_memory,
                info.private_memory,
                info.state,
            )
            for info in self.tokens
        ]

    def describe(self) -> list[str]:
        if not self.tokens:
            return [self.empty_text]
        return [self.title, *("  ".join(row) for row in self.rows())]

    def to_json(self) -> list[dict[str, Any]]:
        return [info.to_dict() for info in self.tokens]


@dataclass(frozen=True)
class SettingView:
    """One site setting as a form shows it."""

    name: str
    value: str
    default: str
    choices: tuple[str, ...] | None
    """The allowed values, or None for a whole number of days (1 to 3650)."""
    description: str
