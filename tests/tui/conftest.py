"""Fixtures for the terminal UI: a real appliance home, a fixed clock, stable ids, a software
YubiKey, and helpers to drive the app with Pilot.

Everything goes through the real services and a real SQLite database. What varies from run to
run and shows on screen is pinned here, not in the app: the clock (the app's own clock, and
``datetime.now`` in the services that stamp rows), the random ids (``uuid.uuid4`` in the services
that make them) and the audit actor.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import shutil
import tempfile
import uuid as uuid_module
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from airseal.appliance import audit as audit_module
from airseal.media.capacity import Capacity
from airseal.tui.app import AirsealApp
from airseal.tui.context import ApplianceContext

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
COSIGN_KEY = FIXTURES / "cosign" / "cosign_pemsigstorekey.key"
COSIGN_KEY_PASSWORD = "hello"  # the cosign project's test key password (fixtures README)
SNAPSHOT_ROOT = Path("/tmp/airseal-tui-snapshots")  # fixed: paths show on some screens
TERMINAL = (120, 40)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests here with asyncio (Pilot needs an event loop; no plugin)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


class FrozenDatetime(datetime):
    """``datetime`` whose ``now`` is :data:`NOW` (services that stamp rows read it)."""

    @classmethod
    def now(cls, tz: Any = None) -> FrozenDatetime:  # type: ignore[override]
        moment = NOW if tz is None else NOW.astimezone(tz)
        return cls.fromtimestamp(moment.timestamp(), tz=moment.tzinfo)


class CountingUuid:
    """Stands in for the ``uuid`` module of a service: ``uuid4()`` counts up."""

    def __init__(self, start: int = 0) -> None:
        self.counter = start

    def uuid4(self) -> uuid_module.UUID:
        self.counter += 1
        # the counter sits right after a fixed prefix: action ids are the first 12 hex digits
        return uuid_module.UUID(int=(0xA1E5 << 112) | (self.counter << 80) | 0xA15EA1)


@pytest.fixture
def stable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fixed clock, counting ids and a fixed audit actor in every service that shows them."""
    _stabilise(monkeypatch, first_id=100)


def _stabilise(monkeypatch: pytest.MonkeyPatch, first_id: int = 0) -> None:
    import airseal.appliance.actions
    import airseal.appliance.export
    import airseal.appliance.home
    import airseal.appliance.intake
    import airseal.appliance.keystore

    appliance = airseal.appliance
    for module in (appliance.keystore, audit_module, appliance.intake, appliance.actions):
        monkeypatch.setattr(module, "datetime", FrozenDatetime)
    ids = CountingUuid(first_id)
    for module in (appliance.home, appliance.actions, appliance.export):
        monkeypatch.setattr(module, "uuid", ids)
    monkeypatch.setattr(audit_module, "_actor", lambda: "operator")


class FixedPrompter:
    """A Prompter for building fixtures through the services (not for the UI)."""

    def __init__(self, secret: str) -> None:
        self.value = secret

    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        return self.value

    def notice(self, message: str) -> None:
        pass


def fixed_capacity(_path: Path) -> Capacity:
    return Capacity(free_bytes=7_800_000_000, cluster_size=4096, method="statvfs")


MOUNT_TABLE = (  # /proc/self/mountinfo of a fixed machine: a root disk and one USB stick
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    f"98 22 8:17 / {SNAPSHOT_ROOT / 'usb'} rw,nosuid,nodev,relatime shared:60 - vfat /dev/sdb1 "
    "rw,fmask=0022,dmask=0022\n"
)


def make_context(root: Path, **extra: Any) -> ApplianceContext:
    settings: dict[str, Any] = {
        "clock": lambda: NOW,
        "capacity_probe": fixed_capacity,
        "mount_table": lambda: MOUNT_TABLE,
    }
    return ApplianceContext(root=root, **{**settings, **extra})


def make_app(root: Path, **extra: Any) -> AirsealApp:
    return AirsealApp(make_context(root, **extra))


PAYLOAD = b"#!/bin/sh\n# Airseal TUI test payload\necho installed\n" * 64


