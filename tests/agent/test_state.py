"""Agent state: the directory, the encrypted key and its password sources, the journal, the lock."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airseal.agent.errors import AgentBusy, KeyPasswordError, StateError, UsageError
from airseal.agent.identity import (
    CREDENTIAL_NAME,
    PASSWORD_ENV,
    key_password,
    load_public_key,
    load_signer,
)
from airseal.agent.journal import SCHEMA_VERSION, Journal
from airseal.agent.lock import StateLock
from airseal.agent.state import init_state, open_state, state_dir, update_config
from airseal.trustroot.cosign_keys import SIGSTORE_LABEL, decrypt_cosign_key
from airseal.trustroot.errors import WrongPassword
from airseal.trustroot.keys import fingerprint

from .helpers import PASSWORD


def test_state_dir_comes_from_the_environment(tmp_path):
    assert state_dir({"AIRSEAL_AGENT_HOME": str(tmp_path)}, "linux") == tmp_path
    assert str(state_dir({}, "linux")) == "/var/lib/airseal-agent"


def test_init_creates_a_private_state_with_an_encrypted_key(tmp_path):
    root = tmp_path / "state"
    asked = []

    def password() -> bytes:
        asked.append(1)
        return b"pw-one"

    state, created = init_state(root, password, env={}, groups=("lab", "lab", "ward-3"))
    assert created and len(asked) == 1
    assert (root.stat().st_mode & 0o777) == 0o700
    assert (state.staging_dir.stat().st_mode & 0o777) == 0o700
    key_file = root / "agent.key"
    assert (key_file.stat().st_mode & 0o777) == 0o600
    pem = key_file.read_bytes()
    assert SIGSTORE_LABEL.encode() in pem and b"PRIVATE KEY-----" in pem
    assert b"BEGIN PRIVATE KEY" not in pem and b"BEGIN EC PRIVATE KEY" not in pem
    key = decrypt_cosign_key(pem, b"pw-one")
    assert fingerprint(key.public_key()) == fingerprint(load_public_key(root))
    assert state.config.groups == ("lab", "ward-3")
    config = json.loads((root / "config.json").read_text())
    assert config["agentId"] == state.agent_id and config["format"] == 1
    # again: nothing new, no password asked
    again, created = init_state(root, password, env={})
    assert not created and again.agent_id == state.agent_id and len(asked) == 1
    with Journal.open(state.journal_path) as journal:
        assert journal.schema_version() == SCHEMA_VERSION
        assert journal.migrate() == SCHEMA_VERSION


def test_no_unencrypted_key_anywhere_in_the_state(agent_state):
    for folder, _dirs, files in os.walk(agent_state.root):
        for name in files:
            data = Path(folder, name).read_bytes()
            assert b"BEGIN PRIVATE KEY" not in data and b"BEGIN EC PRIVATE KEY" not in data


def test_signer_needs_the_right_password(agent_state):
    with pytest.raises(WrongPassword):
        load_signer(agent_state.root, b"wrong")
    signer = load_signer(agent_state.root, PASSWORD.encode())
    assert fingerprint(signer.public_key) == fingerprint(load_public_key(agent_state.root))


def test_password_from_systemd_credential_then_env_then_prompt(tmp_path):
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / CREDENTIAL_NAME).write_bytes(b"from-credential\n")
    env = {"CREDENTIALS_DIRECTORY": str(credentials), PASSWORD_ENV: "from-env"}
    prompts = []

    def prompt(text: str, confirm: bool) -> str:
        prompts.append((text, confirm))
        return "from-prompt"

    assert key_password(env, prompt, purpose="p") == b"from-credential"
    (credentials / CREDENTIAL_NAME).unlink()
    assert key_password(env, prompt, purpose="p") == b"from-env"
    assert key_password({}, prompt, purpose="p", confirm=True) == b"from-prompt"
    assert prompts == [("p", True)]
    with pytest.raises(KeyPasswordError, match="no terminal"):
        key_password({}, None, purpose="p")
    with pytest.raises(KeyPasswordError, match="empty"):
        key_password({PASSWORD_ENV: ""}, None, purpose="p")
    (credentials / CREDENTIAL_NAME).write_bytes(b"\n")
    with pytest.raises(KeyPasswordError, match="empty"):
        key_password(env, None, purpose="p")


def test_open_refuses_missing_or_damaged_state(tmp_path):
    with pytest.raises(StateError, match="not initialised"):
        open_state(tmp_path)
    (tmp_path / "config.json").write_text('{"format": 1, "agentId": "../x"}')
    with pytest.raises(StateError, match="agentId"):
        open_state(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(StateError):
        open_state(tmp_path)


def test_config_groups_and_reboot_command(agent_state):
    state = update_config(agent_state, groups=("a", "b"), reboot_command=("/sbin/reboot",))
    reopened = open_state(agent_state.root, env={})
    assert reopened.config.groups == ("a", "b")
    assert reopened.reboot_command("linux") == ("/sbin/reboot",)
    env_state = open_state(agent_state.root, env={"AIRSEAL_AGENT_REBOOT_COMMAND": "echo 'x y'"})
    assert env_state.reboot_command("linux") == ("echo", "x y")
    state = update_config(state, clear_reboot_command=True)
    assert open_state(agent_state.root, env={}).reboot_command("linux") == ("systemctl", "reboot")
    with pytest.raises(UsageError):
        update_config(state, groups=("bad:group",))


def test_lock_is_exclusive(agent_state):
    first = StateLock(agent_state.lock_path)
    first.acquire()
    try:
        with pytest.raises(AgentBusy):
            StateLock(agent_state.lock_path).acquire()
        assert not StateLock(agent_state.lock_path).try_acquire()
    finally:
        first.release()
    with StateLock(agent_state.lock_path) as again:
        assert again.held


def test_journal_refuses_a_newer_schema(agent_state):
    with Journal.open(agent_state.journal_path) as journal:
        journal.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StateError, match="newer"):
        Journal.open(agent_state.journal_path)
