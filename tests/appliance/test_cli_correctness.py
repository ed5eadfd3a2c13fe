"""Issue 15's correctness list: every input ends in one clear line naming the flag, never a
traceback or a model's internals; export checks the media before it asks for a password, and
every export that did not finish is in the audit log."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airseal.appliance.service import Appliance
from tests.conftest import PASSWORD
from tests.realparts.fat32 import fat32_mount


@pytest.fixture
def stocked(airseal, appliance_home: Path, tmp_path: Path) -> Path:
    """A key ``ops`` and a stored payload."""
    assert airseal("key", "generate", "ops").code == 0
    payload = tmp_path / "tool.sh"
    payload.write_text("echo hi\n")
    assert airseal("file", "add", str(payload)).code == 0
    return payload


def _create(airseal, payload: Path, *extra: str):
    return airseal(
        "action", "create", "--file", str(payload), "--os", "linux", "--key", "ops", *extra
    )


def _one_clear_line(result) -> str:
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    for internal in ("Value error", "(ValueError)", "String should match", "file_mode",
                     "timeout_seconds", "pattern '"):
        assert internal not in result.stderr, (internal, result.stderr)
    return result.stderr


def test_an_unclosed_quote_in_args_names_the_flag(airseal, stocked):
    result = _create(airseal, stocked, "--name", "(Demo)Hi", "--mode", "execute",
                     "--run", "tool.sh", "--args", '-q "x')
    assert result.code == 2, result.stderr
    assert "'--args'" in _one_clear_line(result) and "no closing quotation" in result.stderr


def test_model_errors_name_the_flag_in_words(airseal, stocked):
    bad_name = _create(airseal, stocked, "--name", "Hello", "--mode", "download",
                       "--dest", "/opt/x")
    assert bad_name.code == 2
    assert '--name: must look like "(Purpose)Name"' in _one_clear_line(bad_name)
    bad_mode = _create(airseal, stocked, "--name", "(Demo)Hi", "--mode", "download",
                       "--dest", "/opt/x", "--file-mode", "999")
    assert bad_mode.code == 2
    assert "--file-mode: must be octal permission bits" in _one_clear_line(bad_mode)


def test_a_missing_key_file_is_called_a_missing_file(airseal, stocked, tmp_path):
    signature = tmp_path / "tool.sig"
    signature.write_text("c2ln")
    for missing in ("missing.pub", str(tmp_path / "nope" / "k.pem")):
        result = airseal("verify-blob", str(stocked), "--key", missing,
                         "--signature", str(signature))
        assert result.code == 2, result.stderr
        text = _one_clear_line(result)
        assert "the file does not exist" in text and "no key named" not in text
    not_a_key = tmp_path / "junk.pub"
    not_a_key.write_text("junk")
    result = airseal("verify-blob", str(stocked), "--key", str(not_a_key),
                     "--signature", str(signature))
    assert result.code == 3 and "not a PEM public key" in _one_clear_line(result)


def test_a_read_only_medium_is_refused_before_the_password_is_asked(
    airseal, stocked, tmp_path
):
    assert _create(airseal, stocked, "--name", "(Demo)Hi", "--mode", "download",
                   "--dest", "/opt/x").code == 0
    with fat32_mount(tmp_path, writable=False) as fat:
        # no password in the environment and no terminal: asking would fail with "no terminal"
        result = airseal("export", "--to", str(fat.mount), "--key", "ops", "--json",
                         password=None)
    assert result.code == 3, result.stderr
    assert "cannot be written" in _one_clear_line(result) and "[writable]" in result.stderr
    assert "no terminal" not in result.stderr and "password" not in result.stderr.lower()
    error = json.loads(result.stdout)["error"]
    assert (error["check"], error["file"]) == ("writable", str(fat.mount))
    audit = json.loads(airseal("audit", "list", "--limit", "1", "--json").stdout)["items"]
    assert audit[0]["action"] == "action.create"  # nothing started, no sequence used


class CancellingPrompter:
    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        raise KeyboardInterrupt

    def notice(self, message: str) -> None:
        pass


def test_a_cancelled_export_is_in_the_audit_log(airseal, stocked, tmp_path, monkeypatch):
    assert _create(airseal, stocked, "--name", "(Demo)Hi", "--mode", "download",
                   "--dest", "/opt/x").code == 0
    media = tmp_path / "media"
    media.mkdir()
    monkeypatch.delenv("COSIGN_PASSWORD", raising=False)
    with Appliance(prompter=CancellingPrompter()) as appliance, pytest.raises(KeyboardInterrupt):
        appliance.export(media, "ops")
    (entry,) = json.loads(airseal("audit", "list", "--limit", "1", "--json").stdout)["items"]
    assert entry["action"] == "export.cancelled"
    assert entry["details"] == {"error": "KeyboardInterrupt", "sequenceUsedUp": False}
    assert airseal("audit", "verify").code == 0


def test_a_failed_export_says_which_sequence_it_used_up(airseal, stocked, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(40 * 1024 * 1024))
    assert airseal("file", "add", str(big)).code == 0
    assert _create(airseal, big, "--name", "(Install)Big", "--mode", "download",
                   "--dest", "/opt/big").code == 0
    with fat32_mount(tmp_path, 34) as fat:
        refused = airseal("export", "--to", str(fat.mount), "--key", "ops")
    assert refused.code == 3 and "space" in refused.stderr.lower()
    (entry,) = json.loads(airseal("audit", "list", "--limit", "1", "--json").stdout)["items"]
    assert entry["action"] == "export.failed"
    details = entry["details"]
    assert (details["sequence"], details["sequenceUsedUp"]) == (1, True)
    assert "space" in details["message"].lower() and PASSWORD not in json.dumps(entry)


def test_export_and_courier_check_count_the_same_files(airseal, stocked, tmp_path):
    assert _create(airseal, stocked, "--name", "(Demo)Hi", "--mode", "download",
                   "--dest", "/opt/x").code == 0
    media = tmp_path / "media"
    media.mkdir()
    exported = airseal("export", "--to", str(media), "--key", "ops", "--json")
    assert exported.code == 0, exported.stderr
    summary = json.loads(exported.stdout)
    check = json.loads(airseal("media", "check", str(media), "--json").stdout)
    assert (summary["files"], summary["listedBytes"]) == (
        check["filesChecked"], check["bytesChecked"]
    )
    assert summary["bytesWritten"] == summary["listedBytes"] + summary["statementBytes"]
    human = airseal("export", "--to", str(media), "--key", "ops").stdout
    checked = airseal("media", "check", str(media)).stdout
    listed = f"{check['filesChecked']} listed files, {check['bytesChecked']} bytes"
    assert listed in human and listed in checked
