"""Fixtures for agent tests: a real agent state (copied from one made per session, so scrypt runs
once), a distributor key, in-process imports and the `airseal-agent` CLI in a child process.

Every test gets a harmless reboot command (it appends a line to ``<tmp>/reboots``): nothing in
these tests can reboot the machine they run on.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airseal.agent.approval import ApproveAll, Approver
from airseal.agent.enrolment import enroll, pinned_trust
from airseal.agent.identity import load_signer
from airseal.agent.importer import Importer, ImportOptions, StageHook, host_facts
from airseal.agent.journal import Journal
from airseal.agent.lock import StateLock
from airseal.agent.report import ImportReport
from airseal.agent.state import AgentState, init_state, open_state
from airseal.media.reader import DirectorySource
from airseal.trustroot.signer import Signer

from .helpers import PASSWORD, Distributor, new_distributor, utcnow


@pytest.fixture(autouse=True)
def reboot_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    reboots = tmp_path / "reboots"
    monkeypatch.setenv("AIRSEAL_AGENT_KEY_PASSWORD", PASSWORD)
    monkeypatch.setenv(
        "AIRSEAL_AGENT_REBOOT_COMMAND",
        shlex.join(["/bin/sh", "-c", f"echo reboot >> {shlex.quote(str(reboots))}"]),
    )
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    return reboots


@pytest.fixture(scope="session")
def agent_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("agent-template") / "state"
    init_state(root, lambda: PASSWORD.encode(), env={})
    return root


@pytest.fixture(scope="session")
def agent_signer(agent_template: Path) -> Signer:
    return load_signer(agent_template, PASSWORD.encode())


@pytest.fixture
def agent_state(agent_template: Path) -> AgentState:
    """An initialised agent in ``$AIRSEAL_AGENT_HOME`` (a copy of the session's template)."""
    root = Path(os.environ["AIRSEAL_AGENT_HOME"])
    shutil.copytree(agent_template, root)
    return open_state(root)


@pytest.fixture
def distributor(tmp_path: Path) -> Distributor:
    return new_distributor(tmp_path / "keys")


@pytest.fixture
def enrolled(agent_state: AgentState, distributor: Distributor) -> AgentState:
    with Journal.open(agent_state.journal_path) as journal:
        enroll(
            journal,
            distributor.pub.read_bytes(),
            name="Test distributor",
            purposes=("exports", "actions"),
            now=utcnow(),
        )
    return agent_state


@dataclass
class ImportRunner:
    state: AgentState
    signer: Signer

    def __call__(
        self,
        mount: Path,
        *,
        approver: Approver | None = None,
        now: datetime | None = None,
        hook: StageHook | None = None,
        **options: Any,
    ) -> ImportReport:
        state = open_state(self.state.root)
        clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
        with StateLock(state.lock_path), Journal.open(state.journal_path) as journal:
            importer = Importer(
                state,
                journal,
                pinned_trust(journal),
                DirectorySource(mount),
                approver=approver or ApproveAll(),
                clock=clock,
                host=host_facts(state),
                signer=lambda: self.signer,
                options=ImportOptions(**options),
                hook=hook,
            )
            return importer.run()


@pytest.fixture
def run_import(enrolled: AgentState, agent_signer: Signer) -> ImportRunner:
    """Import in-process with the real pipeline (the agent key is decrypted once per session)."""
    return ImportRunner(enrolled, agent_signer)


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def agent_cli() -> Callable[..., CliResult]:
    """Run `airseal-agent` in a child process (real argv, exit code, environment)."""

    def run(
        *args: str,
        env: dict[str, str] | None = None,
        unset: tuple[str, ...] = (),
        timeout: float = 120,
    ) -> CliResult:
        child_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in unset}
        done = subprocess.run(
            [sys.executable, "-m", "airseal.agent", *args],
            capture_output=True,
            text=True,
            env=child_env,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    return run
