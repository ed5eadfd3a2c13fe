"""What an import will do with each verified action: a pure decision over facts and history.

Order of the questions, first "no" wins: the operating system; the action's validity window;
whether this action version already succeeded here (idempotent re-import); whether it was
interrupted by a crash (an interrupted *execute* is not retried unless asked: it may be what
crashed or rebooted the machine; an interrupted *download* is retried, placing the same bytes
again is harmless); whether a failed *execute* may run again (the endpoint's retry policy:
``execute.retries`` runs after the first failure, default none); then the action's own
conditions (host, group, if-missing, if-exists).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from airseal.agent.conditions import HostFacts, condition_problem, os_problem, window_problem
from airseal.agent.journal import RunHistory, RunKey
from airseal.agent.verification import VerifiedAction

Decision = Literal["run", "skipped", "already-done", "interrupted", "not-retried"]


@dataclass(frozen=True)
class PlannedAction:
    action: VerifiedAction
    decision: Decision
    reason: str | None = None

    @property
    def runs(self) -> bool:
        return self.decision == "run"

    @property
    def key(self) -> RunKey:
        return run_key(self.action)


def run_key(action: VerifiedAction) -> RunKey:
    return RunKey(action.id, action.version, action.predicate.payload.sha256)


def plan_action(
    action: VerifiedAction,
    host: HostFacts,
    *,
    now: datetime,
    history: RunHistory,
    retry_interrupted: bool,
    execute_retries: int = 0,
) -> PlannedAction:
    predicate = action.predicate
    problem = os_problem(predicate, host) or window_problem(predicate, now)
    if problem is not None:
        return PlannedAction(action, "skipped", problem)
    key = run_key(action)
    if key in history.succeeded:
        return PlannedAction(
            action, "already-done", f"version {action.version} already succeeded here"
        )
    if key in history.interrupted and predicate.mode == "execute" and not retry_interrupted:
        return PlannedAction(
            action,
            "interrupted",
            f"an earlier run (started {history.interrupted[key]}) was interrupted; it is not "
            "retried automatically (import with --retry-interrupted to run it again)",
        )
    failures = history.failed.get(key, 0)
    if predicate.mode == "execute" and failures > execute_retries:
        times = "once" if failures == 1 else f"{failures} times"
        return PlannedAction(
            action,
            "not-retried",
            f"failed {times} before, not retried: retry policy {execute_retries} "
            "(airseal-agent config --execute-retries N, or sign a new version)",
        )
    problem = condition_problem(predicate, host)
    if problem is not None:
        return PlannedAction(action, "skipped", problem)
    return PlannedAction(action, "run")


def plan_actions(
    actions: Sequence[VerifiedAction],
    host: HostFacts,
    *,
    now: datetime,
    history: RunHistory,
    retry_interrupted: bool = False,
    execute_retries: int = 0,
) -> tuple[PlannedAction, ...]:
    """One decision per action, in the export's order (which is the order they run in)."""
    return tuple(
        plan_action(
            a,
            host,
            now=now,
            history=history,
            retry_interrupted=retry_interrupted,
            execute_retries=execute_retries,
        )
        for a in actions
    )


def segments(planned: Sequence[PlannedAction]) -> list[list[PlannedAction]]:
    """Actions to run, grouped so consecutive downloads are placed together (one flush for the
    group) while every execute runs alone, in order."""
    groups: list[list[PlannedAction]] = []
    for item in planned:
        if not item.runs:
            continue
        mode = item.action.predicate.mode
        if mode == "download" and groups and groups[-1][0].action.predicate.mode == "download":
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups
