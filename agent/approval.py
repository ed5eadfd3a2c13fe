"""Distributor identification and approval, through a callback any front end can answer.

The first time an export from a distributor is imported, the endpoint user is shown who it is
(name, key fingerprint, who authorised the key) and what it wants to do (every action, what it
runs or where it writes), after everything verified: approval is asked only about media that is
authentic and intact. An :class:`Approver` answers; the CLI's answers ``--yes`` (approve),
``--non-interactive`` (refuse anything not approved before) or a terminal prompt, and a future
graphical agent answers with a dialog.

Approval holds for every key whose signature the import counts: an action signed by another
enrolled key than the export's distributor is asked about (or refused) in its own request.
Signed names are shown escaped where they could deceive (:mod:`airseal.media.confusables`), with
a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from airseal.agent.trust import TrustedKey
from airseal.agent.verification import VerifiedAction, VerifiedExport
from airseal.media.confusables import confusable_warning, escape_confusables


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
    """What it does, in one line: ``run setup.sh --quiet as root`` or ``write /opt/x (0644)``.
    Signed names in ``name``, ``payload`` and ``what`` are escaped where they could deceive."""
    warnings: tuple[str, ...] = ()
    """One line for each signed name that had to be escaped."""
    vendor: str | None = None
    """Who signed the payload at the vendor, checked again here (``None``: no vendor signature
    travels with the action)."""


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
    carried_by: str | None = None
    """The export's distributor, when the key asked about only signed actions inside its
    export (``None`` when the key asked about is the export's distributor)."""

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(w for a in self.actions for w in a.warnings)

    def describe(self) -> str:
        """The text shown to the endpoint user."""
        if self.carried_by is None:
            opening = "A new distributor wants to run actions on this endpoint."
        else:
            opening = (
                f"A distributor not approved here signed actions in an export from "
                f"{self.carried_by}; it must be approved too."
            )
        lines = [
            opening,
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
            vendor = f"{a.vendor} (verified here)" if a.vendor else "none carried"
            lines.append(f"        vendor signature: {vendor}")
        if len(self.actions) > 50:
            lines.append(f"    ... and {len(self.actions) - 50} more")
        lines.extend(f"  WARNING: {warning}" for warning in self.warnings[:50])
        lines.append("Compare the fingerprint with the one your administrator published.")
        return "\n".join(lines)

    def to_json_dict(self) -> dict[str, object]:
        return {
            "distributor": self.distributor_name,
            "fingerprint": self.fingerprint,
            "authorisedBy": self.authorised_by,
            "exportId": self.export_id,
            "sequence": self.sequence,
            "carriedBy": self.carried_by,
            "actions": [a.__dict__ for a in self.actions],
            "warnings": list(self.warnings),
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


def name_warnings(action: VerifiedAction) -> tuple[str, ...]:
    """A warning for each signed name of ``action`` that could deceive a reader."""
    p = action.predicate
    names = [("action name", p.name), ("payload name", p.payload.name)]
    if p.execute is not None:
        if p.execute.run is not None:
            names.append(("program", p.execute.run))
        names.extend(("argument", arg) for arg in p.execute.args)
        if p.execute.run_as is not None:
            names.append(("run-as account", p.execute.run_as))
    if p.download is not None:
        names.append(("destination", p.download.dest))
        if p.download.owner is not None:
            names.append(("owner", p.download.owner))
    found = (confusable_warning(f"action {p.id}: {label}", text) for label, text in names)
    return tuple(w for w in found if w is not None)


def summarise(action: VerifiedAction) -> ActionSummary:
    p = action.predicate
    shown = escape_confusables
    if p.execute is not None:
        target = shown(p.execute.run or p.payload.name)
        args = " ".join(shown(arg) for arg in p.execute.args)
        who = f" as {shown(p.execute.run_as)}" if p.execute.run_as else ""
        what = f"run {target}{(' ' + args) if args else ''}{who}"
        if p.execute.reboot != "never":
            what += f", reboot {p.execute.reboot}"
    else:
        assert p.download is not None
        owner = f", owner {shown(p.download.owner)}" if p.download.owner else ""
        what = f"write {shown(p.download.dest)} ({p.download.file_mode}{owner})"
    return ActionSummary(
        p.id,
        p.version,
        shown(p.name),
        p.os,
        p.mode,
        shown(p.payload.name),
        p.payload.size,
        what,
        name_warnings(action),
        escape_confusables(action.vendor.signer) if action.vendor is not None else None,
    )


def approval_request(
    export: VerifiedExport,
    actions: Sequence[VerifiedAction],
    *,
    signer: TrustedKey | None = None,
) -> ApprovalRequest:
    """What to ask about ``signer`` (by default the export's distributor) and the ``actions``
    it signed in ``export``."""
    predicate = export.contents.predicate
    key = signer or export.distributor
    return ApprovalRequest(
        distributor_name=key.name,
        fingerprint=key.fingerprint,
        authorised_by=key.authorised_by,
        export_id=predicate.export_id,
        sequence=predicate.sequence,
        appliance_id=predicate.appliance_id,
        created=predicate.created,
        expires=predicate.expires,
        actions=tuple(summarise(a) for a in actions),
        carried_by=(
            None if key.fingerprint == export.distributor.fingerprint else export.distributor.name
        ),
    )
