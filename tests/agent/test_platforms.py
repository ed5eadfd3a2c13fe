"""Linux, macOS and Windows behaviour, as pure functions (no Windows or Mac needed)."""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath

import pytest

from airseal.agent import platforms
from airseal.agent.platforms import (
    command_line,
    current_os,
    default_state_dir,
    destination_problem,
    exit_code_succeeded,
    owner_problem,
    reboot_requested,
    run_as_problem,
    run_environment,
    split_destination,
)


def test_os_names_from_sys_platform():
    assert current_os("linux") == "linux"
    assert current_os("darwin") == "macos"
    assert current_os("win32") == "windows"
    assert current_os("freebsd14") == "linux"


@pytest.mark.parametrize(
    ("os_name", "env", "expected"),
    [
        ("linux", {}, PurePosixPath("/var/lib/airseal-agent")),
        ("macos", {}, PurePosixPath("/Library/Application Support/Airseal Agent")),
        ("windows", {"ProgramData": "D:\\PD"}, PureWindowsPath("D:\\PD\\Airseal\\Agent")),
        ("windows", {"PROGRAMDATA": "E:\\Data"}, PureWindowsPath("E:\\Data\\Airseal\\Agent")),
        ("windows", {}, PureWindowsPath("C:\\ProgramData\\Airseal\\Agent")),
        ("linux", {"AIRSEAL_AGENT_HOME": "/srv/agent"}, PurePosixPath("/srv/agent")),
        ("macos", {"AIRSEAL_AGENT_HOME": "/opt/a"}, PurePosixPath("/opt/a")),
        ("windows", {"AIRSEAL_AGENT_HOME": "F:\\a"}, PureWindowsPath("F:\\a")),
    ],
)
def test_state_directory_per_os(os_name, env, expected):
    found = default_state_dir(os_name, env)
    assert found == expected and type(found) is type(expected)


@pytest.mark.parametrize(
    ("dest", "os_name", "problem"),
    [
        ("/opt/app/file.bin", "linux", None),
        ("/Applications/Tool.app/x", "macos", None),
        ("C:\\Program Files\\App\\app.exe", "windows", None),
        ("opt/app/file", "linux", "absolute"),
        ("/opt/../etc/passwd", "linux", "'..'"),
        ("/opt/./x", "linux", "'.'"),
        ("/opt//x", "linux", "empty"),
        ("/opt/app/", "linux", "folder"),
        ("/", "linux", "folder"),
        ("/opt/a\x00b", "linux", "NUL"),
        ("", "linux", "empty"),
        ("C:\\Windows\\..\\x", "windows", "'..'"),
        ("\\\\server\\share\\x", "windows", "UNC"),
        ("\\\\?\\C:\\x", "windows", "UNC"),
        ("C:/x/y", "windows", "'/'"),
        ("x\\y", "windows", "absolute"),
        ("C:\\dir\\file.txt:stream", "windows", "alternate data stream"),
        ("C:\\dir\\CON.txt", "windows", "reserved"),
        ("C:\\dir\\file.", "windows", "dot"),
        ("C:\\dir\\a|b", "windows", "characters"),
        ("/opt/x", "windows", "'/'"),
    ],
)
def test_destinations(dest, os_name, problem):
    found = destination_problem(dest, os_name)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_split_destination_per_os():
    assert split_destination("/opt/app/x.bin", "linux") == ("/opt/app", "x.bin")
    assert split_destination("C:\\App\\x.exe", "windows") == ("C:\\App", "x.exe")


def test_how_payloads_start():
    assert command_line("linux", "/s/run.sh", ["-q"]) == ["/bin/sh", "/s/run.sh", "-q"]
    assert command_line("linux", "/s/tool", ["a"]) == ["/s/tool", "a"]
    assert command_line("macos", "/s/App.pkg", []) == [
        "/usr/sbin/installer",
        "-pkg",
        "/s/App.pkg",
        "-target",
        "/",
    ]
    assert command_line("windows", "C:\\s\\a.msi", ["X=1"])[:5] == [
        "msiexec.exe",
        "/i",
        "C:\\s\\a.msi",
        "/qn",
        "/norestart",
    ]
    assert command_line("windows", "C:\\s\\a.ps1", [])[0] == "powershell.exe"
    assert command_line("windows", "C:\\s\\a.CMD", ["x"]) == [
        "cmd.exe",
        "/d",
        "/c",
        "C:\\s\\a.CMD",
        "x",
    ]
    assert command_line("windows", "C:\\s\\setup.exe", ["/S"]) == ["C:\\s\\setup.exe", "/S"]


def test_ram_staging_only_where_there_is_tmpfs():
    assert platforms.memory_staging_candidates("linux") == ("/dev/shm",)
    assert platforms.memory_staging_candidates("macos") == ()
    assert platforms.memory_staging_candidates("windows") == ()


def test_exit_codes_and_reboot_requests():
    assert exit_code_succeeded("linux", 0) and not exit_code_succeeded("linux", 1)
    assert not exit_code_succeeded("linux", 3010 % 256)
    assert exit_code_succeeded("windows", 3010) and exit_code_succeeded("windows", 1641)
    assert reboot_requested("windows", 3010, False)
    assert not reboot_requested("linux", 0, False) and reboot_requested("linux", 0, True)
    assert platforms.default_reboot_command("linux") == ("systemctl", "reboot")
    assert platforms.default_reboot_command("windows")[0] == "shutdown.exe"
    assert platforms.default_reboot_command("macos")[0] == "/sbin/shutdown"


def test_run_as_rules():
    assert run_as_problem("linux", None, privileged=False, current_user="bob") is None
    assert run_as_problem("linux", "bob", privileged=False, current_user="bob") is None
    assert "needs root" in run_as_problem("linux", "alice", privileged=False, current_user="bob")
    assert run_as_problem("macos", "alice", privileged=True, current_user="root") is None
    assert "Windows" in run_as_problem("windows", "alice", privileged=True, current_user="SYSTEM")
    assert owner_problem("linux", "bob", privileged=True) is None
    assert "root" in owner_problem("linux", "bob", privileged=False)
    assert "Windows" in owner_problem("windows", "bob", privileged=True)
    assert owner_problem("windows", None, privileged=False) is None


def test_actions_never_see_the_agent_secrets():
    inherited = {
        "AIRSEAL_AGENT_KEY_PASSWORD": "secret",
        "CREDENTIALS_DIRECTORY": "/run/credentials/x",
        "PATH": "/evil",
        "SystemRoot": "C:\\Windows",
        "Path": "C:\\Windows\\system32",
    }
    env = run_environment(
        "linux", inherited, home="/root", user="root", extra={"AIRSEAL_ACTION_ID": "a1"}
    )
    assert "AIRSEAL_AGENT_KEY_PASSWORD" not in env and "CREDENTIALS_DIRECTORY" not in env
    assert env["PATH"].startswith("/usr/local/sbin") and env["AIRSEAL_ACTION_ID"] == "a1"
    assert env["HOME"] == "/root" and env["USER"] == "root"
    windows = run_environment("windows", inherited, home=None, user=None, extra={})
    assert windows == {"SystemRoot": "C:\\Windows", "PATH": "/evil"} or windows == {
        "SystemRoot": "C:\\Windows",
        "PATH": "C:\\Windows\\system32",
    }
    assert "AIRSEAL_AGENT_KEY_PASSWORD" not in windows
