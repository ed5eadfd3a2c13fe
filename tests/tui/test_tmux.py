"""The real `airseal` command in a real terminal: tmux (Debian package ``tmux``, installed by
``scripts/setup --test``) at 120x40, keys sent with ``send-keys``, the screen read with
``capture-pane``. One operator's path from a fresh key to a checked USB folder, then the
database and the media are read to see that it really happened.

Each test runs its own tmux server (``-L`` with a unique socket name, no user config) and kills
it afterwards. The appliance home and the key password come from the environment, as an operator
would set them (``AIRSEAL_HOME``, ``COSIGN_PASSWORD``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from airseal.appliance import audit, intake
from airseal.appliance.actions import list_actions
from airseal.appliance.db import SCHEMA_VERSION, open_database
from airseal.appliance.home import init_home, open_home
from airseal.appliance.keystore import get_key
from airseal.media.check import check_media
from tests.tui.conftest import PAYLOAD

PASSWORD = "tmux-operator-password"
WIDTH, HEIGHT = 120, 40


class Terminal:
    """A tmux server of our own with one session running one command."""

    def __init__(self, tmux: str, socket: str) -> None:
        self.tmux = tmux
        self.socket = socket
        self.session = "airseal"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # An explicit environment: a library in this process (readline) may have put COLUMNS
        # and LINES (of no terminal, 80x24) into the C environment, and an app started with
        # them would believe them rather than the 120x40 pane.
        environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        return subprocess.run(
            [self.tmux, "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True, text=True, timeout=30, check=check, env=environment,
        )

    def start(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        exports = [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]
        self._run(
            "new-session", "-d", "-s", self.session, "-x", str(WIDTH), "-y", str(HEIGHT),
            "-c", str(cwd), *exports, *argv,
        )
        self._run("set-option", "-s", "escape-time", "0")

    def keys(self, *keys: str) -> None:
        """tmux key names (``Enter``, ``BTab``, ``C-s``) or single characters."""
        self._run("send-keys", "-t", self.session, *keys)

    def type(self, text: str) -> None:
        self._run("send-keys", "-t", self.session, "-l", text)

    def screen(self) -> str:
        done = self._run("capture-pane", "-p", "-t", self.session, check=False)
        return done.stdout

    def size(self) -> tuple[int, int]:
        done = self._run("display-message", "-p", "-t", self.session,
                         "#{pane_width} #{pane_height}")
        width, height = done.stdout.split()
        return int(width), int(height)

    def running(self) -> bool:
        return self._run("has-session", "-t", self.session, check=False).returncode == 0

    def wait_for(self, *texts: str, timeout: float = 30.0) -> str:
        """Poll the screen until every one of ``texts`` shows at once; fail with the last screen
        if they never do."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if all(text in shown for text in texts):
                return shown
            if time.monotonic() > deadline or not self.running():
                raise AssertionError(f"{texts!r} did not show in {timeout}s; the screen:\n{shown}")
            time.sleep(0.05)

    def wait_for_pattern(self, pattern: str, timeout: float = 30.0) -> str:
        """Poll the screen until ``pattern`` (a regular expression) matches it."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if re.search(pattern, shown):
                return shown
            if time.monotonic() > deadline or not self.running():
                raise AssertionError(
                    f"{pattern!r} did not show in {timeout}s; the screen:\n{shown}")
            time.sleep(0.05)

    def wait_until_gone(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() > deadline:
                raise AssertionError(f"the app did not exit; the screen:\n{self.screen()}")
            time.sleep(0.05)

    def kill(self) -> None:
        self._run("kill-server", check=False)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    tmux = shutil.which("tmux")
    assert tmux is not None, "tmux is not installed: run scripts/setup --test (Debian package tmux)"
    term = Terminal(tmux, f"airseal-test-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield term
    finally:
        term.kill()


def airseal_command() -> str:
    """The installed console script next to this interpreter (``airseal`` with no arguments
    opens the terminal UI)."""
    script = Path(sys.executable).with_name("airseal")
    assert script.exists(), f"{script} is missing: pip install -e . installs it"
    return str(script)


def test_key_action_export_and_media_check_in_tmux(terminal: Terminal, tmp_path: Path) -> None:
    root = tmp_path / "home"
    home, _ = init_home(root)
    db = open_database(home)
    audit.record(home, db, "init", str(home.root), {"schema": SCHEMA_VERSION})
    payload = tmp_path / "agent-installer.sh"
    payload.write_bytes(PAYLOAD)
    stored = intake.add_file(home, db, payload, intake.VendorSignature())  # what Files adds
    db.close()
    usb = tmp_path / "usb"
    usb.mkdir()

    terminal.start(
        [airseal_command()],
        {"AIRSEAL_HOME": str(root), "COSIGN_PASSWORD": PASSWORD, "TERM": "xterm-256color"},
        cwd=tmp_path,
    )
    assert terminal.size() == (WIDTH, HEIGHT)
    terminal.wait_for("Needs attention")
    terminal.wait_for("0 keys")

    # Keys: generate a file key (the password comes from COSIGN_PASSWORD: no dialog)
    terminal.keys("2")
    terminal.wait_for("Signing keys")
    terminal.keys("g")
    terminal.wait_for("Generate a file key")
    terminal.type("tmux-key")
    terminal.wait_for("tmux-key")
    terminal.keys("Enter")
    terminal.wait_for("keys/tmux-key.key")

    # Actions: a new action, signed with that key (the only key and file are preselected)
    terminal.keys("4")
    terminal.wait_for("action(s) shown")
    terminal.keys("n")
    terminal.wait_for("New action")
    terminal.wait_for(f"{payload.name}  ", stored.sha256[:12])
    terminal.type("(Install)Agent")
    terminal.wait_for("(Install)Agent")
    terminal.keys("C-s")
    terminal.wait_for("1 action(s) shown", "(Install)Agent")

    # Export: the media folder typed into the path field (p puts the cursor there)
    terminal.keys("5")
    terminal.wait_for("Actions to export", "(Install)Agent  (linux, execute)", "p Type the media")
    terminal.keys("p")
    # with the cursor in a field the footer hides the letter keys and offers f1 for help
    terminal.wait_for("f1 Help")
    terminal.type(str(usb))  # replaces what is there (focus selects the field's text)
    terminal.wait_for(str(usb)[-40:])  # a long path shows its end in the field
    terminal.wait_for("fits.")
    terminal.keys("Enter")  # Enter in the path field exports
    shown = terminal.wait_for("Media COMPLETE", timeout=60)
    # the result wraps where the (temporary) media path puts it, and notifications may cover
    # part of it until they time out: wait for the words, whatever the lines
    shown = terminal.wait_for_pattern(r"read[\s│▏▕▌▎]+back[\s│▏▕▌▎]+OK")
    assert PASSWORD not in shown

    # Media check: the courier's view of the same folder (Esc first: in the field, 6 is typed)
    terminal.keys("Escape")
    terminal.wait_for("x Export")
    terminal.keys("6")
    terminal.wait_for("Courier's check")
    terminal.wait_for("f1 Help")  # the cursor is in the path field
    terminal.wait_for(str(usb)[:30])  # the media chosen on Export: one path for the session
    terminal.keys("Enter")
    shown = terminal.wait_for("Complete")
    assert "Media COMPLETE" in shown and "1 action(s)" in shown

    terminal.keys("Tab")  # out of the path field: q quits
    terminal.wait_for("c Check media")
    terminal.keys("q")
    terminal.wait_until_gone()

    # what happened, read from the appliance and from the media
    db = open_database(open_home(root))
    key = get_key(db, "tmux-key")
    assert key.backend == "file" and (root / "keys" / "tmux-key.key").is_file()
    (action,) = list_actions(db)
    assert action.name == "(Install)Agent" and action.key_name == "tmux-key"
    assert action.payload_sha256 == stored.sha256
    exports = db.execute("SELECT target, actions, key_name FROM exports").fetchall()
    assert len(exports) == 1 and exports[0][0] == str(usb)
    assert json.loads(exports[0][1]) == [{"id": action.id, "version": 1}]
    assert exports[0][2] == "tmux-key"
    report = check_media(usb)
    assert report.ok and report.actions == 1
    payload_on_media = usb / "airseal" / "actions" / action.id / "payload" / payload.name
    assert payload_on_media.read_bytes() == PAYLOAD
