"""`airseal-agent` as users and services run it: a child process, real argv and exit codes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airseal.agent import exit_codes

from .helpers import ActionBuild, new_distributor, script, sign_action, write_media

COMMANDS = ["init", "identity", "config", "enroll", "import", "status", "history"]


def test_version_is_fast_and_imports_little(agent_cli):
    # speed itself is measured by bench/agent_bench.py; here: what start-up loads
    result = agent_cli("--version")
    assert result.code == 0 and "airseal-agent, version" in result.stdout
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from airseal.agent.cli import main; "
            "heavy = ('cryptography', 'pydantic', 'sqlite_utils', 'sigstore_models', "
            "'appliance', 'media'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "[]"


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_everywhere(agent_cli, command):
    result = agent_cli(*([command] if command else []), "--help")
    assert result.code == 0 and "Usage:" in result.stdout


def test_usage_and_operational_exit_codes(agent_cli, tmp_path):
    assert agent_cli("import", str(tmp_path), "--yes", "--non-interactive").code == exit_codes.USAGE
    assert agent_cli("bogus").code == exit_codes.USAGE
    not_initialised = agent_cli("status")
    assert not_initialised.code == exit_codes.OPERATIONAL
    assert "airseal-agent init" in not_initialised.stderr


def test_the_agents_own_usage_errors_exit_2(agent_cli, agent_state, tmp_path):
    bad_group = agent_cli("config", "--group", "a:b")
    assert bad_group.code == exit_codes.USAGE == 2, bad_group.stderr
    assert "not a group name" in bad_group.stderr and "Traceback" not in bad_group.stderr
    huge_key = tmp_path / "huge.pub"
    huge_key.write_bytes(b"-" * (1024 * 1024))
    oversized = agent_cli("enroll", "--key", str(huge_key))
    assert oversized.code == exit_codes.USAGE, oversized.stderr
    assert "larger than" in oversized.stderr


def test_enroll_import_status_history(agent_cli, agent_state, tmp_path):
    distributor = new_distributor(tmp_path / "keys")
    result = agent_cli(
        "enroll", "--key", str(distributor.pub), "--name", "Site distributor", "--json"
    )
    assert result.code == 0, result.stderr
    enrolled = json.loads(result.stdout)
    assert enrolled["fingerprint"] == distributor.fingerprint and enrolled["approved"] is None
    ok = tmp_path / "ok.sh"
    ok.write_bytes(script("echo all good"))
    bad = tmp_path / "bad.sh"
    bad.write_bytes(script("echo broken >&2; exit 7"))
    mount = write_media(
        tmp_path / "usb",
        distributor,
        [
            sign_action(ActionBuild("ok", ok, mode="execute"), distributor),
            sign_action(ActionBuild("bad", bad, mode="execute"), distributor),
        ],
    )
    # no terminal to ask on: the distributor is shown, then refused
    refused = agent_cli("import", str(mount))
    assert refused.code == exit_codes.REFUSED
    assert "Site distributor" in refused.stderr and distributor.fingerprint[:4] in refused.stderr
    assert "airseal/export.sigstore.json: distributor not approved [approval]" in refused.stderr
    assert agent_cli("import", str(mount), "--non-interactive").code == exit_codes.REFUSED
    imported = agent_cli("import", str(mount), "--yes", "--json")
    assert imported.code == exit_codes.ACTIONS_FAILED, imported.stderr
    report = json.loads(imported.stdout)
    outcomes = {a["id"]: (a["outcome"], a["exitCode"]) for a in report["actions"]}
    assert outcomes == {"ok": ("succeeded", 0), "bad": ("failed", 7)}
    assert report["receipt"] == f"airseal/receipts/{agent_state.agent_id}/export-1.json"
    status = json.loads(agent_cli("status", "--json").stdout)
    assert status["agentId"] == agent_state.agent_id
    (d,) = status["distributors"]
    assert d["approvedHow"] == "yes-flag" and d["lastSequence"] == 1
    assert status["lastImport"]["status"] == "partial"
    history = json.loads(agent_cli("history", "--json").stdout)["items"]
    latest = history[0]
    outputs = {a["id"]: a["output"] for a in latest["actions"]}
    assert outputs == {"ok": "all good\n", "bad": "broken\n"}
    assert [h["status"] for h in history] == ["partial", "refused", "refused"]
    human = agent_cli("history")
    assert "FAILED" in human.stdout and "(exit 7)" in human.stdout
    header = human.stdout.splitlines()[0].split()
    assert header == ["IMPORT", "STARTED", "EXPORT", "SEQ", "STATUS", "MEDIA"]
    assert re.search(r"^#3 +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +\S+ +1 +partial ", human.stdout, re.M)
    # the same media again: nothing runs; the failed action is not tried again (retry policy 0)
    # and still counts as failed
    again = agent_cli("import", str(mount), "--non-interactive")
    assert again.code == exit_codes.ACTIONS_FAILED
    assert "done         (Test)ok v1" in again.stdout and "(again)" in again.stdout
    assert "NOT RETRIED  (Test)bad v1: failed once before, not retried: retry policy 0" in (
        again.stdout
    )


def test_unknown_distributor_exit_code_and_message(agent_cli, agent_state, tmp_path):
    known = new_distributor(tmp_path / "known")
    assert agent_cli("enroll", "--key", str(known.pub)).code == 0
    stranger = new_distributor(tmp_path / "stranger")
    payload = tmp_path / "x.txt"
    payload.write_text("x")
    mount = write_media(
        tmp_path / "usb",
        stranger,
        [sign_action(ActionBuild("x", payload, dest=str(tmp_path / "out/x")), stranger)],
    )
    result = agent_cli("import", str(mount), "--yes")
    assert result.code == exit_codes.REFUSED
    assert "airseal/export.sigstore.json: unknown distributor [trust]" in result.stderr
    assert "hint:" in result.stderr and not (tmp_path / "out").exists()


def test_identity_is_what_the_appliance_enrols(agent_cli, agent_state):
    from airseal.trustroot.keys import fingerprint, load_public_key

    pub = (agent_state.root / "agent.pub").read_bytes()
    shown = json.loads(agent_cli("identity", "--json").stdout)
    assert shown["agentId"] == agent_state.agent_id
    assert shown["publicKeyPem"].encode() == pub
    assert shown["keyFingerprint"] == fingerprint(load_public_key(pub))
    assert shown["publicKeyFile"] == str(agent_state.root / "agent.pub")
    text = agent_cli("identity").stdout
    assert agent_state.agent_id in text and shown["keyFingerprint"] in text
    assert "-----BEGIN PUBLIC KEY-----" in text


def test_config_command(agent_cli, agent_state):
    result = agent_cli(
        "config", "--group", "lab", "--group", "ward", "--reboot-command", "true now"
    )
    assert result.code == 0
    shown = json.loads(agent_cli("config", "--json").stdout)
    assert shown["groups"] == ["lab", "ward"]
    # the environment (set by the test fixture) wins over the configured command
    assert shown["rebootCommand"][0] == "/bin/sh"


def test_a_crash_mid_run_is_reported_on_the_next_start(agent_cli, agent_state, tmp_path):
    distributor = new_distributor(tmp_path / "keys")
    assert agent_cli("enroll", "--key", str(distributor.pub), "--approved").code == 0
    pidfile = tmp_path / "sleeper.pid"
    again = tmp_path / "ran-again"
    sleeper = tmp_path / "sleeper.sh"
    sleeper.write_bytes(
        script(
            f"if [ -e {pidfile} ]; then touch {again}; exit 0; fi\necho $$ > {pidfile}\nsleep 60"
        )
    )
    mount = write_media(
        tmp_path / "usb",
        distributor,
        [sign_action(ActionBuild("sleeper", sleeper, mode="execute", timeout=120), distributor)],
    )
    child = subprocess.Popen(
        [sys.executable, "-m", "airseal.agent", "import", str(mount), "--non-interactive"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert child.poll() is None, "the import ended before the action started"
            assert time.monotonic() < deadline, "the action never started"
            time.sleep(0.05)
        child.kill()  # the agent dies mid-run (as on a crash or power loss)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        script_pid = int(pidfile.read_text())
        with contextlib.suppress(ProcessLookupError):
            os.killpg(script_pid, signal.SIGKILL)  # the action's own process group
    nxt = agent_cli("import", str(mount), "--non-interactive", "--json")
    assert nxt.code == exit_codes.OK, nxt.stderr
    report = json.loads(nxt.stdout)
    (interrupted,) = report["interrupted"]
    assert interrupted["id"] == "sleeper" and interrupted["outcome"] == "started"
    (action,) = report["actions"]
    assert action["outcome"] == "interrupted" and "--retry-interrupted" in action["reason"]
    assert not again.exists()  # not run again by itself
    status = json.loads(agent_cli("status", "--json").stdout)
    assert [r["id"] for r in status["interrupted"]] == ["sleeper"]
    assert status["interrupted"][0]["outcome"] == "interrupted"
    human = agent_cli("status")
    assert "INTERRUPTED: (Test)sleeper v1" in human.stdout
    retried = agent_cli("import", str(mount), "--non-interactive", "--retry-interrupted", "--json")
    assert retried.code == exit_codes.OK, retried.stderr
    assert json.loads(retried.stdout)["actions"][0]["outcome"] == "succeeded"
    assert again.exists()
    assert json.loads(agent_cli("status", "--json").stdout)["interrupted"] == []


def test_state_lock_makes_a_second_import_fail_fast(agent_cli, agent_state, tmp_path):
    from airseal.agent.lock import StateLock

    with StateLock(agent_state.lock_path):
        result = agent_cli("import", str(tmp_path), "--yes")
    assert result.code == exit_codes.OPERATIONAL and "agent busy" in result.stderr
    assert not Path(tmp_path / "airseal").exists()


def test_without_the_key_password_nothing_runs(agent_cli, agent_state, tmp_path):
    distributor = new_distributor(tmp_path / "keys")
    assert agent_cli("enroll", "--key", str(distributor.pub), "--approved").code == 0
    marker = tmp_path / "ran"
    action = tmp_path / "a.sh"
    action.write_bytes(script(f"touch {marker}"))
    mount = write_media(
        tmp_path / "usb",
        distributor,
        [sign_action(ActionBuild("a", action, mode="execute"), distributor)],
    )
    result = agent_cli(
        "import", str(mount), "--non-interactive", unset=("AIRSEAL_AGENT_KEY_PASSWORD",)
    )
    assert result.code == exit_codes.OPERATIONAL
    assert (
        "agent key password [password]" in result.stderr
        and "AIRSEAL_AGENT_KEY_PASSWORD" in result.stderr
    )
    assert not marker.exists()
    history = json.loads(agent_cli("history", "--json").stdout)["items"]
    assert history[0]["status"] == "failed" and history[0]["error"]["check"] == "password"
    # a systemd credential is the unattended way to give it
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "airseal-agent-key").write_text(os.environ["AIRSEAL_AGENT_KEY_PASSWORD"] + "\n")
    result = agent_cli(
        "import",
        str(mount),
        "--non-interactive",
        env={"CREDENTIALS_DIRECTORY": str(credentials)},
        unset=("AIRSEAL_AGENT_KEY_PASSWORD",),
    )
    assert result.code == exit_codes.OK, result.stderr
    assert marker.exists()


def test_dry_run_shows_the_plan(agent_cli, agent_state, tmp_path):
    distributor = new_distributor(tmp_path / "keys")
    assert agent_cli("enroll", "--key", str(distributor.pub)).code == 0
    payload = tmp_path / "x.conf"
    payload.write_text("x")
    mount = write_media(
        tmp_path / "usb",
        distributor,
        [
            sign_action(
                ActionBuild("lin", payload, dest=str(tmp_path / "out/x.conf")), distributor
            ),
            sign_action(ActionBuild("win", payload, os="windows", dest="C:\\x.conf"), distributor),
        ],
    )
    result = agent_cli("import", str(mount), "--dry-run", unset=("AIRSEAL_AGENT_KEY_PASSWORD",))
    assert result.code == exit_codes.OK, result.stderr
    assert "dry-run" in result.stdout and "would run    (Test)lin v1" in result.stdout
    assert "skipped      (Test)win v1: the action is for windows" in result.stdout
    assert "not approved yet" in result.stderr
    assert not (tmp_path / "out").exists() and not (mount / "airseal/receipts").exists()


def test_retry_policy_for_failed_executes(agent_cli, agent_state, tmp_path):
    distributor = new_distributor(tmp_path / "keys")
    assert agent_cli("enroll", "--key", str(distributor.pub), "--approved").code == 0
    runs = tmp_path / "runs"
    bad = tmp_path / "bad.sh"
    bad.write_bytes(script(f"echo run >> {runs}; exit 3"))
    mount = write_media(
        tmp_path / "usb",
        distributor,
        [sign_action(ActionBuild("bad", bad, mode="execute"), distributor)],
    )
    first = agent_cli("import", str(mount))
    assert first.code == exit_codes.ACTIONS_FAILED and runs.read_text() == "run\n"
    held = agent_cli("import", str(mount), "--json")
    assert held.code == exit_codes.ACTIONS_FAILED
    (action,) = json.loads(held.stdout)["actions"]
    assert action["outcome"] == "not-retried" and "retry policy 0" in action["reason"]
    assert runs.read_text() == "run\n"  # not run again
    history = agent_cli("history")
    assert "NOT RETRIED  (Test)bad v1: failed once before, not retried: retry policy 0" in (
        history.stdout
    )
    # the administrator allows one retry: it runs once more, then is held back again
    config = agent_cli("config", "--execute-retries", "1")
    assert config.code == 0 and "execute.retries             1 (" in config.stdout
    assert "execute retries  1 (" in agent_cli("status").stdout
    assert agent_cli("import", str(mount)).code == exit_codes.ACTIONS_FAILED
    assert runs.read_text() == "run\nrun\n"
    last = agent_cli("import", str(mount))
    assert last.code == exit_codes.ACTIONS_FAILED and runs.read_text() == "run\nrun\n"
    assert "failed 2 times before, not retried: retry policy 1" in last.stdout
    assert agent_cli("config", "--execute-retries", "101").code == exit_codes.USAGE


def test_a_wrong_key_password_with_yes_decides_nothing(agent_cli, agent_state, tmp_path):
    """The agent key is unlocked before the yes flag approves anyone or a sequence is accepted:
    a wrong password leaves the journal as it was, and the next import is a first import."""
    distributor = new_distributor(tmp_path / "keys")
    assert agent_cli("enroll", "--key", str(distributor.pub)).code == 0
    payload = tmp_path / "x.conf"
    payload.write_text("x")
    mount = write_media(
        tmp_path / "usb",
        distributor,
        [sign_action(ActionBuild("x", payload, dest=str(tmp_path / "out/x.conf")), distributor)],
    )
    before = json.loads(agent_cli("status", "--json").stdout)["distributors"]
    wrong = agent_cli(
        "import", str(mount), "--yes", "--json", env={"AIRSEAL_AGENT_KEY_PASSWORD": "not it"}
    )
    assert wrong.code == exit_codes.OPERATIONAL, wrong.stderr
    assert "Traceback" not in wrong.stderr
    # the hint names the variable the agent reads, not the appliance's COSIGN_PASSWORD
    assert "AIRSEAL_AGENT_KEY_PASSWORD" in wrong.stderr and "COSIGN_PASSWORD" not in (
        wrong.stderr.replace("AIRSEAL_AGENT_KEY_PASSWORD", "")
    )
    error = json.loads(wrong.stdout)["error"]
    assert (error["code"], error["exitCode"]) == ("operational", exit_codes.OPERATIONAL)
    assert error["title"] == "Wrong password" and "AIRSEAL_AGENT_KEY_PASSWORD" in error["hint"]
    after = json.loads(agent_cli("status", "--json").stdout)["distributors"]
    assert after == before  # not approved by the yes flag, no sequence accepted
    (d,) = after
    assert d["approvedHow"] is None and d["lastSequence"] == 0
    assert not (tmp_path / "out").exists()
    right = agent_cli("import", str(mount), "--yes")
    assert right.code == exit_codes.OK, right.stderr
    assert "(again)" not in right.stdout and (tmp_path / "out/x.conf").read_text() == "x"


def test_a_finished_import_ends_the_program_at_once_and_keeps_a_callers_process(
    agent_cli, agent_state, tmp_path, capsys
):
    # The program skips the interpreter's teardown after an import (agent.cli._end_process):
    # its report is still whole on a pipe, its exit code the import's, its journal committed.
    from airseal.agent.cli import main

    distributor = new_distributor(tmp_path / "keys")
    assert agent_cli("enroll", "--key", str(distributor.pub), "--approved").code == 0
    payload = tmp_path / "p.conf"
    payload.write_bytes(b"x=1\n" * 5000)
    dest = tmp_path / "dest"
    builds = [ActionBuild(f"d{i}", payload, dest=str(dest / f"p{i}.conf")) for i in range(3)]
    mount = write_media(
        tmp_path / "usb", distributor, [sign_action(b, distributor) for b in builds]
    )
    child = agent_cli("import", str(mount), "--non-interactive", "--json")
    assert child.code == exit_codes.OK, child.stderr
    report = json.loads(child.stdout)
    assert [a["outcome"] for a in report["actions"]] == ["succeeded"] * 3
    (recorded,) = json.loads(agent_cli("history", "--json").stdout)["items"]
    assert [a["outcome"] for a in recorded["actions"]] == ["succeeded"] * 3
    assert all((dest / f"p{i}.conf").read_bytes() == payload.read_bytes() for i in range(3))
    # A caller of main() with its own arguments keeps its process (pytest would end here).
    code = main(["import", str(mount), "--non-interactive", "--json"])
    assert code == exit_codes.OK
    assert json.loads(capsys.readouterr().out)["exportId"] == "export-1"
