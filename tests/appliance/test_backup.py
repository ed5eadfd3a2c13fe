"""Backup and restore of the appliance home: a real home (SQLite, file keys, a log, exports), real
age encryption, and every refusal leaving nothing behind. The end-to-end disaster (an agent
importing the restored appliance's media) is tests/agent/test_restore_disaster.py."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sqlite3
import subprocess
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from airseal.appliance import actions, intake
from airseal.appliance.audit import verify_chain
from airseal.appliance.backup import (
    ARCHIVE_NAME,
    BUNDLE_NAME,
    IDENTITY_NAME,
    MANIFEST_NAME,
    BackupRefused,
    KeyNotConfirmed,
    RestoreTargetNotEmpty,
    SequencePlanRefused,
    create_backup,
    read_signed_manifest,
    restore_backup,
    verify_backup,
)
from airseal.appliance.db import open_database
from airseal.appliance.errors import PasswordError, UsageError
from airseal.appliance.export import export_to_media
from airseal.appliance.home import Home, init_home, open_home
from airseal.appliance.keystore import generate_file_key, get_key, open_signer, register_key
from airseal.appliance.tlog_store import TransparencyLog, create_log
from airseal.trustroot.bundle import bundle_to_json, message_signature_bundle

KEY_PASSWORD = "appliance key password"
BACKUP_PASSWORD = "backup passphrase for tests"
NOW = datetime.now(UTC).replace(microsecond=0)


class Prompter:
    def __init__(self, backup_password: str = BACKUP_PASSWORD) -> None:
        self.backup_password = backup_password

    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        return self.backup_password if prompt.startswith("Backup") else KEY_PASSWORD

    def notice(self, message: str) -> None:
        pass


@dataclass
class Site:
    home: Home
    backup: Path
    media: list[Path]
    fingerprint: str
    token_fingerprint: str


def _export(home: Home, base: Path, name: str) -> Path:
    media = base / name
    media.mkdir()
    db = open_database(home)
    try:
        export_to_media(home, db, media, "ops", Prompter(), allow_unknown_capacity=True)
    finally:
        db.close()
    return media


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with a file key that also keeps the log, a registered token key, an action and two
    exports, and its backup: made once, copied per test."""
    base = tmp_path_factory.mktemp("backup-template")
    home, _ = init_home(base / "home")
    db = open_database(home)
    ops = generate_file_key(home, db, "ops", Prompter())
    with open_signer(home, ops, Prompter()) as signer:
        create_log(db.conn, origin="log.backup.example", key_name="ops",
                   public_key=ops.public_key, signer=signer, now=NOW)
    token_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    register_key(home, db, "hsm", "pkcs11", token_key,
                 {"module": "/usr/lib/softhsm/libsofthsm2.so", "token": "airseal", "label": "hsm"},
                 audit_action="key.import")
    payload = base / "tool.conf"
    payload.write_bytes(b"x=1\n")
    intake.add_file(home, db, payload, intake.VendorSignature())
    spec = actions.ActionSpec(name="(Config)One", file=str(payload), os="linux", mode="download",
                              dest="/opt/x.conf")
    actions.create_action(home, db, spec, "ops", Prompter())
    db.close()
    _export(home, base, "m1")
    _export(home, base, "m2")
    db = open_database(home)
    create_backup(home, db, base / "backup", "ops", Prompter())
    db.close()
    return base


@pytest.fixture
def site(template: Path, tmp_path: Path) -> Site:
    shutil.copytree(template, tmp_path / "site")
    base = tmp_path / "site"
    home = open_home(base / "home")
    db = open_database(home)
    fingerprints = (get_key(db, "ops").fingerprint, get_key(db, "hsm").fingerprint)
    db.close()
    return Site(home, base / "backup", [base / "m1", base / "m2"], *fingerprints)


def _nothing_written(target: Path) -> None:
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir()] == [], "a staging folder was left behind"


def _restore(site: Site, target: Path, **kwargs):  # type: ignore[no-untyped-def]
    options = {"expect_key": site.fingerprint, "media": [site.media[1]], "sequence_gap": 7}
    options.update(kwargs)
    return restore_backup(site.backup, target, Prompter(), **options)


