"""Token keys through the whole CLI: `key generate --pkcs11`, sign-blob, actions and exports.

Real SoftHSM2 tokens (tests/realparts/softhsm.py). The rest of Airseal must not care which
backend signed: the same commands, the same outputs, verified by our verifier and sigstore-js.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.interop.sigstore_js import verify_with_sigstore_js
from tests.realparts.softhsm import SOFTHSM_MODULE, USER_PIN


@pytest.fixture
def token_env(two_tokens):
    return {"AIRSEAL_PIN": USER_PIN}


def test_token_list_shows_both_tokens(airseal, two_tokens):
    result = airseal("token", "list", "--module", SOFTHSM_MODULE, "--json")
    assert result.code == 0, result.stderr
    tokens = json.loads(result.stdout)["items"]
    labels = sorted(t["label"] for t in tokens if t["initialised"])  # SoftHSM adds a free slot
    assert labels == ["airseal-a", "airseal-b"]


def test_token_key_signs_blobs_actions_and_exports(airseal, appliance_home, token_env, tmp_path):
    generated = airseal("key", "generate", "hsm", "--pkcs11", "--module", SOFTHSM_MODULE,
                        "--token", "airseal-b", "--json", env=token_env, password=None)
    assert generated.code == 0, generated.stderr
    assert json.loads(generated.stdout)["backend"] == "pkcs11"
    assert not (appliance_home / "keys" / "hsm.key").exists()

    blob = tmp_path / "tool.bin"
    blob.write_bytes(os.urandom(100_000))
    bundle, pub = tmp_path / "tool.sigstore.json", tmp_path / "hsm.pub"
    signed = airseal("sign-blob", str(blob), "--key", "hsm", "--bundle", str(bundle),
                     env=token_env, password=None)
    assert signed.code == 0, signed.stderr
    pub.write_text(airseal("key", "export-public", "hsm").stdout)
    assert airseal("verify-blob", str(blob), "--key", str(pub), "--bundle", str(bundle)).code == 0
    assert verify_with_sigstore_js(bundle, pub, blob).ok

    assert airseal("file", "add", str(blob)).code == 0
    for n in range(3):
        created = airseal("action", "create", "--name", f"(Install)Tool{n}", "--file", str(blob),
                          "--os", "linux", "--mode", "download", "--dest", f"/opt/t{n}",
                          "--key", "hsm", env=token_env, password=None)
        assert created.code == 0, created.stderr
    media = tmp_path / "media"
    media.mkdir()
    exported = airseal("export", "--to", str(media), "--key", "hsm", "--json", env=token_env,
                       password=None)
    assert exported.code == 0, exported.stderr
    assert json.loads(exported.stdout)["signatures"] == 1  # one per export, never one per file
    assert airseal("media", "check", str(media)).code == 0


def test_wrong_pin_is_a_clear_operational_error(airseal, appliance_home, two_tokens):
    result = airseal("key", "generate", "hsm", "--pkcs11", "--module", SOFTHSM_MODULE,
                     "--token", "airseal-a", env={"AIRSEAL_PIN": "wrong-pin-123"}, password=None)
    assert result.code == 3 and "pin" in result.stderr.lower()
    assert "wrong-pin-123" not in result.stderr


def test_missing_token_lists_what_is_there(airseal, appliance_home, token_env):
    result = airseal("key", "generate", "hsm", "--pkcs11", "--module", SOFTHSM_MODULE,
                     "--token", "no-such-token", env=token_env, password=None)
    assert result.code == 3
    assert "airseal-a" in result.stderr and "airseal-b" in result.stderr
