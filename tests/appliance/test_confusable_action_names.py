"""Issue 13, item 8 on the appliance: where actions are listed, names that could deceive (a
right-to-left override, a look-alike letter) are shown escaped, with a warning."""

from __future__ import annotations

import json

SPOOFED = "(Install)p\u0430ypal\u202etxt.sh"  # a Cyrillic "а", then a right-to-left override
SHOWN = "(Install)p\\u0430ypal\\u202etxt.sh"


def test_the_cli_lists_deceptive_action_names_escaped(airseal, appliance_home, tmp_path):
    assert airseal("key", "generate", "ops").code == 0
    payload = tmp_path / "tool.bin"
    payload.write_bytes(b"tool")
    assert airseal("file", "add", str(payload)).code == 0
    created = airseal("action", "create", "--name", SPOOFED, "--file", str(payload),
                      "--os", "linux", "--mode", "download", "--dest", "/opt/tool/tool.bin",
                      "--key", "ops")
    assert created.code == 0, created.stderr
    assert f"{SHOWN} [WARNING: name contains bidirectional" in created.stdout

    listed = airseal("action", "list")

    assert listed.code == 0, listed.stderr
    assert "\u202e" not in listed.stdout and "\u0430" not in listed.stdout
    assert f"{SHOWN} [WARNING: name contains" in listed.stdout
    assert "imitate other scripts" in listed.stdout
    # machine-readable output keeps the signed name exactly (JSON escapes it by itself)
    (record,) = json.loads(airseal("action", "list", "--json").stdout)["items"]
    assert record["name"] == SPOOFED