def test_round_trip_restores_the_home_and_continues_it(site: Site, tmp_path: Path) -> None:
    target = tmp_path / "new" / "home"
    crashed = tmp_path / "new" / ".home.restore-crashed"  # a power cut during an earlier restore
    (crashed / "keys").mkdir(parents=True)
    result = _restore(site, target)
    assert [p.name for p in target.parent.iterdir()] == ["home"]

    for rel in ("config.json", "keys/ops.key", *[f"store/{p.name}" for p in
                                                  (site.home.root / "store").iterdir()]):
        assert (target / rel).read_bytes() == (site.home.root / rel).read_bytes(), rel
    home = open_home(target)
    db = open_database(home)
    report = verify_chain(home, db)
    assert report.ok, report.problems
    last = db.execute("SELECT action, details FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    assert last[0] == "restore"
    assert json.loads(last[1])["backup_audit_head"] == result.backup.manifest.audit_head
    sequences = dict(db.execute("SELECT key_fingerprint, last_sequence FROM export_sequences"))
    assert sequences == {site.fingerprint: 2, site.token_fingerprint: 7}
    restored_log = TransparencyLog(db.conn).verify()
    db.close()
    original = sqlite3.connect(site.home.database_path)
    assert restored_log.checkpoint.root_hash == TransparencyLog(original).root()
    original.close()
    assert [k.name for k in result.backup.manifest.token_keys] == ["hsm"]
    assert "token keys expected" in "\n".join(result.describe())
    assert result.to_json()["sequences"] == [
        {"keyFingerprint": fp, "backupSequence": before, "nextSequence": after}
        for fp, before, after in sorted(
            [(site.fingerprint, 2, 3), (site.token_fingerprint, 0, 8)])
    ]
    assert (target.stat().st_mode & 0o777) == 0o700


def test_verify_checks_everything_and_writes_nothing(site: Site, tmp_path: Path) -> None:
    checked = verify_backup(site.backup, Prompter(), expect_key=site.fingerprint,
                            scratch=tmp_path)
    assert checked.key_confirmed_by == "expected key"
    assert checked.manifest.audit_entries > 0 and checked.manifest.log is not None
    assert list(tmp_path.iterdir()) == [tmp_path / "site"]  # the temporary folder is gone
    # on the appliance that made it, its own key confirms the signer (no decryption needed here)
    _, _, confirmed = read_signed_manifest(site.backup, expect_key=None,
                                           known_keys={site.fingerprint})
    assert confirmed == "a key of this appliance"
    with pytest.raises(KeyNotConfirmed, match="which nothing here confirms"):
        verify_backup(site.backup, Prompter())
    with pytest.raises(KeyNotConfirmed, match="not by the expected"):
        verify_backup(site.backup, Prompter(), expect_key="ab" * 32)


def _flip(path: Path, offset: int = -40) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _resign(site: Site, edit) -> None:  # type: ignore[no-untyped-def]
    """Edit the manifest and sign it again with the appliance key (an insider's forgery)."""
    manifest = json.loads((site.backup / MANIFEST_NAME).read_bytes())
    edit(manifest)
    data = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    (site.backup / MANIFEST_NAME).write_bytes(data)
    db = open_database(site.home)
    with open_signer(site.home, get_key(db, "ops"), Prompter()) as signer:
        digest = hashlib.sha256(data).digest()
        bundle = message_signature_bundle(signer.public_key, digest, signer.sign_digest(digest))
    db.close()
    (site.backup / BUNDLE_NAME).write_bytes(bundle_to_json(bundle))


def _other_signer(site: Site) -> None:
    manifest = (site.backup / MANIFEST_NAME).read_bytes()
    other = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(manifest).digest()
    from airseal.trustroot.signer import PrivateKeySigner

    signer = PrivateKeySigner(other)
    bundle = message_signature_bundle(signer.public_key, digest, signer.sign_digest(digest))
    (site.backup / BUNDLE_NAME).write_bytes(bundle_to_json(bundle))


def _drop_first_file(manifest: dict) -> None:
    manifest["files"][-1]["sha256"] = "0" * 64


TAMPERING = {
    "archive byte flipped": (lambda s: _flip(s.backup / ARCHIVE_NAME), BackupRefused),
    "archive truncated": (
        lambda s: (s.backup / ARCHIVE_NAME).write_bytes(
            (s.backup / ARCHIVE_NAME).read_bytes()[:-1000]), BackupRefused),
    "archive missing": (lambda s: (s.backup / ARCHIVE_NAME).unlink(), BackupRefused),
    "backup key flipped": (lambda s: _flip(s.backup / IDENTITY_NAME), BackupRefused),
    "manifest edited": (
        lambda s: (s.backup / MANIFEST_NAME).write_bytes(
            (s.backup / MANIFEST_NAME).read_bytes().replace(b'"entries": ', b'"entries": 1')),
        BackupRefused),
    "manifest truncated": (
        lambda s: (s.backup / MANIFEST_NAME).write_bytes(
            (s.backup / MANIFEST_NAME).read_bytes()[:200]), BackupRefused),
    "signature missing (unfinished backup)": (
        lambda s: (s.backup / BUNDLE_NAME).unlink(), BackupRefused),
    "signature by another key": (_other_signer, BackupRefused),
    "re-signed manifest naming a file the archive lacks": (
        lambda s: _resign(s, _drop_first_file), BackupRefused),
    "re-signed manifest with another audit head": (
        lambda s: _resign(s, lambda m: m["audit"].update(head="1" * 64)), BackupRefused),
}


@pytest.mark.parametrize("damage", TAMPERING, ids=list(TAMPERING))
def test_a_tampered_or_truncated_backup_is_refused_and_nothing_is_written(
    site: Site, tmp_path: Path, damage: str
) -> None:
    tamper, error = TAMPERING[damage]
    tamper(site)
    target = tmp_path / "new" / "home"
    target.parent.mkdir()
    with pytest.raises(error):
        _restore(site, target)
    _nothing_written(target)


def test_a_wrong_passphrase_opens_nothing(site: Site, tmp_path: Path) -> None:
    target = tmp_path / "new" / "home"
    target.parent.mkdir()
    with pytest.raises(PasswordError, match="does not open this backup"):
        restore_backup(site.backup, target, Prompter("not the passphrase"),
                       expect_key=site.fingerprint, sequence_gap=1)
    _nothing_written(target)


def test_restore_refuses_a_home_that_is_not_empty(site: Site, tmp_path: Path) -> None:
    with pytest.raises(RestoreTargetNotEmpty):
        _restore(site, site.home.root)
    target = tmp_path / "new"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(RestoreTargetNotEmpty):
        _restore(site, target)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


def test_sequences_come_from_media_or_a_gap_never_from_the_backup_alone(
    site: Site, tmp_path: Path
) -> None:
    target = tmp_path / "new" / "home"
    target.parent.mkdir()
    with pytest.raises(UsageError, match="how far the export sequences moved"):
        _restore(site, target, media=[], sequence_gap=None)
    with pytest.raises(SequencePlanRefused, match="key\\(s\\) hsm"):
        _restore(site, target, sequence_gap=None)
    _nothing_written(target)
    # an older medium never moves a key back: ops continues after the backup's 2, not m1's 1
    result = _restore(site, target, media=[site.media[0]], sequence_gap=3)
    assert {i["keyFingerprint"]: i["nextSequence"] for i in result.plan.to_json()} == {
        site.fingerprint: 3, site.token_fingerprint: 4}


def test_a_medium_newer_than_the_backups_log_refuses_the_restore(
    site: Site, tmp_path: Path
) -> None:
    """An export after the backup logged entries the backup lacks: continuing would fork."""
    newer = _export(site.home, tmp_path, "m3")
    target = tmp_path / "new" / "home"
    target.parent.mkdir()
    with pytest.raises(BackupRefused, match="would fork the log") as refused:
        _restore(site, target, media=[newer])
    assert refused.value.check == "restore.log"
    _nothing_written(target)


def test_age_alone_decrypts_a_backup(site: Site, tmp_path: Path) -> None:
    """Debian's Go `age` opens the archive with a recipient's key, and the passphrase file too
    (typed on a terminal: `script` gives age its tty); the tar holds what the manifest lists."""
    identity = tmp_path / "recipient.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = next(line.split(": ")[1] for line in identity.read_text().splitlines()
                     if line.startswith("# public key: "))
    db = open_database(site.home)
    out = tmp_path / "b2"
    create_backup(site.home, db, out, "ops", Prompter(), recipients=(recipient,))
    db.close()
    by_recipient = subprocess.run(
        ["age", "-d", "-i", str(identity), str(out / ARCHIVE_NAME)],
        check=True, capture_output=True).stdout
    by_passphrase = tmp_path / "by-passphrase.tar"
    subprocess.run(
        ["script", "-qec", f"age -d -i {out / IDENTITY_NAME} -o {by_passphrase} "
                           f"{out / ARCHIVE_NAME}", "/dev/null"],
        input=f"{BACKUP_PASSWORD}\n".encode(), check=True, capture_output=True, timeout=60)
    assert by_passphrase.read_bytes() == by_recipient
    manifest = json.loads((out / MANIFEST_NAME).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(by_recipient)) as tar:
        listed = {}
        for member in tar:
            handle = tar.extractfile(member)
            assert handle is not None
            listed[member.name] = hashlib.sha256(handle.read()).hexdigest()
    assert listed == {f["path"]: f["sha256"] for f in manifest["files"]}
    assert manifest["recipients"][1] == recipient


