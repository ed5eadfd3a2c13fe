"""The vendor's signature travels from intake to the endpoint, and is checked again there.

End to end through both real command lines: a key-based (cosign detached signature) and a keyless
(real public-good bundle) vendor file go through `airseal file add`, `action create
--require-vendor-signature`, `export`, and `airseal-agent import`, which shows the vendor identity
at approval and in its JSON report; altered or missing vendor signatures are refused.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

KEYLESS = Path(__file__).parent / "fixtures" / "keyless"
IDENTITY = "aryadeeptade@gmail.com"
ISSUER = "https://github.com/login/oauth"


def _agent(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AIRSEAL_AGENT_HOME": str(home),
        "AIRSEAL_AGENT_KEY_PASSWORD": "agent-test-password",
    }
    return subprocess.run(
        [sys.executable, "-m", "airseal.agent", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _ok(result) -> str:
    code = getattr(result, "code", getattr(result, "returncode", None))
    assert code == 0, result.stderr
    return result.stdout


def _site(airseal, appliance_home: Path, tmp_path: Path) -> dict[str, Path]:
    """A site key, a vendor key, one key-based and one keyless vendor file, and two actions
    that require their vendor signatures."""
    _ok(airseal("key", "generate", "site"))
    _ok(airseal("key", "generate", "vendor"))
    site_pub, vendor_pub = tmp_path / "site.pub", tmp_path / "vendor.pub"
    _ok(airseal("key", "export-public", "site", "--output", str(site_pub)))
    _ok(airseal("key", "export-public", "vendor", "--output", str(vendor_pub)))
    tool = tmp_path / "tool.sh"
    tool.write_text("#!/bin/sh\necho vendor tool\n")
    sig = tmp_path / "tool.sh.sig"
    _ok(airseal("sign-blob", str(tool), "--key", "vendor", "--output-signature", str(sig)))
    _ok(airseal("file", "add", str(tool), "--signature", str(sig), "--key", str(vendor_pub)))
    _ok(
        airseal(
            "file",
            "add",
            str(KEYLESS / "new_bundle.txt"),
            "--bundle",
            str(KEYLESS / "new_bundle.txt.sigstore.json"),
            "--certificate-identity-regexp",
            r"^aryadeeptade@gmail\.com$",
            "--certificate-oidc-issuer",
            ISSUER,
        )
    )
    dest = tmp_path / "endpoint"
    for name, source in (("(Tools)Vendor", tool), ("(Docs)Keyless", KEYLESS / "new_bundle.txt")):
        _ok(
            airseal(
                "action",
                "create",
                "--name",
                name,
                "--file",
                str(source),
                "--os",
                "linux",
                "--mode",
                "download",
                "--dest",
                str(dest / source.name),
                "--key",
                "site",
                "--require-vendor-signature",
            )
        )
    return {"site_pub": site_pub, "vendor_pub": vendor_pub, "dest": dest}


def _export(airseal, media: Path) -> None:
    media.mkdir()
    _ok(airseal("export", "--to", str(media), "--key", "site"))


def _enrolled_agent(tmp_path: Path, site_pub: Path) -> Path:
    home = tmp_path / "agent-home"
    _ok(_agent("init", home=home))
    _ok(_agent("enroll", "--key", str(site_pub), "--name", "Site", home=home))
    return home


def test_vendor_signatures_are_checked_again_and_shown_at_the_endpoint(
    airseal, appliance_home, tmp_path
):
    site = _site(airseal, appliance_home, tmp_path)
    media = tmp_path / "media"
    _export(airseal, media)
    vendor_files = sorted(media.glob("airseal/actions/*/vendor.json"))
    assert len(vendor_files) == 2
    check = json.loads(_ok(airseal("media", "check", str(media), "--json")))
    assert check["status"] == "complete"  # an unlisted file would be flagged
    bundle = json.loads((media / "airseal" / "export.sigstore.json").read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    listed = {s["name"] for s in statement["subject"]}  # so the distributor's signature covers it
    assert {f"actions/{p.parent.name}/vendor.json" for p in vendor_files} <= listed
    assert all(a["vendor"].endswith("/vendor.json") for a in statement["predicate"]["actions"])

    # an action's own bundle is an attestation about its payload, and verifies as one
    (payload,) = media.glob("airseal/actions/*/payload/tool.sh")
    action_bundle = payload.parent.parent / "action.sigstore.json"
    attested = airseal(
        "verify-blob-attestation",
        str(payload),
        "--bundle",
        str(action_bundle),
        "--key",
        str(site["site_pub"]),
        "--type",
        "https://airseal.dev/action/v1",
    )
    assert (attested.code, attested.stdout.strip()) == (0, "Verified OK"), attested.stderr
    wrong_key = airseal(
        "verify-blob-attestation",
        str(payload),
        "--bundle",
        str(action_bundle),
        "--key",
        str(site["vendor_pub"]),
    )
    assert wrong_key.code == 1 and "wrong key" in wrong_key.stderr
    as_blob = airseal(
        "verify-blob", str(payload), "--bundle", str(action_bundle), "--key", str(site["site_pub"])
    )
    assert as_blob.code == 1 and "verify-blob-attestation" in as_blob.stderr

    agent_home = _enrolled_agent(tmp_path, site["site_pub"])
    asked = _agent("import", str(media), home=agent_home)  # no terminal: shown, then refused
    assert asked.returncode == 1
    assert f"vendor signature: {IDENTITY} ({ISSUER}) (verified here)" in asked.stderr
    vendor_fp = json.loads(_ok(airseal("key", "list", "--json")))["items"]
    fingerprint = next(k["fingerprint"] for k in vendor_fp if k["name"] == "vendor")
    assert f"vendor signature: key {fingerprint} (verified here)" in asked.stderr

    done = _agent("import", str(media), "--yes", "--json", home=agent_home)
    report = json.loads(_ok(done))
    signers = sorted(a["vendorSigner"] for a in report["actions"])
    assert signers == sorted([f"{IDENTITY} ({ISSUER})", f"key {fingerprint}"])
    assert (site["dest"] / "new_bundle.txt").read_bytes() == (
        KEYLESS / "new_bundle.txt"
    ).read_bytes()


def test_altered_vendor_signature_is_refused(airseal, appliance_home, tmp_path):
    site = _site(airseal, appliance_home, tmp_path)
    agent_home = _enrolled_agent(tmp_path, site["site_pub"])

    # altered on the media: the export statement no longer matches
    media = tmp_path / "media"
    _export(airseal, media)
    target = next(
        p for p in media.glob("airseal/actions/*/vendor.json") if "keyless" in p.read_text()
    )
    data = json.loads(target.read_text())
    data["identity"] = "mallory@example.com"
    target.write_text(json.dumps(data))
    refused = _agent("import", str(media), "--yes", home=agent_home)
    assert refused.returncode == 1
    assert "vendor.json" in refused.stderr
    assert "size mismatch" in refused.stderr or "digest mismatch" in refused.stderr
    assert not (site["dest"] / "new_bundle.txt").exists()

    # altered before export (a tampered appliance store): signed by the distributor, yet the
    # vendor signature itself does not hold, so the endpoint refuses
    for evidence in (appliance_home / "vendor").glob("*.json"):
        data = json.loads(evidence.read_text())
        if data["method"] == "cosign-signature":
            sig = bytearray(data["signature"].encode())
            sig[10] = ord("A") if sig[10] != ord("A") else ord("B")
            data["signature"] = sig.decode()
            evidence.chmod(0o600)
            evidence.write_text(json.dumps(data))
    media2 = tmp_path / "media2"
    _export(airseal, media2)
    refused = _agent("import", str(media2), "--yes", home=agent_home)
    assert refused.returncode == 1
    assert "vendor signature invalid" in refused.stderr and "vendor.json" in refused.stderr
    assert not (site["dest"] / "tool.sh").exists()


def test_required_vendor_signature_missing_is_refused_and_optional_is_fine(
    airseal, appliance_home, tmp_path
):
    site = _site(airseal, appliance_home, tmp_path)
    agent_home = _enrolled_agent(tmp_path, site["site_pub"])
    for evidence in (appliance_home / "vendor").glob("*.json"):
        evidence.unlink()
    media = tmp_path / "media"
    _export(airseal, media)
    assert not list(media.glob("airseal/actions/*/vendor.json"))
    refused = _agent("import", str(media), "--yes", home=agent_home)
    assert refused.returncode == 1 and "vendor signature missing" in refused.stderr

    # an action that does not require it still imports from media without vendor data
    plain = tmp_path / "plain.txt"
    plain.write_text("no vendor\n")
    _ok(airseal("file", "add", str(plain)))
    for action in json.loads(_ok(airseal("action", "list", "--json")))["items"]:
        _ok(airseal("action", "revoke", action["id"], "--reason", "test"))
    _ok(
        airseal(
            "action",
            "create",
            "--name",
            "(Docs)Plain",
            "--file",
            str(plain),
            "--os",
            "linux",
            "--mode",
            "download",
            "--dest",
            str(site["dest"] / "plain.txt"),
            "--key",
            "site",
        )
    )
    media3 = tmp_path / "media3"
    _export(airseal, media3)
    _ok(_agent("import", str(media3), "--yes", home=agent_home))
    assert (site["dest"] / "plain.txt").read_text() == "no vendor\n"


def test_requiring_a_vendor_signature_for_an_unsigned_file_is_refused_at_create(
    airseal, appliance_home, tmp_path
):
    _ok(airseal("key", "generate", "site"))
    plain = tmp_path / "plain.txt"
    plain.write_text("x\n")
    _ok(airseal("file", "add", str(plain)))
    result = airseal(
        "action",
        "create",
        "--name",
        "(Docs)Plain",
        "--file",
        str(plain),
        "--os",
        "linux",
        "--mode",
        "download",
        "--dest",
        "/tmp/plain.txt",
        "--key",
        "site",
        "--require-vendor-signature",
    )
    assert result.code == 2 and "no vendor signature" in result.stderr
