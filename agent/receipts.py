"""Receipts: what this endpoint did with an export, signed with the agent key, put on the media.

A receipt is written for every import whose export statement was authenticated (signed by a
trusted distributor): completed, partly failed, or refused by a later check (the operator learns
which file failed which check on which endpoint). Media that did not authenticate gets nothing:
its export id may be forged. Dry runs write nothing.

The receipt must fit the media rules (:func:`airseal.media.rules.receipt_problem`: name and size),
so
reasons are shortened, then dropped, until the signed bundle fits ``MAX_RECEIPT_BYTES``.
It is written atomically next to its final name (temporary file, fsync, rename).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from airseal.agent.errors import AgentError
from airseal.agent.platforms import OperatingSystem
from airseal.agent.report import ActionReport, ImportReport, error_check
from airseal.media import layout
from airseal.media.limits import MAX_RECEIPT_BYTES
from airseal.media.receipt import (
    ActionResult,
    Outcome,
    ReceiptPredicate,
    Refusal,
    receipt_media_path,
    receipt_statement,
)
from airseal.media.rules import receipt_problem
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


def _plain_dir(path: Path, create: bool) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not create:
            raise
        os.mkdir(path)
        return
    if not stat.S_ISDIR(st.st_mode):
        raise ReceiptError("is not a plain folder (a link or a file)", subject=str(path))


def write_receipt(mount: Path, agent_id: str, export_id: str, data: bytes) -> str:
    """Write the receipt onto the media atomically; returns its path relative to the mount."""
    relative = receipt_media_path(agent_id, export_id)
    problem = receipt_problem(relative, len(data))
    if problem is not None:
        raise ReceiptError(problem, subject=layout.on_mount(relative))
    media_dir = mount / layout.MEDIA_DIR
    folder = media_dir / layout.RECEIPTS_DIR / agent_id
    target = folder / f"{export_id}.json"
    temporary = folder / f".{export_id}.{secrets.token_hex(4)}.tmp"
    try:
        _plain_dir(media_dir, create=False)
        _plain_dir(media_dir / layout.RECEIPTS_DIR, create=True)
        _plain_dir(folder, create=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(temporary, flags | getattr(os, "O_BINARY", 0), 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise ReceiptError(exc.strerror or str(exc), subject=layout.on_mount(relative)) from None
    from airseal._internal.atomic import fsync_dir

    fsync_dir(folder)
    return layout.on_mount(relative)
