"""`-v` diagnostics (stderr, never secrets), `airseal export list`, header rows on list
commands, and one time format in what people read."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import PASSWORD

ONE_FORMAT = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\b")
OTHER_FORMATS = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?(\.\d+|\+00:00| UTC)")


def _site(airseal, tmp_path: Path) -> Path:
    assert airseal("key", "generate", "ops").code == 0
    payload = tmp_path / "hello.sh"
    payload.write_text("echo hello\n")
    assert airseal("file", "add", str(payload)).code == 0
    created = airseal("action", "create", "--name", "(Demo)Hello", "--file", str(payload),
                      "--os", "linux", "--mode", "download", "--dest", "/opt/hello.sh",
                      "--key", "ops")
    assert created.code == 0, created.stderr
    media = tmp_path / "media"
    media.mkdir()
    return media


def test_verbose_explains_on_stderr_and_never_shows_the_password(
    airseal, appliance_home, tmp_path
):
    media = _site(airseal, tmp_path)
    quiet = airseal("export", "--to", str(media), "--key", "ops")
    loud = airseal("-v", "export", "--to", str(media), "--key", "ops")
    assert quiet.code == loud.code == 0
    assert "INFO" not in quiet.stderr
    assert "appliance home" in loud.stderr and "sequence 2 reserved" in loud.stderr
    assert loud.stdout.splitlines()[0].startswith("Exported 1 action(s)")
    assert PASSWORD not in loud.stdout + loud.stderr
    debug = airseal("-vv", "audit", "verify")
    assert debug.code == 0 and PASSWORD not in debug.stderr


def test_the_agent_takes_verbose_too():
    done = subprocess.run(
        [sys.executable, "-m", "airseal.agent", "-v", "status"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 3  # not initialised: an operational error, explained
    assert "airseal-agent init" in done.stderr and "airseal-agent exits 3" in done.stderr


def test_export_list_shows_written_and_failed_exports(airseal, appliance_home, tmp_path):
    media = _site(airseal, tmp_path)
    assert airseal("export", "list").stdout.startswith("No exports yet")
    assert airseal("export", "--to", str(media), "--key", "ops").code == 0
    wrong = airseal("export", "--to", str(media), "--key", "ops", password="not the password")
    assert wrong.code == 3
    listing = airseal("export", "list").stdout.splitlines()
    assert listing[0].split() == ["SEQ", "EXPORT", "CREATED", "ACTIONS", "RESULT", "DESTINATION"]
    assert "failed: " in listing[1] and "wrong password" in listing[1].lower()
    assert listing[2].split()[0] == "1" and "written" in listing[2]
    assert ONE_FORMAT.search(listing[2])


def test_list_commands_print_header_rows_and_one_time_format(airseal, appliance_home, tmp_path):
    _site(airseal, tmp_path)
    headers = {
        ("key", "list"): ["NAME", "BACKEND", "ALGORITHM", "FINGERPRINT"],
        ("file", "list"): ["SHA256", "BYTES", "INTAKE", "ADDED", "NAME"],
        ("action", "list"): ["ID", "VERSION", "OS", "MODE", "VALID", "UNTIL", "STATE", "NAME"],
        ("audit", "list"): ["SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT", "DETAILS"],
    }
    for command, header in headers.items():
        result = airseal(*command)
        assert result.code == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].split() == header, (command, lines[0])
        assert len(lines) >= 2, command
        body = "\n".join(lines[1:])
        assert not OTHER_FORMATS.search(body), (command, body)
    audit = airseal("audit", "list").stdout
    assert ONE_FORMAT.search(audit)
