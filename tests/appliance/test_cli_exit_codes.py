"""`airseal` exits 2 for every usage error, its own as well as click's (the README's promise)."""

from __future__ import annotations

from pathlib import Path

from airseal.appliance.cli import exit_codes


def test_usage_errors_exit_2(airseal, appliance_home: Path, tmp_path: Path) -> None:
    blob = tmp_path / "blob.txt"
    blob.write_text("payload")
    signature = tmp_path / "blob.sig"
    signature.write_text("c2ln")
    assert airseal("key", "generate", "ops").code == 0
    cases = {
        "verify-blob without --signature or --bundle": (
            ["verify-blob", str(blob), "--key", "ops"],
            "--signature or --bundle",
        ),
        "verify-blob --signature without --key": (
            ["verify-blob", str(blob), "--signature", str(signature)],
            "give --key",
        ),
        "file add --signature without --key": (
            ["file", "add", str(blob), "--signature", str(signature)],
            "--signature needs --key",
        ),
        "file add with a name FAT32 cannot hold": (
            ["file", "add", str(blob), "--name", "con"],
            "file name",
        ),
        "config set of an unknown setting": (["config", "set", "no.such", "1"], "unknown setting"),
        "export with no current action": (
            ["export", "--to", str(tmp_path), "--key", "ops"],
            "no current actions",
        ),
        "click's own: an unknown command": (["no-such-command"], "No such command"),
    }
    for case, (argv, expected) in cases.items():
        result = airseal(*argv)
        assert result.code == exit_codes.USAGE == 2, (case, result.stderr)
        assert expected in result.stderr, (case, result.stderr)
        assert "Traceback" not in result.stderr, case
