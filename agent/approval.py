"""Distributor identification and approval, through a callback any front end can answer.

The first time an export from a distributor is imported, the endpoint user is shown who it is
(name, key fingerprint, who authorised the key) and what it wants to do (every action, what it
runs or where it writes), after everything verified: approval is asked only about media that is
authentic and intact. An :class:`Approver` answers; the CLI's answers ``--yes`` (approve),
``--non-interactive`` (refuse anything not approved before) or a terminal prompt, and a future
graphical agent answers with a dialog.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from airseal.agent.verification import VerifiedAction, VerifiedExport


@dataclass(frozen=True)
class ActionSummary:
    id: str
    version: int
    name: str
    os: str
    mode: str
    payload: str
    size: int
    what: str
    """What it does, in one line: ``run setup.sh --quiet as root`` or ``write /opt/x (0644)``."""


@dataclass(frozen=True)
class ApprovalRequest:
    distributor_name: str
    fingerprint: str
    authorised_by: str
    export_id: str
    sequence: int
    appliance_id: str
    created: datetime
    expires: datetime
    actions: tuple[ActionSummary, ...]

    def describe(self) -> str:
        """The text shown to the endpoint user."""
        lines = [
            "A new distributor wants to run actions on this endpoint.",
            f"  Distributor:  {self.distributor_name}",
            f"  Fingerprint:  {_grouped(self.fingerprint)}",
            f"  Authorised:   {self.authorised_by}",
            f"  Export:       {self.export_id} (sequence {self.sequence}, appliance "
            f"{self.appliance_id})",
            f"  Valid:        {self.created.isoformat(timespec='minutes')} to "
            f"{self.expires.isoformat(timespec='minutes')}",
            f"  Actions ({len(self.actions)}):",
        ]
        for a in self.actions[:50]:
            lines.append(f"    - {a.name} v{a.version} [{a.os}, {a.mode}]: {a.what}")
        if len(self.actions) > 50:
            lines.append(f"    ... and {len(self.actions) - 50} more")
        lines.append("Compare the fingerprint with the one your administrator published.")
        return "\n".join(lines)

    def to_json_dict(self) -> dict[str, object]:
        return {
            "distributor": self.distributor_name,
            "fingerprint": self.fingerprint,
            "authorisedBy": self.authorised_by,
            "exportId": self.export_id,
            "sequence": self.sequence,
            "actions": [a.__dict__ for a in self.actions],
        }


def _grouped(fingerprint: str) -> str:
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))


class Approver(Protocol):
    """Decides whether to approve a distributor. ``True`` approves it for good."""

    @property
    def how(self) -> str:
        """Recorded with the approval: ``prompt``, ``yes-flag``..."""
        ...

    def __call__(self, request: ApprovalRequest) -> bool: ...


class ApproveAll:
    """``--yes``: the person running the import approves by running it."""

    how = "yes-flag"

    def __call__(self, request: ApprovalRequest) -> bool:
        return True


class RefuseUnapproved:
    """``--non-interactive``: nobody is there to ask; only distributors approved before pass."""

    how = "non-interactive"

    def __call__(self, request: ApprovalRequest) -> bool:
        return False


def summarise(action: VerifiedAction) -> ActionSummary:
    p = action.predicate
    if p.execute is not None:
        target = p.execute.run or p.payload.name
        args = " ".join(p.execute.args)
        who = f" as {p.execute.run_as}" if p.execute.run_as else ""
        what = f"run {target}{(' ' + args) if args else ''}{who}"
        if p.execute.reboot != "never":
            what += f", reboot {p.execute.reboot}"
    else:
        assert p.download is not None
        owner = f", owner {p.download.owner}" if p.download.owner else ""
        what = f"write {p.download.dest} ({p.download.file_mode}{owner})"
    return ActionSummary(
        p.id, p.version, p.name, p.os, p.mode, p.payload.name, p.payload.size, what
    )


def approval_request(export: VerifiedExport, actions: Sequence[VerifiedAction]) -> ApprovalRequest:
    predicate = export.contents.predicate
    return ApprovalRequest(
        distributor_name=export.distributor.name,
        fingerprint=export.distributor.fingerprint,
        authorised_by=export.distributor.authorised_by,
        export_id=predicate.export_id,
        sequence=predicate.sequence,
        appliance_id=predicate.appliance_id,
        created=predicate.created,
        expires=predicate.expires,
        actions=tuple(summarise(a) for a in actions),
    )
