"""Every `--json` command of both CLIs, run once against a real site (appliance home, key,
stored file, action, export on a folder, agent that imports it, receipt brought back): the
documents they print, for the JSON contract tests and for writing docs/json.md.

The YubiKey commands (`airseal piv ...`) need a card and are covered by tests/appliance/test_piv.py;
their documents are listed in docs/json.md all the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.realparts.softhsm import SOFTHSM_MODULE, SoftHsm
from tests.trustroot.sigstore_cdn import INSIDE_VALIDITY_ENV, lay_out_cdn, served

PASSWORD = "json tour password"


def _run(module: str, args: list[str], env: dict[str, str]) -> tuple[int, Any, str]:
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    return done.returncode, done.stdout, done.stderr


def identity_of_ops(pub: Path) -> str:
    """The SHA-256 fingerprint `airseal-agent status` shows for a pinned key."""
    from airseal.trustroot.keys import fingerprint, load_public_key

    return fingerprint(load_public_key(pub.read_bytes()))


def tour(base: Path) -> dict[str, Any]:
    """``{"airseal key list": {...}, ...}``: each command's parsed document."""
    env = {
        **os.environ,
        "AIRSEAL_HOME": str(base / "home"),
        "AIRSEAL_AGENT_HOME": str(base / "agent"),
        "COSIGN_PASSWORD": PASSWORD,
        "AIRSEAL_AGENT_KEY_PASSWORD": PASSWORD,
        "AIRSEAL_AGENT_REBOOT_COMMAND": "true",
    }
    docs: dict[str, Any] = {}

    def airseal(name: str, *args: str, module: str = "airseal.appliance.cli",
                expect: int = 0) -> Any:
        code, out, err = _run(module, [*name.split()[1:], *args, "--json"], env)
        assert code == expect, (name, args, code, err)
        docs[name] = json.loads(out)
        return docs[name]

    def agent(name: str, *args: str, expect: int = 0) -> Any:
        return airseal(name, *args, module="airseal.agent", expect=expect)

    payload = base / "hello.sh"
    payload.write_text("#!/bin/sh\necho hello\n")
    (base / "usb").mkdir()
    airseal("airseal init")
    airseal("airseal key generate", "ops")
    airseal("airseal key list")
    airseal("airseal audit verify")
    airseal("airseal config get")
    sig = base / "hello.sig"
    airseal("airseal sign-blob", str(payload), "--key", "ops", "--output-signature", str(sig))
    airseal("airseal verify-blob", str(payload), "--key", "ops", "--signature", str(sig))
    airseal("airseal file add", str(payload))
    airseal("airseal file list")
    action = airseal(
        "airseal action create", "--name", "(Demo)Hello", "--file", str(payload),
        "--os", "linux", "--mode", "download", "--dest", str(base / "out" / "hello.sh"),
        "--key", "ops",
    )
    airseal("airseal action edit", action["id"], "--description", "says hello")
    airseal("airseal action list")
    airseal("airseal action show", action["id"])
    airseal("airseal export", "--to", str(base / "usb"), "--key", "ops")
    airseal("airseal export list")
    airseal(
        "airseal verify-blob-attestation", str(payload), "--bundle",
        str(base / "usb" / "airseal" / "actions" / action["id"] / "action.sigstore.json"),
        "--key", "ops",
    )
    airseal("airseal media check", str(base / "usb"))
    airseal("airseal media repair", str(base / "usb"))
    identity = agent("airseal-agent init")
    agent("airseal-agent identity")
    agent("airseal-agent config")
    pub = base / "ops.pub"
    pub.write_text(_run("airseal.appliance.cli", ["key", "export-public", "ops"], env)[1])
    agent("airseal-agent enroll", "--key", str(pub), "--approved")
    agent("airseal-agent import", str(base / "usb"))
    agent("airseal-agent status")
    agent("airseal-agent history")
    airseal("airseal agents enroll", "--id", identity["agentId"], "--key",
            str(base / "agent" / "agent.pub"))
    airseal("airseal agents list")
    airseal("airseal receipts import", str(base / "usb"))
    airseal("airseal receipts list")
    airseal("airseal evidence export", "--action", action["id"], "--to", str(base / "evidence"))
    airseal("airseal audit list", "--limit", "3")
    airseal("airseal action revoke", action["id"])
    airseal("airseal agents remove", identity["agentId"])
    hsm = SoftHsm(base / "softhsm")
    env["SOFTHSM2_CONF"] = str(hsm.conf)
    hsm.init_token("tour")
    airseal("airseal token list", "--module", SOFTHSM_MODULE)
    # the mirrored Sigstore root: fetched from a loopback server, imported inside its validity
    cdn = lay_out_cdn(base / "cdn")
    env["AIRSEAL_TEST_TRUSTROOT_TIME"] = INSIDE_VALIDITY_ENV
    with served(cdn) as url:
        airseal("airseal trustroot fetch", "--to", str(base / "mirror"), "--url", url)
    airseal("airseal trustroot import", str(base / "mirror"))
    del env["AIRSEAL_TEST_TRUSTROOT_TIME"]
    airseal("airseal trustroot status")
    agent("airseal-agent selfcheck")
    # the embedded transparency log: from its creation on, every signature is logged
    airseal("airseal log init", "--key", "ops", "--origin", "log.tour.example")
    _run("airseal.appliance.cli", ["sign-blob", str(payload), "--key", "ops",
                                   "--bundle", str(base / "logged.sigstore.json")], env)
    airseal("airseal log status")
    airseal("airseal log prove", "--index", "0")
    airseal("airseal log anchor")
    airseal("airseal log verify")
    # the site TUF repository and its distributor policy (file keys: all on hand, signed at once)
    for name in ("r1", "r2", "r3", "online"):
        airseal("airseal key generate", name)
    airseal("airseal site init", "--root-key", "r1", "--root-key", "r2", "--root-key", "r3",
            "--root-threshold", "2", "--targets-key", "r1", "--targets-threshold", "1",
            "--online-key", "online")
    airseal("airseal distributor add", "ops", "--name", "Ops", "--may-sign", "exports,actions")
    airseal("airseal distributor add", "r2", "--name", "Second")
    airseal("airseal distributor set-threshold", "2")
    second = airseal(
        "airseal action create", "--name", "(Demo)Twice", "--file", str(payload),
        "--os", "linux", "--mode", "download", "--dest", str(base / "out" / "twice.sh"),
        "--key", "ops",
    )
    airseal("airseal action approve", second["id"], "--key", "r2")
    airseal("airseal site rotate-root", "--add-key", "ops")
    airseal("airseal site status")
    # the site's Sigstore signing config, a TUF target (set: a signing event; then shown)
    (base / "signing_config.json").write_text(json.dumps({
        "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
        "rekorTlogUrls": [{"url": "https://rekor.tour.example", "majorApiVersion": 2,
                           "validFor": {"start": "2021-01-01T00:00:00Z"}}]}))
    airseal("airseal site signing-config", "--set", str(base / "signing_config.json"))
    airseal("airseal site signing-config")
    airseal("airseal distributor list")
    airseal("airseal distributor retire", "ops")
    airseal("airseal distributor revoke", "r2", "--reason", "leaked")
    airseal("airseal key retire", "r3")
    # the endpoint stops trusting: one pinned key, then everything
    agent("airseal-agent distrust", identity_of_ops(pub))
    agent("airseal-agent unenroll")
    # backup and restore (docs/backup.md): signed by ops, restored on a fresh home
    env["AIRSEAL_BACKUP_PASSWORD"] = PASSWORD
    made = airseal("airseal backup", "--to", str(base / "backup"), "--key", "ops")
    airseal("airseal backup verify", str(base / "backup"))
    airseal("airseal restore", str(base / "backup"), "--home", str(base / "restored"),
            "--expect-key", made["signerFingerprint"], "--sequence-gap", "100")
    del env["AIRSEAL_BACKUP_PASSWORD"]
    # a failure: the error object
    airseal("airseal verify-blob", str(base / "usb" / "airseal" / "export.sigstore.json"),
            "--key", "ops", "--signature", str(sig), expect=1)
    docs["error"] = docs.pop("airseal verify-blob")
    airseal("airseal verify-blob", str(payload), "--key", "ops", "--signature", str(sig))
    return docs


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(tour(Path(tmp)), indent=2, sort_keys=True))
