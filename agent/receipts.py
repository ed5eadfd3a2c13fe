"""Receipts: what this endpoint did with an export, signed with the agent key, put on the media.

A receipt is written for every import whose export statement was authenticated (signed by a
trusted distributor): completed, partly failed, or refused by a later check (the operator learns
which file failed which check on which endpoint). Media that did not authenticate gets nothing:
its export id may be forged. Dry runs write nothing.

The receipt must fit the media rules (:func:`airseal.media.rules.receipt_problem`: name and
size), so reasons are shortened, then dropped, until the signed bundle fits ``MAX_RECEIPT_BYTES``.
It is written through the same :class:`airseal.media.reader.MediaSource` the import read
(:meth:`~airseal.media.reader.MediaSource.write_receipt`: atomic, no link followed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

from airseal.agent.errors import AgentError
from airseal.agent.platforms import OperatingSystem
from airseal.agent.report import ActionReport, ImportReport, error_check
from airseal.media.errors import BadMedia, MediaIOError
from airseal.media.limits import MAX_RECEIPT_BYTES
from airseal.media.reader import MediaSource
from airseal.media.receipt import (
    ActionResult,
    Outcome,
    ReceiptPredicate,
    Refusal,
    receipt_statement,
)
from airseal.trustroot.bundle import bundle_to_json, sign_statement
from airseal.trustroot.signer import Signer

_OUTCOMES = frozenset(get_args(Outcome))
_REASON_BUDGETS = (512, 160, 60, 0)


class ReceiptError(AgentError):
    title = "Receipt not written"
    check = "receipt"
    hint = "the import itself is journalled; check that the media is writable and has room"


def _result(action: ActionReport, budget: int) -> ActionResult:
    outcome = action.outcome if action.outcome in _OUTCOMES else "not-run"
    reason = action.reason
    if reason is not None:
        reason = reason if len(reason) <= budget else reason[: max(budget - 1, 0)] + "…"
        reason = reason if budget else None
    return ActionResult(
        id=action.id,
        version=action.version,
        outcome=outcome,  # type: ignore[arg-type]
        reason=reason or None,
        exit_code=action.exit_code,
        reboot_requested=action.reboot_requested,
    )


def receipt_predicate(
    report: ImportReport,
    *,
    agent_id: str,
    agent_key_pem: str,
    hostname: str,
    os_name: OperatingSystem,
    reason_budget: int = _REASON_BUDGETS[0],
) -> ReceiptPredicate:
    assert report.export_id is not None and report.sequence is not None
    assert report.distributor is not None and report.finished is not None
    refusal = None
    if report.status == "refused":
        error = report.error
        detail = error.detail if error is not None else "refused"
        refusal = Refusal(
            check=error_check(error) if error is not None else "import",
            subject=error.subject if error is not None else None,
            detail=detail[:512],
        )
    status = report.status if report.status != "dry-run" else "completed"
    return ReceiptPredicate(
        agent_id=agent_id,
        agent_key=agent_key_pem,
        hostname=hostname[:255] or "unknown",
        os=os_name,
        export_id=report.export_id,
        sequence=report.sequence,
        distributor=report.distributor,
        status=status,
        refusal=refusal,
        started=report.started,
        finished=report.finished,
        reboot=report.reboot,  # type: ignore[arg-type]
        actions=tuple(_result(a, reason_budget) for a in _unique(report.actions)),
    )


def _unique(actions: Sequence[ActionReport]) -> list[ActionReport]:
    seen: set[str] = set()
    unique = []
    for action in actions:
        if action.id not in seen:
            seen.add(action.id)
            unique.append(action)
    return unique


def sign_receipt(
    report: ImportReport,
    signer: Signer,
    *,
    agent_id: str,
    agent_key_pem: str,
    hostname: str,
    os_name: OperatingSystem,
    export_bundle_sha256: str,
) -> bytes:
    """The signed receipt bundle (JSON bytes), within the media's receipt size bound."""
    for budget in _REASON_BUDGETS:
        predicate = receipt_predicate(
            report,
            agent_id=agent_id,
            agent_key_pem=agent_key_pem,
            hostname=hostname,
            os_name=os_name,
            reason_budget=budget,
        )
        data = bundle_to_json(
            sign_statement(signer, receipt_statement(predicate, export_bundle_sha256))
        )
        if len(data) <= MAX_RECEIPT_BYTES:
            return data
    raise ReceiptError(f"the receipt is larger than {MAX_RECEIPT_BYTES} bytes even without reasons")


def write_receipt(source: MediaSource, agent_id: str, export_id: str, data: bytes) -> str:
    """Put the receipt on the media through its source (atomically, following no link, within
    the media's receipt rules); returns its path relative to the mount."""
    try:
        return source.write_receipt(agent_id, export_id, data)
    except (BadMedia, MediaIOError) as exc:
        raise ReceiptError(exc.detail, subject=exc.subject) from None
