"""The site trust commands as scripts use them: `airseal site init|status|root|sign`,
`airseal distributor add|retire|list`, `airseal export`, and `airseal-agent enroll --site-root`
then `import`, each as a real child process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_site_from_the_command_line_to_an_endpoint(
    appliance_home: Path, airseal, agent_cli, agent_state, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    for name in ("K1", "K2", "K3", "K4", "dist-a"):
        assert airseal("key", "generate", name).code == 0
    assert airseal("config", "set", "site.timestamp-days", "7").code == 0
    init = airseal("site", "init", "--root-key", "K1", "--root-key", "K2", "--root-key", "K3",
                   "--root-threshold", "2", "--targets-key", "K1", "--targets-threshold", "1",
                   "--online-key", "K4", "--json")
    assert init.code == 0, init.stderr
    events = json.loads(init.stdout)
    assert events["schemaVersion"] == 1
    assert [e["published"] for e in events["events"]] == [True, True]

    added = airseal("distributor", "add", "dist-a", "--name", "Distributor A",
                    "--may-sign", "exports,actions")
    assert added.code == 0, added.stderr
    listed = json.loads(airseal("distributor", "list", "--json").stdout)
    assert [d["name"] for d in listed["distributors"]] == ["Distributor A"]
    assert listed["distributors"][0]["maySign"] == ["exports", "actions"]

    status = json.loads(airseal("site", "status", "--json").stdout)
    roles = {r["role"]: r for r in status["roles"]}
    assert roles["root"]["threshold"] == 2 and roles["root"]["keys"] == ["K1", "K2", "K3"]
    assert roles["targets"]["version"] == 2
    assert roles["timestamp"]["expiresInDays"] in (6, 7)

    root = tmp_path / "root.json"
    assert airseal("site", "root", "--output", str(root)).code == 0
    enrolled = agent_cli("enroll", "--site-root", str(root), "--json")
    assert enrolled.code == 0, enrolled.stderr
    assert json.loads(enrolled.stdout)["rootVersion"] == 1

    conf = tmp_path / "tool.conf"
    conf.write_bytes(b"setting = 1\n")
    dest = tmp_path / "endpoint" / "tool.conf"
    assert airseal("file", "add", str(conf)).code == 0
    created = airseal("action", "create", "--name", "(Config)Tool", "--os", "linux", "--mode",
                      "download", "--file", str(conf), "--dest", str(dest), "--key", "dist-a",
                      "--json")
    assert created.code == 0, created.stderr
    media = tmp_path / "media"
    media.mkdir()
    exported = airseal("export", "--to", str(media), "--key", "dist-a",
                       "--allow-unknown-capacity")
    assert exported.code == 0, exported.stderr
    assert (media / "airseal/tuf/metadata/timestamp.json").is_file()
    checked = airseal("media", "check", str(media))
    assert checked.code == 0, checked.stdout + checked.stderr
    imported = agent_cli("import", str(media), "--yes", "--json")
    assert imported.code == 0, imported.stderr
    assert dest.read_bytes() == conf.read_bytes()

    # retiring the only distributor: the same media is now refused, naming the retirement
    assert airseal("distributor", "retire", "dist-a").code == 0
    again = tmp_path / "media2"
    again.mkdir()
    assert airseal("export", "--to", str(again), "--key", "dist-a",
                   "--allow-unknown-capacity").code == 0
    dest.unlink()
    refused = agent_cli("import", str(again), "--yes")
    assert refused.code == 1
    assert "retired by the site policy" in refused.stderr
    assert not dest.exists()


def test_a_change_without_enough_keys_waits_for_site_sign(
    appliance_home: Path, airseal  # type: ignore[no-untyped-def]
) -> None:
    for name, password in (("K1", "one"), ("K2", "two"), ("K3", "three")):
        assert airseal("key", "generate", name, password=password).code == 0
    # only K1's password is on hand: root needs 2 of 3
    init = airseal("site", "init", "--root-key", "K1", "--root-key", "K2", "--root-key", "K3",
                   "--root-threshold", "2", "--targets-key", "K1", "--targets-threshold", "1",
                   "--online-key", "K3", password="one", env={"AIRSEAL_TEST": "1"})
    assert init.code == 1, init.stdout + init.stderr
    assert "pending" in init.stdout and "site sign" in init.stderr
    status = json.loads(airseal("site", "status", "--json", password="one").stdout)
    assert status["pending"][0]["role"] == "root"
    assert status["pending"][0]["signatures"] == 1
    # the second holder brings K2: the threshold is met and root takes effect
    signed = airseal("site", "sign", "--json", password="two")
    assert signed.code == 0, signed.stdout + signed.stderr
    assert json.loads(signed.stdout)["events"][0]["published"] is True
    audit = airseal("audit", "verify")
    assert audit.code == 0, audit.stderr


def test_actions_awaiting_approval_from_the_command_line(
    appliance_home: Path, airseal, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    for name in ("K1", "dist-a", "dist-b"):
        assert airseal("key", "generate", name).code == 0
    assert airseal("site", "init", "--root-key", "K1", "--root-threshold", "1", "--targets-key",
                   "K1", "--targets-threshold", "1", "--online-key", "K1").code == 0
    for key in ("dist-a", "dist-b"):
        assert airseal("distributor", "add", key, "--may-sign", "actions").code == 0
    assert airseal("distributor", "set-threshold", "2").code == 0
    conf = tmp_path / "tool.conf"
    conf.write_bytes(b"setting = 1\n")
    assert airseal("file", "add", str(conf)).code == 0
    created = airseal("action", "create", "--name", "(Config)Tool", "--os", "linux", "--mode",
                      "download", "--file", str(conf), "--dest", "/etc/tool.conf", "--key",
                      "dist-a", "--json")
    assert created.code == 0, created.stderr
    action_id = json.loads(created.stdout)["id"]

    listed = airseal("action", "list", "--awaiting-approval", "--json")
    assert listed.code == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert document["schemaVersion"] == 1
    [item] = document["items"]
    assert (item["actionId"], item["approvals"], item["threshold"], item["approvedBy"],
            item["approvers"]) == (action_id, 1, 2, ["dist-a"], ["dist-b"])
    text = airseal("action", "list", "--awaiting-approval")
    assert f"action {action_id} v1 (Config)Tool: 1 of 2 approvals" in text.stdout
    assert f"airseal action approve {action_id} --key NAME" in text.stdout
    mixed = airseal("action", "list", "--awaiting-approval", "--all")
    assert mixed.code == 2 and "--awaiting-approval" in mixed.stderr

    assert airseal("action", "approve", action_id, "--key", "dist-b").code == 0
    after = json.loads(airseal("action", "list", "--awaiting-approval", "--json").stdout)
    assert after["items"] == []
    assert "No action awaits approval." in airseal("action", "list",
                                                   "--awaiting-approval").stdout