def build_site(root: Path, media: Path) -> dict[str, Any]:
    """A small appliance: one imported key, a vendor-signed file, two actions (a download
    into ``<root>/../endpoint``, so that real agents can run it here, and an execute for hosts
    ``ws-*``), one export to ``media`` and the receipts of three agents on it."""
    from airseal.appliance import actions, blobs, intake, keystore
    from airseal.appliance.db import SCHEMA_VERSION, open_database
    from airseal.appliance.export import export_to_media
    from airseal.appliance.home import init_home

    home, _ = init_home(root)
    db = open_database(home)
    prompter = FixedPrompter(COSIGN_KEY_PASSWORD)
    endpoint = root.parent / "endpoint" / "opt" / "airseal"  # where agents in tests place files
    audit_module.record(home, db, "init", str(home.root), {"schema": SCHEMA_VERSION})
    keystore.import_file_key(home, db, "site-ops", COSIGN_KEY, prompter)
    source = root.parent / "incoming" / "agent-installer.sh"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(PAYLOAD)
    signature = blobs.sign_blob(home, db, source, "site-ops", prompter)
    sig_path = source.with_suffix(".sh.sig")
    sig_path.write_bytes(signature.signature_b64)
    stored = intake.add_file(
        home, db, source,
        intake.VendorSignature(signature=sig_path, key=keystore.get_key(db, "site-ops").public_key),
    )
    download = actions.create_action(
        home, db,
        actions.ActionSpec(name="(Install)Agent", description="Installs the agent", label="base",
                           os="linux", mode="download", file=stored.sha256,
                           dest=str(endpoint / "agent-installer.sh"), file_mode="0755",
                           if_missing=(str(endpoint / "installed"),)),
        "site-ops", prompter, now=NOW,
    )
    execute = actions.create_action(
        home, db,
        actions.ActionSpec(name="(Run)Agent", os="linux", mode="execute", file=stored.sha256,
                           args=("--quiet",), timeout=600, host="ws-*", valid_days=10),
        "site-ops", prompter, now=NOW,
    )
    media.mkdir(parents=True, exist_ok=True)
    export = export_to_media(home, db, media, "site-ops", prompter, now=NOW,
                             allow_unknown_capacity=True)
    receipts = write_agent_receipts(media, export, [download.id, execute.id])
    db.close()
    return {"receipts": receipts, "file": stored, "download": download, "execute": execute,
            "export": export, "source": source, "signature": sig_path}


_TEMPLATE = SNAPSHOT_ROOT.with_name(SNAPSHOT_ROOT.name + "-template")


AGENTS = (  # (agent id, host, private scalar, outcome of each exported action)
    ("agent-ws-042", "ws-042", 0x5EED_0001, ("succeeded", "succeeded")),
    ("agent-ws-043", "ws-043", 0x5EED_0002, ("succeeded", "failed")),
    ("agent-lab-007", "lab-007", 0x5EED_0003, ("already-done", "skipped")),
)


def write_agent_receipts(media: Path, export: Any, action_ids: list[str]) -> list[Path]:
    """What agents write back after importing ``export`` (the agent's side, with its format and
    writer; keys derived from fixed numbers so that screens are stable)."""
    import hashlib
    from datetime import timedelta

    from cryptography.hazmat.primitives.asymmetric import ec

    from airseal.agent.receipts import write_receipt
    from airseal.media.reader import DirectorySource
    from airseal.media.receipt import ActionResult, ReceiptPredicate, receipt_statement
    from airseal.trustroot.bundle import bundle_to_json, sign_statement
    from airseal.trustroot.keys import spki_pem
    from airseal.trustroot.signer import PrivateKeySigner

    statement = (media / "airseal" / "export.sigstore.json").read_bytes()
    written = []
    for index, (agent_id, host, scalar, outcomes) in enumerate(AGENTS):
        signer = PrivateKeySigner(ec.derive_private_key(scalar, ec.SECP256R1()))
        finished = NOW - timedelta(hours=6 - index)
        predicate = ReceiptPredicate(
            agent_id=agent_id,
            agent_key=spki_pem(signer.public_key).decode(),
            hostname=host,
            os="linux",
            export_id=export.export_id,
            sequence=export.sequence,
            distributor=export.key_fingerprint,
            status="partial" if "failed" in outcomes else "completed",
            started=finished - timedelta(minutes=2),
            finished=finished,
            actions=tuple(
                ActionResult(id=action_id, version=1, outcome=outcome,
                             exit_code=2 if outcome == "failed" else None,
                             reason="exited with code 2" if outcome == "failed" else None)
                for action_id, outcome in zip(action_ids, outcomes, strict=True)
            ),
        )
        data = bundle_to_json(sign_statement(
            signer, receipt_statement(predicate, hashlib.sha256(statement).hexdigest())
        ))
        written.append(
            media / write_receipt(DirectorySource(media), agent_id, export.export_id, data)
        )
    return written


