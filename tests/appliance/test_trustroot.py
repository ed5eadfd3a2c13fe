"""`airseal trustroot fetch|import|status` and keyless verification with the imported root.

The upstream data is the real public-good repository (tests/trustroot/sigstore_cdn.py), laid out
as its CDN serves it; `fetch` downloads it from a loopback HTTP server. The copy expired in
August 2026, so imports meant to succeed set AIRSEAL_TEST_TRUSTROOT_TIME inside its validity.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from airseal.appliance.service import Appliance
from airseal.appliance.service.options import ApplianceOptions
from airseal.trustroot.errors import MirrorRefused, VerificationError
from tests.trustroot.sigstore_cdn import INSIDE_VALIDITY_ENV, lay_out_cdn, upstream_target
from tests.trustroot.sigstore_cdn import served as serve_over_http
from tests.trustroot.tuf_repo import SignedRepository, write_tree

FIXTURES = Path(__file__).parents[1] / "fixtures" / "keyless"
ARTIFACT = FIXTURES / "new_bundle.txt"
BUNDLE = FIXTURES / "new_bundle.txt.sigstore.json"
IDENTITY = "aryadeeptade@gmail.com"
ISSUER = "https://github.com/login/oauth"
IN_VALIDITY = {"AIRSEAL_TEST_TRUSTROOT_TIME": INSIDE_VALIDITY_ENV}
KEYLESS = (
    str(ARTIFACT), "--bundle", str(BUNDLE), "--certificate-identity", IDENTITY,
    "--certificate-oidc-issuer", ISSUER,
)


@pytest.fixture(scope="module")
def cdn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lay_out_cdn(tmp_path_factory.mktemp("cdn") / "repo")


def tree_of(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in root.rglob("*")
        if path.is_file()
    }


@pytest.fixture
def imported(airseal, appliance_home: Path, cdn: Path) -> dict[str, object]:
    done = airseal("trustroot", "import", str(cdn), "--json", env=IN_VALIDITY)
    assert done.code == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


# -- import ------------------------------------------------------------------------------------


def test_import_keeps_the_upstream_trusted_root_byte_for_byte(
    airseal, appliance_home: Path, imported: dict[str, object]
) -> None:
    assert imported["schemaVersion"] == 1
    assert (imported["rootVersion"], imported["timestampVersion"]) == (15, 762)
    assert (imported["snapshotVersion"], imported["targetsVersion"]) == (165, 14)
    assert imported["delegations"] == {"registry.npmjs.org": 8}
    assert imported["timestampExpires"] == "2026-08-28T19:25:56Z"
    assert imported["testReferenceTime"] is True
    stored = Path(str(imported["directory"]))
    assert stored.parent.parent == appliance_home
    assert (stored / "trusted_root.json").read_bytes() == upstream_target("trusted_root.json")
    assert (stored / "signing_config.v0.2.json").read_bytes() == upstream_target(
        "signing_config.v0.2.json"
    )
    upstream = {path.name for path in (stored / "upstream").iterdir()}
    assert {f"{v}.root.json" for v in range(1, 16)} <= upstream
    assert {"timestamp.json", "165.snapshot.json", "14.targets.json",
            "8.registry.npmjs.org.json"} <= upstream

    audit = airseal("audit", "list", "--json")
    rows = json.loads(audit.stdout)["items"]
    entry = next(row for row in rows if row["action"] == "trustroot.import")
    assert entry["subject"] == imported["id"]
    assert entry["details"]["timestampVersion"] == 762
    assert airseal("audit", "verify").code == 0


def test_status_shows_the_root_in_use_its_versions_and_age(
    airseal, imported: dict[str, object]
) -> None:
    text = airseal("trustroot", "status")
    assert text.code == 0, text.stderr
    assert "imported" in text.stdout and "(root v15, timestamp v762)" in text.stdout
    assert "timestamp v762 (expired 2026-08-28T19:25:56Z)" in text.stdout
    assert "age under an hour" in text.stdout

    status = json.loads(airseal("trustroot", "status", "--json").stdout)
    assert status["schemaVersion"] == 1
    assert status["inUse"] == "imported"
    assert status["imported"]["id"] == imported["id"]
    assert status["imported"]["timestampVersion"] == 762
    assert 0 <= status["ageSeconds"] < 600


def test_status_without_an_import_says_the_packaged_root_is_used(airseal) -> None:
    status = airseal("trustroot", "status", "--json")  # not even a home
    assert status.code == 0, status.stderr
    body = json.loads(status.stdout)
    assert body["inUse"] == "packaged"
    assert body["label"].startswith("packaged with sigstore ")


def test_import_today_is_refused_as_expired_and_keeps_nothing(
    airseal, appliance_home: Path, cdn: Path
) -> None:
    done = airseal("trustroot", "import", str(cdn))

    assert done.code == 1
    assert done.stderr.startswith(f"{cdn}/15.root.json: trust root mirror refused [root expiry]")
    assert "root metadata (15.root.json) expired at 2026-11-20T13:58:18Z" in done.stderr
    assert "airseal trustroot fetch --to DIR" in done.stderr
    assert not (appliance_home / "sigstore-roots").exists() or not any(
        (appliance_home / "sigstore-roots").iterdir()
    )
    assert json.loads(airseal("trustroot", "status", "--json").stdout)["inUse"] == "packaged"


def test_import_of_a_tampered_copy_is_refused_naming_the_file(
    airseal, appliance_home: Path, cdn: Path, tmp_path: Path
) -> None:
    copy = lay_out_cdn(tmp_path / "copy")
    target = next((copy / "targets").glob("*.trusted_root.json"))
    data = bytearray(target.read_bytes())
    data[100] ^= 0x01
    target.write_bytes(bytes(data))

    done = airseal("trustroot", "import", str(copy), env=IN_VALIDITY)

    assert done.code == 1
    assert done.stderr.startswith(f"{target}: trust root mirror refused ")
    assert "[targets target trusted_root.json hash]" in done.stderr


def test_import_refuses_a_link_out_of_the_copy(
    airseal, appliance_home: Path, tmp_path: Path
) -> None:
    copy = lay_out_cdn(tmp_path / "copy")
    (copy / "timestamp.json").unlink()
    (copy / "timestamp.json").symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_text("{}")

    done = airseal("trustroot", "import", str(copy), env=IN_VALIDITY)

    assert done.code == 1
    assert "not a regular file inside the copy" in done.stderr


def test_a_root_that_is_not_a_tuf_root_names_the_flag(
    airseal, appliance_home: Path, cdn: Path, served: str, tmp_path: Path
) -> None:
    not_root = next(cdn.glob("*.targets.json"))
    imported = airseal("trustroot", "import", str(cdn), "--root", str(not_root))
    assert imported.code == 2
    assert f"--root {not_root} is not a TUF root.json" in imported.stderr
    fetched = airseal("trustroot", "fetch", "--to", str(tmp_path / "c"), "--url", served,
                      "--root", str(ARTIFACT))
    assert fetched.code == 2 and "--root" in fetched.stderr


def test_import_from_an_older_root_given_with_root_climbs_to_15(
    airseal, appliance_home: Path, cdn: Path
) -> None:
    done = airseal("trustroot", "import", str(cdn), "--root", str(cdn / "10.root.json"),
                   "--json", env=IN_VALIDITY)
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["rootVersion"] == 15


def test_import_names_the_flag_of_a_missing_folder(airseal, appliance_home: Path) -> None:
    done = airseal("trustroot", "import", "/nonexistent/copy")
    assert done.code == 2
    assert "DIRECTORY" in done.stderr


# -- rollback through the service: the last import's timestamp and snapshot are the floor -------


def test_a_copy_older_than_the_last_import_is_refused(tmp_path: Path) -> None:
    repo = SignedRepository({"trusted_root.json": upstream_target("trusted_root.json")})
    repo.publish(1)
    repo.publish(2)
    old = write_tree(repo.tree(1), tmp_path / "v1")
    new = write_tree(repo.tree(2), tmp_path / "v2")
    root = write_tree({"1.root.json": repo.roots[0]}, tmp_path / "pinned") / "1.root.json"

    with Appliance(tmp_path / "home") as appliance:
        appliance.init()
        first = appliance.import_trust_root(new, pinned_root=root)
        assert first.timestamp_version == 2
        with pytest.raises(MirrorRefused) as caught:
            appliance.import_trust_root(old, pinned_root=root)
        assert caught.value.check == "timestamp version"
        assert appliance.keyless_trusted_root().imported == first
        again = appliance.import_trust_root(new, pinned_root=root)  # the same copy: fine
        assert again.timestamp_version == 2

        # Without the last import's timestamp there is no rollback floor: refuse, do not guess.
        (again.directory / "upstream" / "timestamp.json").unlink()
        with pytest.raises(VerificationError) as missing:
            appliance.import_trust_root(old, pinned_root=root)
        assert missing.value.check == "rollback"


def test_reference_time_is_the_appliance_clock_not_a_parameter(tmp_path: Path, cdn: Path) -> None:
    """In process, the clock of ApplianceOptions is the time expiry is checked at."""
    inside = ApplianceOptions(clock=lambda: datetime(2026, 8, 22, tzinfo=UTC))
    with Appliance(tmp_path / "home", options=inside) as appliance:
        appliance.init()
        imported = appliance.import_trust_root(cdn)
        assert imported.checked_at == "2026-08-22T00:00:00Z"
        assert imported.test_reference_time is False


# -- keyless verification uses the imported root ------------------------------------------------


def test_verify_blob_without_import_says_it_used_the_packaged_root(airseal) -> None:
    done = airseal("verify-blob", *KEYLESS)
    assert done.code == 0, done.stderr
    assert done.stdout.strip() == "Verified OK"
    assert "trusted root: packaged with sigstore " in done.stderr
    assert "(no import)" in done.stderr


def test_verify_blob_uses_the_imported_root_and_says_so(
    airseal, appliance_home: Path, imported: dict[str, object]
) -> None:
    done = airseal("verify-blob", *KEYLESS, "--json")
    assert done.code == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["trustedRoot"]["origin"] == "imported"
    assert body["trustedRoot"]["id"] == imported["id"]
    assert "(root v15, timestamp v762)" in done.stderr

    wrong = airseal("verify-blob", str(ARTIFACT), "--bundle", str(BUNDLE),
                    "--certificate-identity", "someone@example.com",
                    "--certificate-oidc-issuer", ISSUER)
    assert wrong.code == 1
    assert "identity mismatch" in wrong.stderr

    # An imported root changed on disk is never used, and never silently replaced.
    stored = Path(str(imported["directory"])) / "trusted_root.json"
    stored.write_bytes(stored.read_bytes().replace(b"fulcio", b"fulciO", 1))
    altered = airseal("verify-blob", *KEYLESS)
    assert altered.code == 1
    assert "changed since it was imported" in altered.stderr

    # --trusted-root still overrides.
    override = airseal("verify-blob", *KEYLESS, "--trusted-root",
                       str(Path(os.environ["AIRSEAL_HOME"]).parent / "none.json"))
    assert override.code == 2 and "--trusted-root" in override.stderr
    given = stored.parent.parent / "given.json"
    given.write_bytes(upstream_target("trusted_root.json"))
    chosen = airseal("verify-blob", *KEYLESS, "--trusted-root", str(given))
    assert chosen.code == 0, chosen.stderr
    assert f"trusted root: {given} (--trusted-root)" in chosen.stderr


def test_file_add_keyless_uses_the_imported_root(
    airseal, appliance_home: Path, imported: dict[str, object]
) -> None:
    done = airseal("file", "add", *KEYLESS, "--json")
    assert done.code == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["verified"] and body["method"] == "keyless"
    assert body["trustedRoot"]["origin"] == "imported"
    assert "trusted root: imported" in done.stderr


# -- fetch from a loopback HTTP server ---------------------------------------------------------


@pytest.fixture
def served(cdn: Path) -> Iterator[str]:
    with serve_over_http(cdn) as url:
        yield url


def test_fetch_copies_the_repository_into_an_identical_tree(
    airseal, cdn: Path, served: str, tmp_path: Path
) -> None:
    to = tmp_path / "usb" / "sigstore-root"
    done = airseal("trustroot", "fetch", "--to", str(to), "--url", served, env=IN_VALIDITY)

    assert done.code == 0, done.stderr
    assert tree_of(to) == tree_of(cdn)
    assert "fetched 15.root.json" in done.stderr  # progress, per file
    assert "root v15, timestamp v762" in done.stdout
    assert f"airseal trustroot import {to}" in done.stdout

    airseal("init")
    imported = airseal("trustroot", "import", str(to), env=IN_VALIDITY)
    assert imported.code == 0, imported.stderr


def test_fetch_of_an_expired_repository_leaves_no_folder(
    airseal, served: str, tmp_path: Path
) -> None:
    to = tmp_path / "copy"
    done = airseal("trustroot", "fetch", "--to", str(to), "--url", served, "--json")

    assert done.code == 1
    assert "[root expiry]" in done.stderr or "root expiry" in done.stdout
    assert not to.exists()
    assert not list(tmp_path.iterdir())


def test_fetch_names_its_flags_in_errors(airseal, served: str, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    not_empty = airseal("trustroot", "fetch", "--to", str(busy), "--url", served)
    assert not_empty.code == 2 and "--to" in not_empty.stderr

    bad_url = airseal("trustroot", "fetch", "--to", str(tmp_path / "a"), "--url", "ftp://x")
    assert bad_url.code == 2 and "--url" in bad_url.stderr

    closed = airseal("trustroot", "fetch", "--to", str(tmp_path / "b"),
                     "--url", "http://127.0.0.1:9")
    assert closed.code == 3 and "--url" in closed.stderr
    assert not (tmp_path / "b").exists()


def test_every_trustroot_command_has_help_with_examples(airseal) -> None:
    for command in ("fetch", "import", "status"):
        done = airseal("trustroot", command, "--help")
        assert done.code == 0
        assert "Examples:" in done.stdout
        assert f"airseal trustroot {command}" in done.stdout


def test_import_and_keyless_verification_need_no_network(
    airseal, appliance_home: Path, cdn: Path
) -> None:
    """In a network namespace with no route: the import reads only the folder, and the keyless
    check afterwards only the home."""
    assert shutil.which("unshare"), "util-linux unshare is required (Debian: util-linux)"
    env = dict(os.environ) | IN_VALIDITY

    def offline(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["unshare", "--net", "--", sys.executable, "-m", "airseal.appliance.cli", *argv],
            capture_output=True, text=True, check=False, timeout=120, env=env,
        )

    imported = offline("trustroot", "import", str(cdn))
    assert imported.returncode == 0, imported.stderr
    verified = offline("verify-blob", *KEYLESS)
    assert (verified.returncode, verified.stdout.strip()) == (0, "Verified OK"), verified.stderr
    assert "trusted root: imported" in verified.stderr


def test_schema_4_database_migrates_to_5_keeping_its_rows(tmp_path: Path) -> None:
    import sqlite3

    from airseal._internal import migrations
    from airseal.appliance.db import MIGRATIONS, SCHEMA_VERSION, open_database, schema_version
    from airseal.appliance.home import init_home

    home, _ = init_home(tmp_path / "home")
    home.database_path.unlink()
    conn = sqlite3.connect(home.database_path, isolation_level=None)
    migrations.migrate(conn, MIGRATIONS[:4])
    conn.execute(
        "INSERT INTO files VALUES ('ab', 'x', 1, '2026-01-01', 'none', 0, NULL)"
    )
    conn.close()

    db = open_database(home)
    # 5: the mirror's sigstore_roots, 6: the embedded transparency log, 7: its lookup indexes,
    # all on an old home
    assert schema_version(db) == SCHEMA_VERSION == 7
    assert [row["sha256"] for row in db.query("SELECT sha256 FROM files")] == ["ab"]
    assert db["sigstore_roots"].count == 0  # type: ignore[union-attr]
    assert db["log_entries"].count == 0  # type: ignore[union-attr]
