"""Appliance to endpoint and back: the appliance (its own services) creates and exports signed
actions, `airseal-agent` (the real command, in a child process) imports them from a plain folder
and from real FAT32 and exFAT filesystems, and the receipts it writes come back through
`airseal agents enroll` and `airseal receipts import|list`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airseal.appliance import actions, intake
from airseal.appliance.cli import main as airseal_main
from airseal.appliance.db import open_database
from airseal.appliance.export import export_to_media
from airseal.appliance.home import init_home
from airseal.appliance.keystore import generate_file_key, get_key
from airseal.media.check import check_media
from airseal.trustroot.keys import spki_pem
from tests.realparts.exfat import exfat_mount
from tests.realparts.fat32 import fat32_mount

from .helpers import script, tar_payload, zip_payload

pytestmark = pytest.mark.slow


class Prompter:
    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        return "appliance key password"

    def notice(self, message: str) -> None:
        pass


class Site:
    """An appliance home with a file key and four signed actions (one for Windows)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.home, _ = init_home(base / "appliance")
        self.db = open_database(self.home)
        generate_file_key(self.home, self.db, "site", Prompter())
        self.pub = base / "site.pub"
        self.pub.write_bytes(spki_pem(get_key(self.db, "site").public_key))
        self.dest = base / "endpoint" / "opt" / "tool.conf"
        self.markers = base / "markers"
        self.markers.mkdir()
        self.conf = base / "tool.conf"
        self.conf.write_bytes(os.urandom(5000))
        tar = tar_payload(
            base / "installer.tar.gz",
            {"setup/install.sh": script(f'echo "installing $1"; touch {self.markers}/tar')},
        )
        zipped = zip_payload(
            base / "patch.zip", {"apply.sh": script(f"echo patched; touch {self.markers}/zip")}
        )
        self.ids = {
            "download": self.create(
                self.conf, "(Config)Tool", mode="download", dest=str(self.dest), file_mode="0600"
            ),
            "tar": self.create(
                tar, "(Install)Tool", mode="execute", run="setup/install.sh", args=("--quiet",)
            ),
            "zip": self.create(zipped, "(Patch)Tool", mode="execute", run="apply.sh"),
            "windows": self.create(
                self.conf, "(Config)Windows", mode="download", os="windows", dest="C:\\T\\t.conf"
            ),
        }

    def create(self, payload: Path, name: str, **fields: object) -> str:
        intake.add_file(self.home, self.db, payload, intake.VendorSignature())
        spec = actions.ActionSpec(name=name, file=str(payload), **{"os": "linux", **fields})  # type: ignore[arg-type]
        return actions.create_action(self.home, self.db, spec, "site", Prompter()).id

    def export(self, target: Path, **options: object) -> str:
        summary = export_to_media(
            self.home, self.db, target, "site", Prompter(), allow_unknown_capacity=True, **options
        )  # type: ignore[arg-type]
        return summary.export_id


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    built = Site(tmp_path)
    monkeypatch.setenv("AIRSEAL_HOME", str(built.home.root))
    return built


def airseal(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = airseal_main(list(args))
    return code, capsys.readouterr().out


def round_trip(site: Site, agent_cli, agent_state, mount: Path, export_id: str, capsys) -> None:
    enrolled = agent_cli("enroll", "--key", str(site.pub), "--name", "Site distributor")
    assert enrolled.code == 0, enrolled.stderr
    imported = agent_cli("import", str(mount), "--yes", "--json")
    assert imported.code == 0, imported.stderr
    report = json.loads(imported.stdout)
    assert report["exportId"] == export_id and report["status"] == "completed"
    outcomes = {a["id"]: a["outcome"] for a in report["actions"]}
    assert outcomes == {
        site.ids["download"]: "succeeded",
        site.ids["tar"]: "succeeded",
        site.ids["zip"]: "succeeded",
        site.ids["windows"]: "skipped",
    }
    assert site.dest.read_bytes() == site.conf.read_bytes()
    assert site.dest.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in site.markers.iterdir()) == ["tar", "zip"]
    history = json.loads(agent_cli("history", "--json").stdout)["items"]
    outputs = {a["id"]: a["output"] for a in history[0]["actions"]}
    assert outputs[site.ids["tar"]] == "installing --quiet\n"
    assert outputs[site.ids["zip"]] == "patched\n"
    relative = f"airseal/receipts/{agent_state.agent_id}/{export_id}.json"
    assert report["receipt"] == relative and (mount / relative).is_file()
    # the courier's check still passes with a receipt on the stick
    check = check_media(mount)
    assert check.ok and check.receipts == 1

    # back at the appliance, which enrols the agent with the agent.pub an administrator brought
    identity = json.loads(agent_cli("identity", "--json").stdout)
    code, out = airseal(
        capsys, "agents", "enroll", "--id", identity["agentId"],
        "--key", identity["publicKeyFile"], "--json",
    )
    assert code == 0 and json.loads(out)["basis"] == "administrator", out
    code, out = airseal(capsys, "receipts", "import", str(mount), "--json")
    assert code == 0, out
    summary = json.loads(out)
    assert summary["imported"] == 1 and summary["refused"] == 0
    code, out = airseal(capsys, "receipts", "import", str(mount), "--json")
    assert code == 0 and json.loads(out)["unchanged"] == 1
    code, out = airseal(capsys, "receipts", "list", "--json")
    listing = json.loads(out)
    (agent,) = listing["agents"]
    assert agent["id"] == agent_state.agent_id and agent["lastExport"] == export_id
    assert agent["lastStatus"] == "completed" and agent["failedActions"] == 0
    per_action = {(a["id"], a["version"]): a for a in listing["actions"]}
    assert per_action[(site.ids["tar"], 1)]["outcomes"] == {"succeeded": 1}
    assert per_action[(site.ids["tar"], 1)]["name"] == "(Install)Tool"
    assert per_action[(site.ids["windows"], 1)]["outcomes"] == {"skipped": 1}
    code, out = airseal(capsys, "receipts", "list")
    assert code == 0 and agent_state.agent_id in out and "1 succeeded" in out


def test_plain_folder_round_trip(site, agent_cli, agent_state, tmp_path, capsys):
    media = tmp_path / "media"
    media.mkdir()
    export_id = site.export(media)
    round_trip(site, agent_cli, agent_state, media, export_id, capsys)


@pytest.mark.root
def test_fat32_round_trip(site, agent_cli, agent_state, tmp_path, capsys):
    with fat32_mount(tmp_path, 40) as fat:
        export_id = site.export(fat.mount, split_threshold=2048)
        payload = fat.mount / "airseal/actions" / site.ids["download"] / "payload"
        assert len(list(payload.iterdir())) == 3  # 5000 bytes in 2 KiB parts, re-joined on import
        round_trip(site, agent_cli, agent_state, fat.mount, export_id, capsys)


@pytest.mark.root
def test_exfat_round_trip(site, agent_cli, agent_state, tmp_path, capsys):
    with exfat_mount(tmp_path, 64) as ex:
        export_id = site.export(ex.mount)  # the split threshold the filesystem calls for
        payload = ex.mount / "airseal/actions" / site.ids["download"] / "payload"
        assert [p.name for p in payload.iterdir()] == ["tool.conf"]  # exFAT: never split
        round_trip(site, agent_cli, agent_state, ex.mount, export_id, capsys)
