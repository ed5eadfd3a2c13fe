"""`airseal verify-blob-attestation` and cosign's verify flags, through the real command line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

KEYLESS = Path(__file__).parents[1] / "fixtures" / "keyless"
CONDA = KEYLESS / "conda-package.dsse.sigstore.json"
CONDA_DIGEST = "sha256:59ed81ee7a2485c47588ebdbad14764bf722c93438b43fe953a651747bc62ad7"
GITHUB = "https://token.actions.githubusercontent.com"


def test_keyless_attestation_by_digest_with_regexp_and_type(airseal):
    result = airseal(
        "verify-blob-attestation",
        CONDA_DIGEST,
        "--bundle",
        str(CONDA),
        "--certificate-identity-regexp",
        r"^https://github\.com/wolfv/sigstore-test/",
        "--certificate-oidc-issuer",
        GITHUB,
        "--type",
        "https://slsa.dev/spec/v1.0/provenance",
        "--json",
    )
    assert result.code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["schemaVersion"] == 1 and out["verified"] is True
    assert out["identity"].endswith("/action.yaml@refs/heads/main")
    assert out["subjectName"] == "signed-package-1.2.0-hb0f4dca_0.conda"
    # the root keyless checks use is the mirror's choice (no import here: the packaged one), said
    assert out["trustedRoot"]["origin"] == "packaged"
    assert "trusted root: packaged with sigstore" in result.stderr


def test_keyless_attestation_refusals_name_what_failed(airseal):
    base = ["verify-blob-attestation", CONDA_DIGEST, "--bundle", str(CONDA)]
    wrong_issuer = airseal(
        *base,
        "--certificate-identity-regexp",
        "wolfv",
        "--certificate-oidc-issuer",
        "https://accounts.google.com",
    )
    assert wrong_issuer.code == 1 and "identity mismatch" in wrong_issuer.stderr
    wrong_type = airseal(
        *base,
        "--certificate-identity-regexp",
        "wolfv",
        "--certificate-oidc-issuer-regexp",
        "githubusercontent",
        "--type",
        "spdxjson",
    )
    assert wrong_type.code == 1 and "https://spdx.dev/Document" in wrong_type.stderr
    bad_type = airseal(
        *base,
        "--certificate-identity-regexp",
        "wolfv",
        "--certificate-oidc-issuer",
        GITHUB,
        "--type",
        "sbom",
    )
    assert bad_type.code == 2 and "--type 'sbom'" in bad_type.stderr
    bad_regexp = airseal(
        *base, "--certificate-identity-regexp", "(", "--certificate-oidc-issuer", GITHUB
    )
    assert bad_regexp.code == 2 and "--certificate-identity-regexp" in bad_regexp.stderr
    no_policy = airseal(*base)
    assert no_policy.code == 2 and "--key" in no_policy.stderr


def test_verify_blob_keyless_from_stdin_and_by_regexp(airseal):
    result = airseal(
        "verify-blob",
        "-",
        "--bundle",
        str(KEYLESS / "new_bundle.txt.sigstore.json"),
        "--certificate-identity-regexp",
        r"^aryadeeptade@gmail\.com$",
        "--certificate-oidc-issuer-regexp",
        r"^https://github\.com/login/oauth$",
        stdin=(KEYLESS / "new_bundle.txt").read_text(),
    )
    assert (result.code, result.stdout.strip()) == (0, "Verified OK"), result.stderr
    assert "trusted root: packaged with sigstore" in result.stderr
    changed = airseal(
        "verify-blob",
        "-",
        "--bundle",
        str(KEYLESS / "new_bundle.txt.sigstore.json"),
        "--certificate-identity-regexp",
        "aryadeeptade",
        "--certificate-oidc-issuer",
        "https://github.com/login/oauth",
        stdin=(KEYLESS / "new_bundle.txt").read_text() + "x",
    )
    assert changed.code == 1 and "new_bundle.txt.sigstore.json" in changed.stderr


def test_key_based_blob_by_digest_and_dsse_bundle_pointer(airseal, appliance_home, tmp_path):
    blob = tmp_path / "app.bin"
    blob.write_bytes(b"payload\n" * 100)
    assert airseal("key", "generate", "vendor").code == 0
    bundle = tmp_path / "app.sigstore.json"
    assert airseal("sign-blob", str(blob), "--key", "vendor", "--bundle", str(bundle)).code == 0
    digest = "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest()
    ok = airseal("verify-blob", digest, "--key", "vendor", "--bundle", str(bundle))
    assert (ok.code, ok.stdout.strip()) == (0, "Verified OK"), ok.stderr
    pointer = airseal(
        "verify-blob",
        "sha256:" + "0" * 64,
        "--bundle",
        str(CONDA),
        "--certificate-identity-regexp",
        "wolfv",
        "--certificate-oidc-issuer",
        GITHUB,
    )
    assert pointer.code == 1 and "verify-blob-attestation" in pointer.stderr
    bad_digest = airseal("verify-blob", "sha256:abc", "--key", "vendor", "--bundle", str(bundle))
    assert bad_digest.code == 2 and "sha256:abc" in bad_digest.stderr


def test_key_that_is_neither_file_nor_name_says_so(airseal, appliance_home, tmp_path):
    target = tmp_path / "f"
    target.write_text("x")
    result = airseal("verify-blob", str(target), "--key", "missing.pub", "--signature", str(target))
    assert result.code == 2
    assert "--key 'missing.pub' is neither an existing file nor a key name" in result.stderr


def test_help_has_examples_and_every_new_flag(airseal):
    for command in ("verify-blob", "verify-blob-attestation"):
        text = airseal(command, "--help").stdout
        assert "Examples:" in text
        for flag in ("--certificate-identity-regexp", "--certificate-oidc-issuer-regexp"):
            assert flag in text
    assert "--type" in airseal("verify-blob-attestation", "--help").stdout


def _with_log_entry(bundle: Path) -> None:
    """Give a key-based bundle a (fabricated) Rekor entry, as `cosign sign-blob --key` uploads."""
    import base64

    data = json.loads(bundle.read_text())
    signature = data["messageSignature"]["signature"]
    body = {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {"signature": {"content": signature}},
    }
    data["verificationMaterial"]["tlogEntries"] = [
        {
            "logIndex": "7",
            "logId": {"keyId": base64.b64encode(bytes(32)).decode()},
            "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
            "integratedTime": "1700000000",
            "inclusionProof": {
                "logIndex": "7",
                "rootHash": base64.b64encode(bytes(32)).decode(),
                "treeSize": "8",
                "hashes": [],
                "checkpoint": {"envelope": "log.example\n8\nAA==\n\n"},
            },
            "canonicalizedBody": base64.b64encode(json.dumps(body).encode()).decode(),
        }
    ]
    bundle.write_text(json.dumps(data))


def test_log_entries_are_never_silently_ignored(airseal, appliance_home, tmp_path):
    blob = tmp_path / "app.bin"
    blob.write_bytes(b"payload\n" * 100)
    assert airseal("key", "generate", "vendor").code == 0
    bundle = tmp_path / "app.sigstore.json"
    assert airseal("sign-blob", str(blob), "--key", "vendor", "--bundle", str(bundle)).code == 0
    _with_log_entry(bundle)
    base = ["verify-blob", str(blob), "--key", "vendor", "--bundle", str(bundle)]

    unchecked = airseal(*base)
    assert unchecked.code == 0 and unchecked.stdout.strip() == "Verified OK"
    assert "1 transparency log entry NOT checked" in unchecked.stderr
    assert "--trusted-root" in unchecked.stderr and "--insecure-ignore-tlog" in unchecked.stderr

    ignored = airseal(*base, "--insecure-ignore-tlog")
    assert ignored.code == 0 and "NOT checked (--insecure-ignore-tlog)" in ignored.stderr

    import sigstore

    production = (
        Path(sigstore.__file__).parent
        / "_store"
        / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
        / "trusted_root.json"
    )
    checked = airseal(*base, "--trusted-root", str(production))
    assert checked.code == 1 and "[tlog]" in checked.stderr and "log index 7" in checked.stderr

    assert airseal("config", "set", "verify.require-tlog", "true").code == 0
    required = airseal(*base)
    assert required.code == 1 and "transparency log entry required" in required.stderr
    still = airseal(*base, "--insecure-ignore-tlog")
    assert still.code == 1 and "site policy requires" in still.stderr


def test_key_as_a_pkcs11_uri_on_a_real_softhsm_token(airseal, appliance_home, two_tokens, tmp_path):
    from tests.realparts.softhsm import SOFTHSM_MODULE, USER_PIN

    generated = airseal(
        "key",
        "generate",
        "vendor-hsm",
        "--pkcs11",
        "--module",
        SOFTHSM_MODULE,
        "--token",
        "airseal-a",
        env={"AIRSEAL_PIN": USER_PIN},
        password=None,
    )
    assert generated.code == 0, generated.stderr
    blob = tmp_path / "tool.bin"
    blob.write_bytes(b"tool\n" * 1000)
    bundle = tmp_path / "tool.sigstore.json"
    signed = airseal(
        "sign-blob",
        str(blob),
        "--key",
        "vendor-hsm",
        "--bundle",
        str(bundle),
        env={"AIRSEAL_PIN": USER_PIN},
        password=None,
    )
    assert signed.code == 0, signed.stderr

    uri = f"pkcs11:token=airseal-a;object=vendor-hsm?module-path={SOFTHSM_MODULE}"
    ok = airseal("verify-blob", str(blob), "--key", uri, "--bundle", str(bundle), password=None)
    assert (ok.code, ok.stdout.strip()) == (0, "Verified OK"), ok.stderr
    by_flag = airseal(
        "verify-blob",
        str(blob),
        "--key",
        "pkcs11:token=airseal-a;object=vendor-hsm",
        "--module",
        SOFTHSM_MODULE,
        "--bundle",
        str(bundle),
        password=None,
    )
    assert by_flag.code == 0, by_flag.stderr
    by_env = airseal(
        "verify-blob",
        str(blob),
        "--key",
        "pkcs11:token=airseal-a;object=vendor-hsm",
        "--bundle",
        str(bundle),
        env={"AIRSEAL_PKCS11_MODULE": SOFTHSM_MODULE},
        password=None,
    )
    assert by_env.code == 0, by_env.stderr

    other_token = airseal(
        "verify-blob",
        str(blob),
        "--key",
        f"pkcs11:token=airseal-b;object=vendor-hsm?module-path={SOFTHSM_MODULE}",
        "--bundle",
        str(bundle),
        password=None,
    )
    assert other_token.code == 2 and "no public key" in other_token.stderr
    with_pin = airseal(
        "verify-blob",
        str(blob),
        "--key",
        uri + "&pin-value=1234",
        "--bundle",
        str(bundle),
        password=None,
    )
    assert with_pin.code == 2 and "pin-value" in with_pin.stderr and "1234" not in with_pin.stderr
    no_module = airseal(
        "verify-blob",
        str(blob),
        "--key",
        "pkcs11:token=airseal-a;object=x",
        "--bundle",
        str(bundle),
        password=None,
    )
    assert no_module.code == 2 and "AIRSEAL_PKCS11_MODULE" in no_module.stderr