def enrol_agents(root: Path, agents: list[tuple[str, bytes]] | None = None) -> None:
    """Enrol agents at the appliance in ``root`` (default: the :data:`AGENTS` whose receipts
    :func:`build_site` wrote), as an administrator would: their receipts then count."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from airseal.appliance.service import Appliance
    from airseal.trustroot.keys import spki_pem

    if agents is None:
        agents = [
            (agent_id, spki_pem(ec.derive_private_key(scalar, ec.SECP256R1()).public_key()))
            for agent_id, _host, scalar, _outcomes in AGENTS
        ]
    with tempfile.TemporaryDirectory() as keys, Appliance(root) as appliance:
        for agent_id, pem in agents:
            key = Path(keys) / f"{agent_id}.pub"
            key.write_bytes(pem)
            appliance.enroll_agent(agent_id, key)


@pytest.fixture(scope="session")
def _site_template() -> Iterator[dict[str, Any]]:
    """Built once (scrypt makes each build take seconds), at the fixed path, then kept aside.

    The path is fixed (it shows on screens), so two test sessions on one machine take turns:
    the second waits on a lock until the first is done with it."""
    import fcntl

    with open(SNAPSHOT_ROOT.with_name(SNAPSHOT_ROOT.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(SNAPSHOT_ROOT, ignore_errors=True)
        shutil.rmtree(_TEMPLATE, ignore_errors=True)
        with pytest.MonkeyPatch.context() as patch:
            _stabilise(patch)
            site = build_site(SNAPSHOT_ROOT / "home", SNAPSHOT_ROOT / "usb")
        shutil.copytree(SNAPSHOT_ROOT, _TEMPLATE, symlinks=True)
        try:
            yield site
        finally:
            shutil.rmtree(_TEMPLATE, ignore_errors=True)
            shutil.rmtree(SNAPSHOT_ROOT, ignore_errors=True)


@pytest.fixture
def snapshot_site(_site_template: dict[str, Any], stable: None) -> dict[str, Any]:
    """A fresh copy of the :func:`build_site` appliance at the fixed path."""
    shutil.rmtree(SNAPSHOT_ROOT, ignore_errors=True)
    shutil.copytree(_TEMPLATE, SNAPSHOT_ROOT, symlinks=True)
    return {**_site_template, "root": SNAPSHOT_ROOT / "home", "media": SNAPSHOT_ROOT / "usb"}


@pytest.fixture
def empty_home(tmp_path: Path) -> Path:
    from airseal.appliance.home import init_home

    root = tmp_path / "home"
    init_home(root)
    return root


async def settle(pilot: Any, rounds: int = 3, timeout: float = 30.0) -> None:
    """Let workers finish and their messages land.

    A worker waiting for an answer in a secret dialog cannot finish until the dialog is
    answered: while one is open, only the messages are let through."""
    from textual.worker import WorkerCancelled, WorkerFailed

    from airseal.tui.widgets.dialogs import SecretDialog

    for _ in range(rounds):
        busy = any(not worker.is_finished for worker in pilot.app.workers)
        if busy and not isinstance(pilot.app.screen, SecretDialog):
            # a failed worker is shown to the operator by its screen; tests look at that. A
            # cancelled one was replaced by a newer one of its group (exclusive), awaited next
            with contextlib.suppress(WorkerFailed, WorkerCancelled):
                await asyncio.wait_for(pilot.app.workers.wait_for_complete(), timeout)
        await pilot.pause()
        if not busy and not any(not worker.is_finished for worker in pilot.app.workers):
            return  # nothing ran and nothing was started by what landed: settled


async def wait_for(pilot: Any, condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Pause until ``condition()`` holds (workers run in threads, dialogs open from them)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            screen = pilot.app.screen
            extra = f": {screen.error_title}: {screen.body}" if hasattr(screen, "body") else ""
            for error in getattr(pilot.app, "internal_errors", []):
                import traceback

                extra += "\n" + "".join(traceback.format_exception(error))
            raise AssertionError(f"timed out waiting; screen is {screen!r}{extra}")
        await pilot.pause(0.02)


async def wait_for_screen(pilot: Any, cls: type, timeout: float = 20.0) -> Any:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, cls), timeout)
    await pilot.pause()
    return pilot.app.screen


async def type_text(pilot: Any, text: str) -> None:
    """Type ``text`` into the focused field.

    Into an ``Input`` it goes through the same editing call a key press makes
    (``insert_text_at_cursor``) in one step: Pilot waits for the process to go idle after every
    key (at least 40 ms), which makes long paths cost seconds. Anything else gets key presses."""
    from textual.widgets import Input

    focused = pilot.app.focused
    if isinstance(focused, Input):
        focused.insert_text_at_cursor(text)
        await pilot.pause()
    else:
        await pilot.press(*text)


async def answer_secret(pilot: Any, secret: str, *, confirm: bool | None = None) -> None:
    """Wait for the masked dialog, type ``secret`` (twice when it asks twice) and submit."""
    from textual.widgets import Input

    from airseal.tui.widgets.dialogs import SecretDialog

    dialog = await wait_for_screen(pilot, SecretDialog)
    if confirm is not None:
        assert dialog.confirm is confirm
    dialog.query_one("#secret", Input).focus()
    await type_text(pilot, secret)
    await pilot.press("enter")
    if dialog.confirm:
        await type_text(pilot, secret)
        await pilot.press("enter")
    await pilot.pause()


def screen_text(app: AirsealApp) -> str:
    """Everything the terminal shows, as plain lines (from the SVG screenshot's text runs)."""
    import html
    import re

    rows: dict[float, list[tuple[float, str]]] = {}
    svg = app.export_screenshot()
    for match in re.finditer(r'<text [^>]*x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        x, y, text = float(match.group(1)), float(match.group(2)), html.unescape(match.group(3))
        rows.setdefault(y, []).append((x, text))
    return "\n".join("".join(t for _, t in sorted(runs)) for _, runs in sorted(rows.items()))