def test_the_command_line_refuses_before_it_asks_for_anything(
    site: Site, tmp_path: Path, airseal  # type: ignore[no-untyped-def]
) -> None:
    """Exit codes of `airseal restore` and `backup verify`: usage 2, unconfirmed signer 1, a
    home that is not empty 3; nothing is written, and no passphrase is needed to get there."""
    target = tmp_path / "new"
    unknown = airseal("restore", str(site.backup), "--home", str(target),
                      "--expect-key", site.fingerprint, password=None)
    assert unknown.code == 2 and "--sequence-gap" in unknown.stderr
    unconfirmed = airseal("restore", str(site.backup), "--home", str(target),
                          "--sequence-gap", "10", password=None)
    assert unconfirmed.code == 1 and site.fingerprint in unconfirmed.stderr
    assert "--expect-key" in unconfirmed.stderr
    occupied = airseal("restore", str(site.backup), "--home", str(site.home.root),
                       "--expect-key", site.fingerprint, "--sequence-gap", "10", "--json",
                       password=None)
    assert occupied.code == 3 and "not empty" in occupied.stdout + occupied.stderr
    assert not target.exists()
    verified = airseal("backup", "verify", str(site.backup), "--json", password=None)
    assert verified.code == 1 and "nothing here confirms" in verified.stdout + verified.stderr


