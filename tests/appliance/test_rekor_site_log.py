"""Actions logged in a site's Rekor (`--rekor-url`), end to end: appliance, media, agent.

With its own log on, the appliance's export refuses, before anything is unlocked, sent or
written, an action none of whose entries is in that log (endpoints that trust the site log would
refuse the media), and `export --rekor-url` (the export statement must be the site log's entry
after the media's checkpoint). The fix it names (`action edit`, logged in the site log) exports
and passes the courier's check. Without a log of its own, an action logged only in the Rekor
exports and imports on an endpoint enrolled without a log, its entry carried in the bundle as
the Rekor returned it.

The Rekor is `airseal log serve`'s server over another log and key, on loopback in a thread;
the appliance and the agent run as child processes (real argv and exit codes).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from airseal.trustroot.keys import spki_pem
from airseal.trustroot.signer import PrivateKeySigner
from airseal.trustroot.tlog.entries import log_id, verify_bundle_log_entry
from tests.realparts.served_log import served_log

REKOR_ORIGIN = "rekor.site.example"
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Rekor:
    url: str
    key_file: Path
    signer: PrivateKeySigner
    db: Path

    def size(self) -> int:
        conn = sqlite3.connect(self.db)
        try:
            return int(conn.execute("SELECT size FROM log").fetchone()[0])
        finally:
            conn.close()


@pytest.fixture
def rekor(tmp_path: Path) -> Iterator[Rekor]:
    signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    path = tmp_path / "rekor.db"
    key_file = tmp_path / "rekor.pub"
    key_file.write_bytes(spki_pem(signer.public_key))
    with served_log(path, signer, REKOR_ORIGIN) as url:
        yield Rekor(url, key_file, signer, path)


def agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airseal.agent", *args],
        env={**os.environ, "AIRSEAL_AGENT_KEY_PASSWORD": "agent receipt password"},
        capture_output=True, text=True, timeout=300, check=False,
    )


def create(airseal, tmp_path: Path, name: str, *rekor_args: str) -> str:  # type: ignore[no-untyped-def]
    payload = tmp_path / f"{name}.conf"
    payload.write_bytes(f"{name} = 1\n".encode())
    assert airseal("file", "add", str(payload)).code == 0
    made = airseal("action", "create", "--name", f"(Config){name}", "--file", str(payload),
                   "--os", "linux", "--mode", "download",
                   "--dest", str(tmp_path / "installed" / f"{name}.conf"), "--key", "signer",
                   *rekor_args, "--json")
    assert made.code == 0, made.stderr
    return str(json.loads(made.stdout)["id"])


def sequences_used(home: Path) -> int:
    conn = sqlite3.connect(home / "airseal.db")
    try:
        return int(conn.execute("SELECT COUNT(*) FROM export_sequences").fetchone()[0])
    finally:
        conn.close()


def test_with_the_site_log_on_export_refuses_actions_outside_it_before_writing(
    airseal, appliance_home: Path, tmp_path: Path, rekor: Rekor
) -> None:
    for name in ("signer", "logkey"):
        assert airseal("key", "generate", name).code == 0
    before_log = create(airseal, tmp_path, "old")  # signed before the log existed
    assert airseal("log", "init", "--key", "logkey", "--origin", "log.site.example").code == 0
    via_rekor = ("--rekor-url", rekor.url, "--rekor-key", str(rekor.key_file))
    elsewhere = create(airseal, tmp_path, "new", *via_rekor)
    assert rekor.size() == 1
    media = tmp_path / "media"
    media.mkdir()

    refused = airseal("export", "--to", str(media), "--key", "signer")
    assert refused.code == 3, refused.stderr
    assert f"action {before_log} v1: action not in the site's log [tlog.entry]" in refused.stderr
    assert "signed before the log existed" in refused.stderr
    assert f"`airseal action edit {before_log}`" in refused.stderr

    refused = airseal("export", "--to", str(media), "--key", "signer", "--action", elsewhere)
    assert refused.code == 3, refused.stderr
    assert f"action {elsewhere} v1: action not in the site's log [tlog.logid]" in refused.stderr
    assert f"log id {log_id(rekor.signer.public_key).hex()[:16]}..." in refused.stderr
    assert "not in this appliance's log log.site.example" in refused.stderr
    assert f"hint: sign it again in the site log: `airseal action edit {elsewhere}`" \
        in refused.stderr

    statement_to_rekor = airseal("export", "--to", str(media), "--key", "signer", "--action",
                                 elsewhere, *via_rekor)
    assert statement_to_rekor.code == 2, statement_to_rekor.stderr
    assert "[tlog.export]" in statement_to_rekor.stderr
    assert "hint: export without --rekor-url" in statement_to_rekor.stderr
    # nothing written, no sequence number used up, nothing sent to the Rekor
    assert list(media.iterdir()) == []
    assert sequences_used(appliance_home) == 0
    assert rekor.size() == 1

    # the fix the error names: a new version, logged in the site log, exports (the agent's
    # import of such media: tests/appliance/test_log_cli.py)
    assert airseal("action", "edit", elsewhere).code == 0
    exported = airseal("export", "--to", str(media), "--key", "signer", "--action", elsewhere)
    assert exported.code == 0, exported.stderr
    assert airseal("media", "check", str(media)).code == 0


def test_without_a_site_log_an_action_logged_in_a_rekor_exports_and_imports(
    airseal, appliance_home: Path, tmp_path: Path, rekor: Rekor
) -> None:
    """The endpoint, enrolled without a log, checks no log; the Rekor's entry rides in the
    bundle as returned, so any Sigstore verifier with the Rekor's key can check it."""
    assert airseal("key", "generate", "signer").code == 0
    action = create(airseal, tmp_path, "tool", "--rekor-url", rekor.url, "--rekor-key",
                    str(rekor.key_file))
    media = tmp_path / "media"
    media.mkdir()
    exported = airseal("export", "--to", str(media), "--key", "signer")
    assert exported.code == 0, exported.stderr
    assert not (media / "airseal" / "log").exists()
    assert airseal("media", "check", str(media)).code == 0
    bundle = json.loads((media / "airseal/actions" / action / "action.sigstore.json").read_text())
    entry, _ = verify_bundle_log_entry(bundle, log_key=rekor.signer.public_key,
                                       name=REKOR_ORIGIN, origin=REKOR_ORIGIN)
    assert entry.log_index == 0
    pub = tmp_path / "signer.pub"
    pub.write_text(airseal("key", "export-public", "signer").stdout)
    assert agent("init").returncode == 0
    assert agent("enroll", "--key", str(pub), "--name", "Site").returncode == 0
    imported = agent("import", str(media), "--yes")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert (tmp_path / "installed" / "tool.conf").read_bytes() == b"tool = 1\n"
