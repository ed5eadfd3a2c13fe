"""Local distrust in pinned mode: `airseal-agent distrust FINGERPRINT` and `unenroll` remove a
pinned key; its media is refused afterwards with a message naming the distrust, nothing runs;
enrolling the key again trusts it again."""

from __future__ import annotations

import json
from pathlib import Path

from airseal.agent import exit_codes

from .helpers import ActionBuild, new_distributor, script, sign_action, write_media


def test_distrust_and_unenroll_name_the_removed_key(agent_cli, agent_state, tmp_path: Path):  # type: ignore[no-untyped-def]
    distributor = new_distributor(tmp_path / "keys")
    assert agent_cli("enroll", "--key", str(distributor.pub), "--name", "Old distributor",
                     "--approved").code == 0
    marker = tmp_path / "ran"
    payload = tmp_path / "run.sh"
    payload.write_bytes(script(f"touch {marker}"))
    mount = write_media(tmp_path / "usb", distributor,
                        [sign_action(ActionBuild("run", payload, mode="execute"), distributor)])

    unknown = agent_cli("distrust", "0" * 64)
    assert unknown.code == 3 and "no enrolled distributor" in unknown.stderr
    done = agent_cli("distrust", distributor.fingerprint, "--json")
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["name"] == "Old distributor"

    refused = agent_cli("import", str(mount), "--yes")
    assert refused.code == exit_codes.REFUSED
    assert "Old distributor was distrusted on this endpoint" in refused.stderr
    assert not marker.exists()

    # enrolling again is the administrator trusting it again
    assert agent_cli("enroll", "--key", str(distributor.pub), "--name", "Old distributor",
                     "--approved").code == 0
    assert agent_cli("import", str(mount), "--yes").code == exit_codes.OK
    assert marker.exists()
    marker.unlink()

    gone = agent_cli("unenroll", "--json")
    assert gone.code == 0, gone.stderr
    assert json.loads(gone.stdout)["distrusted"] == ["Old distributor"]
    again = agent_cli("import", str(mount), "--yes")
    assert again.code == exit_codes.REFUSED
    assert "distrusted on this endpoint" in again.stderr
    assert not marker.exists()