def _forge_archive(site: Site, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    """An insider with the passphrase and the signing key swaps in a hostile tar."""
    import pyrage
    from pyrage import x25519

    identity = x25519.Identity.from_str(_backup_identity(site.backup))
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = pyrage.encrypt(plain.getvalue(), [identity.to_public()])
    (site.backup / ARCHIVE_NAME).write_bytes(archive)
    _resign(site, lambda m: m["archive"].update(size=len(archive),
                                                sha256=hashlib.sha256(archive).hexdigest()))


_IDENTITIES: dict[bytes, str] = {}


def _backup_identity(backup: Path) -> str:
    """The backup's age identity, opened once per key file (scrypt is tuned to take a second)."""
    from pyrage import passphrase

    sealed = (backup / IDENTITY_NAME).read_bytes()
    if sealed not in _IDENTITIES:
        _IDENTITIES[sealed] = passphrase.decrypt(sealed, BACKUP_PASSWORD).decode().strip()
    return _IDENTITIES[sealed]


def _link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


HOSTILE_TARS = {
    "path traversal": [(tarfile.TarInfo("../../escaped"), b"x")],
    "absolute path": [(tarfile.TarInfo("/tmp/escaped"), b"x")],
    "symlink as a listed file": [(_link("config.json", "/etc/passwd"), b"")],
}


@pytest.mark.parametrize("hostile", HOSTILE_TARS, ids=list(HOSTILE_TARS))
def test_a_hostile_archive_is_refused_and_nothing_escapes(
    site: Site, tmp_path: Path, hostile: str
) -> None:
    _forge_archive(site, HOSTILE_TARS[hostile])
    target = tmp_path / "deep" / "new" / "home"
    target.parent.mkdir(parents=True)
    with pytest.raises(BackupRefused, match="does not list") as refused:
        _restore(site, target)
    assert refused.value.check == "backup.contents"
    _nothing_written(target)
    assert not (tmp_path / "escaped").exists() and not Path("/tmp/escaped").exists()


def test_a_backup_that_fails_half_way_leaves_no_half_backup(site: Site, tmp_path: Path) -> None:
    class WrongKeyPassword(Prompter):
        def secret(self, prompt: str, *, confirm: bool = False) -> str:
            return BACKUP_PASSWORD if prompt.startswith("Backup") else "not the key password"

    from airseal.trustroot.errors import WrongPassword

    target = tmp_path / "b"
    db = open_database(site.home)
    with pytest.raises(WrongPassword):  # the archive is written, then signing fails
        create_backup(site.home, db, target, "ops", WrongKeyPassword())
    db.close()
    assert list(target.iterdir()) == []
    assert not list(site.home.root.glob(".backup-*"))
