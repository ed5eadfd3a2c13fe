"""`airseal` loads only what the named command needs (subcommands are imported lazily)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("pkcs11", "yubikit", "ykman", "sigstore", "sigstore_models", "textual", "tui")

PROBE = """
import sys
from airseal.appliance.cli import main
code = main({argv!r})
heavy = {heavy!r}
print(sorted({{m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}}))
sys.exit(code)
"""


def _loaded(argv: list[str]) -> list[str]:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv, heavy=HEAVY)],
        capture_output=True, text=True, check=False,
    )
    return eval(probe.stdout.strip().splitlines()[-1])  # noqa: S307  (our own probe's list)


@pytest.mark.parametrize(
    ("argv", "allowed"),
    [
        (["--version"], []),
        (["audit", "verify"], []),
        (["key", "list"], []),
        (["media", "check", "."], ["sigstore_models"]),  # it parses the statement bundle
    ],
)
def test_commands_load_only_what_they_use(argv, allowed, appliance_home):
    assert _loaded(argv) == allowed


def test_a_detached_signature_verifies_without_the_bundle_or_signing_stacks(tmp_path):
    """`verify-blob --key K.pub --signature S` is the openssl-like path: it must not pay for the
    bundle models, the key store's SQLite, rich or the TUI (issue 15: start under 0.2 s)."""
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    blob, pub, sig = tmp_path / "blob.bin", tmp_path / "key.pub", tmp_path / "blob.sig"
    blob.write_bytes(b"hello" * 1000)
    pub.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    sig.write_bytes(base64.b64encode(key.sign(blob.read_bytes(), ec.ECDSA(hashes.SHA256()))))
    heavy = (*HEAVY, "pydantic", "sqlite_utils", "rich", "logging", "tempfile")
    probe = subprocess.run(
        [sys.executable, "-c", PROBE.format(
            argv=["verify-blob", str(blob), "--key", str(pub), "--signature", str(sig)],
            heavy=heavy)],
        capture_output=True, text=True, check=False,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.startswith("Verified OK")
    assert eval(probe.stdout.strip().splitlines()[-1]) == []  # noqa: S307  (our probe's list)


def test_the_algorithm_choices_are_the_key_stores_generators():
    from airseal.appliance.keystore import GENERATORS
    from airseal.appliance.service.records import KEY_ALGORITHMS

    assert tuple(sorted(GENERATORS)) == KEY_ALGORITHMS


def test_help_lists_every_command_group():
    out = subprocess.run(
        [sys.executable, "-m", "airseal.appliance.cli", "--help"], capture_output=True, text=True,
        check=True,
    ).stdout
    for name in ("action", "audit", "config", "export", "file", "init", "key", "media", "piv",
                 "receipts", "sign-blob", "token", "verify-blob"):
        assert f"\n  {name} " in out, name


def test_tui_is_a_listed_subcommand_with_help():
    airseal = [sys.executable, "-m", "airseal"]
    listing = subprocess.run([*airseal, "--help"], capture_output=True, text=True, check=True)
    assert "\n  tui " in listing.stdout
    helped = subprocess.run([*airseal, "tui", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0, helped.stderr
    assert "terminal UI" in helped.stdout and "Examples" in helped.stdout


@pytest.mark.parametrize("argv", [[], ["tui"]])
def test_without_a_terminal_the_tui_is_not_started(argv, appliance_home):
    """`airseal < /dev/null | cat`: help (for no command) and a reason, exit 2, no escape codes."""
    done = subprocess.run(
        [sys.executable, "-m", "airseal", *argv], stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2
    assert "\x1b" not in done.stdout and "\x1b" not in done.stderr
    assert "terminal" in done.stderr
    if not argv:
        assert done.stdout.startswith("Usage: airseal")
