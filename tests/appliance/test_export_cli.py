"""`airseal export` and `airseal media check` end to end: plain folders, real FAT32 and exFAT
media."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.realparts.exfat import exfat_mount
from tests.realparts.fat32 import fat32_mount


@pytest.fixture
def stocked(airseal, appliance_home, tmp_path):
    """An appliance with a key, a stored payload and one download action."""
    assert airseal("key", "generate", "ops").code == 0
    payload = tmp_path / "tool.bin"
    payload.write_bytes(os.urandom(300_000))
    assert airseal("file", "add", str(payload)).code == 0
    created = airseal("action", "create", "--name", "(Install)Tool", "--file", str(payload),
                      "--os", "linux", "--mode", "download", "--dest", "/opt/tool/tool.bin",
                      "--key", "ops", "--json")
    assert created.code == 0, created.stderr
    return payload, json.loads(created.stdout)["id"]


def _export(airseal, target: Path, *extra: str):
    result = airseal("export", "--to", str(target), "--key", "ops", "--json", *extra)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_export_then_check_on_a_plain_folder(airseal, stocked, tmp_path):
    payload, action_id = stocked
    media = tmp_path / "media"
    media.mkdir()
    summary = _export(airseal, media)
    assert summary["actions"] == [{"id": action_id, "version": 1}]
    assert summary["readBackOk"] is True and summary["signatures"] == 1
    copied = media / "airseal" / "actions" / action_id / "payload" / "tool.bin"
    assert copied.read_bytes() == payload.read_bytes()
    check = airseal("media", "check", str(media), "--json")
    report = json.loads(check.stdout)
    assert (check.code, report["status"], report["exportId"]) == (0, "complete",
                                                                  summary["exportId"])


def test_sequence_numbers_only_grow_per_key(airseal, stocked, tmp_path):
    sequences = []
    for n in range(3):
        media = tmp_path / f"m{n}"
        media.mkdir()
        sequences.append(_export(airseal, media)["sequence"])
    assert sequences == [1, 2, 3]
    assert airseal("key", "generate", "other").code == 0
    media = tmp_path / "m-other"
    media.mkdir()
    result = airseal("export", "--to", str(media), "--key", "other", "--json")
    assert json.loads(result.stdout)["sequence"] == 1


def test_export_on_real_fat32_with_a_split_payload_rejoined_on_check(airseal, stocked, tmp_path):
    payload, action_id = stocked
    with fat32_mount(tmp_path, 40) as fat:
        summary = _export(airseal, fat.mount, "--split-threshold", "100000")  # 300,000 bytes
        folder = fat.mount / "airseal" / "actions" / action_id / "payload"
        parts = sorted(p.name for p in folder.iterdir())
        assert parts == ["tool.bin.part000", "tool.bin.part001", "tool.bin.part002"]
        joined = b"".join((folder / p).read_bytes() for p in parts)
        assert hashlib.sha256(joined).digest() == hashlib.sha256(payload.read_bytes()).digest()
        check = airseal("media", "check", str(fat.mount), "--json")
        assert check.code == 0, check.stdout
        assert json.loads(check.stdout)["exportId"] == summary["exportId"]
        # a damaged part is found and named
        with open(folder / "tool.bin.part002", "r+b") as handle:
            handle.seek(50)
            byte = handle.read(1)
            handle.seek(50)
            handle.write(bytes([byte[0] ^ 0xFF]))
        damaged = airseal("media", "check", str(fat.mount))
        assert damaged.code == 1 and "tool.bin.part002" in damaged.stderr


def test_export_on_real_exfat_writes_payloads_whole_and_checks(airseal, stocked, tmp_path):
    payload, action_id = stocked
    with exfat_mount(tmp_path, 64) as ex:
        summary = _export(airseal, ex.mount)
        folder = ex.mount / "airseal" / "actions" / action_id / "payload"
        assert [p.name for p in folder.iterdir()] == ["tool.bin"]
        assert (folder / "tool.bin").read_bytes() == payload.read_bytes()
        check = airseal("media", "check", str(ex.mount), "--json")
        assert check.code == 0, check.stdout
        assert json.loads(check.stdout)["exportId"] == summary["exportId"]
        with open(folder / "tool.bin", "r+b") as handle:
            handle.seek(50)
            byte = handle.read(1)
            handle.seek(50)
            handle.write(bytes([byte[0] ^ 0xFF]))
        damaged = airseal("media", "check", str(ex.mount))
        assert damaged.code == 1 and "tool.bin" in damaged.stderr


def test_export_recorded_in_database_and_audit(airseal, stocked, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    summary = _export(airseal, media)
    entries = json.loads(airseal("audit", "list", "--json").stdout)["items"]
    assert entries[0]["action"] == "export"
    assert entries[0]["details"]["exportId"] == summary["exportId"]
    assert airseal("audit", "verify").code == 0


def test_nothing_to_export_is_a_clear_error(airseal, appliance_home, tmp_path):
    assert airseal("key", "generate", "ops").code == 0
    result = airseal("export", "--to", str(tmp_path), "--key", "ops")
    assert result.code == 2 and "no current actions" in result.stderr


def test_revoked_actions_are_not_exported(airseal, stocked, tmp_path):
    _, action_id = stocked
    assert airseal("action", "revoke", action_id).code == 0
    result = airseal("export", "--to", str(tmp_path), "--key", "ops", "--action", action_id)
    assert result.code == 2 and "revoked" in result.stderr


def test_a_full_stick_fails_before_writing_and_keeps_the_old_export(airseal, stocked, tmp_path):
    _payload, _ = stocked
    with fat32_mount(tmp_path, 34) as fat:
        first = _export(airseal, fat.mount)
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(40 * 1024 * 1024))
        assert airseal("file", "add", str(big)).code == 0
        created = airseal("action", "create", "--name", "(Install)Big", "--file", str(big),
                          "--os", "linux", "--mode", "download", "--dest", "/opt/big",
                          "--key", "ops")
        assert created.code == 0
        refused = airseal("export", "--to", str(fat.mount), "--key", "ops")
        assert refused.code == 3 and "space" in refused.stderr.lower()
        check = json.loads(airseal("media", "check", str(fat.mount), "--json").stdout)
        assert (check["status"], check["exportId"]) == ("complete", first["exportId"])


def test_repair_data_setting_and_a_missing_par2(airseal, stocked, tmp_path):
    """Default 10%: repair data beside airseal/; no par2 on PATH: refused before anything is
    written, naming par2 and the setting; 0 turns it off."""
    media = tmp_path / "media"
    media.mkdir()
    summary = _export(airseal, media)
    assert summary["repairBytes"] > 30_000 and (media / "airseal-repair").is_dir()
    repaired = airseal("media", "repair", str(media), "--json")
    assert (repaired.code, json.loads(repaired.stdout)["outcome"]) == (0, "intact")

    bare = tmp_path / "bare"
    bare.mkdir()
    refused = airseal("export", "--to", str(bare), "--key", "ops", env={"PATH": "/nonexistent"})
    assert refused.code == 3 and "par2" in refused.stderr and "parity-percent 0" in refused.stderr
    assert os.listdir(bare) == []
    assert airseal("config", "set", "export.parity-percent", "101").code == 2
    assert airseal("config", "set", "export.parity-percent", "0").code == 0
    assert _export(airseal, bare)["repairBytes"] == 0 and os.listdir(bare) == ["airseal"]
