"""`airseal log ...` end to end, and what logging changes for the commands that sign."""

from __future__ import annotations

import base64
import json
import sqlite3

import pytest

from airseal.trustroot.tlog.entries import TlogEntry, verify_tlog_entry


@pytest.fixture
def logged_home(airseal, appliance_home):
    for name in ("signer", "logkey"):
        assert airseal("key", "generate", name).code == 0
    made = airseal("log", "init", "--key", "logkey", "--origin", "log.site.example")
    assert made.code == 0, made.stderr
    return appliance_home


def test_init_refuses_what_it_cannot_use(airseal, appliance_home, tmp_path) -> None:
    assert airseal("log", "status").code == 3  # no log yet: says how to make one
    no_log = airseal("site", "trusted-root", "--output", str(tmp_path / "root.json"))
    assert no_log.code == 3 and "log init" in no_log.stderr
    assert not (tmp_path / "root.json").exists()
    assert airseal("key", "generate", "rsa", "--algorithm", "rsa-3072").code == 0
    result = airseal("log", "init", "--key", "rsa", "--json")
    assert result.code == 2 and "--key rsa" in result.stderr and "P-256" in result.stderr
    assert airseal("key", "generate", "p256").code == 0
    for bad in ("https://log.example", "log.example:443", "log.example/x"):
        result = airseal("log", "init", "--key", "p256", "--origin", bad)
        assert result.code == 2 and "--origin" in result.stderr and "bare host" in result.stderr
    assert airseal("log", "init", "--key", "p256").code == 0
    again = airseal("log", "init", "--key", "p256")
    assert again.code == 3 and "already has a transparency log" in again.stderr
    audit = airseal("audit", "list").stdout
    assert "log-init" in audit


def test_status_get_prove_verify_and_trusted_root(airseal, logged_home, tmp_path) -> None:
    blob = tmp_path / "f.bin"
    for i in range(5):
        blob.write_bytes(b"x" * i)
        assert airseal("sign-blob", str(blob), "--key", "signer").code == 0
    status = json.loads(airseal("log", "status", "--json").stdout)
    assert status["schemaVersion"] == 1 and status["size"] == 5
    assert status["checkpoint"].startswith("log.site.example\n5\n")
    got = json.loads(airseal("log", "get", "2").stdout)
    assert got["entry"]["logIndex"] == "2"
    # the same entry by its Rekor UUID (its leaf hash; 80 digits with a tree id in front)
    from airseal.trustroot.tlog import merkle

    uuid = merkle.leaf_hash(base64.b64decode(got["entry"]["canonicalizedBody"])).hex()
    assert json.loads(airseal("log", "get", uuid.upper()).stdout) == got
    assert json.loads(airseal("log", "get", "0" * 16 + uuid).stdout) == got
    missing = airseal("log", "get", "ab" * 32)
    assert missing.code == 3 and "no entry with UUID" in missing.stderr
    assert airseal("log", "get", "ab" * 31).code == 2  # neither an index nor a UUID
    proof = json.loads(airseal("log", "prove", "--from-size", "2", "--json").stdout)
    assert (proof["kind"], proof["oldSize"], proof["newSize"]) == ("consistency", 2, 5)
    assert airseal("log", "prove", "--index", "4").code == 0
    assert airseal("log", "prove").code == 2
    verified = json.loads(airseal("log", "verify", "--json").stdout)
    assert verified["verified"] is True
    root = tmp_path / "trusted_root.json"
    assert airseal("log", "trusted-root", "--output", str(root)).code == 0
    tlog = json.loads(root.read_text())["tlogs"][0]
    assert tlog["baseUrl"] == "https://log.site.example"
    assert base64.b64decode(tlog["logId"]["keyId"]).hex() == status["logId"]
    site_root = tmp_path / "site_trusted_root.json"  # the site's copy: the same document
    assert airseal("site", "trusted-root", "--output", str(site_root)).code == 0
    assert site_root.read_bytes() == root.read_bytes()
    out = tmp_path / "static"
    assert airseal("log", "export", str(out)).code == 0
    assert (out / "checkpoint").read_text() == status["checkpoint"]
    assert (out / "tile/0/000.p/5").stat().st_size == 5 * 32

    # Damage the stored tree: `log verify` exits 1 and names the tile.
    conn = sqlite3.connect(logged_home / "airseal.db")
    conn.execute("UPDATE log_tiles SET hashes = zeroblob(160) WHERE level = 0 AND idx = 0")
    conn.commit()
    conn.close()
    broken = airseal("log", "verify")
    assert broken.code == 1 and "tile/0/000" in broken.stderr


def test_signed_actions_carry_a_dsse_log_entry(tmp_path) -> None:
    """Every action version is logged as a Rekor v1 dsse entry about its own signature."""
    import hashlib
    from datetime import UTC, datetime

    from airseal.appliance.db import open_database
    from airseal.appliance.home import init_home
    from airseal.appliance.keystore import generate_file_key, get_key, open_signer
    from airseal.appliance.tlog_store import TransparencyLog, create_log
    from airseal.trustroot.tlog.entries import SignedContent
    from tests.appliance.test_intake_and_actions import FixedPrompter, _create

    home, _ = init_home(tmp_path / "home")
    db = open_database(home)
    generate_file_key(home, db, "ops", FixedPrompter())
    log_key = generate_file_key(home, db, "logkey", FixedPrompter())
    with open_signer(home, get_key(db, "logkey"), FixedPrompter()) as signer:
        create_log(
            db.conn,
            origin="log.site.example",
            key_name="logkey",
            public_key=log_key.public_key,
            signer=signer,
            now=datetime.now(UTC),
        )
    payload = tmp_path / "agent.tar"
    payload.write_bytes(b"payload")
    record = _create(home, db, payload)
    bundle = json.loads(record.bundle)
    entry = TlogEntry.from_json(bundle["verificationMaterial"]["tlogEntries"][0])
    assert (entry.kind, entry.log_index) == ("dsse", 0)
    envelope = bundle["dsseEnvelope"]
    signed = SignedContent(
        signature=base64.b64decode(envelope["signatures"][0]["sig"]),
        sha256_digest=hashlib.sha256(base64.b64decode(envelope["payload"])).digest(),
    )
    verify_tlog_entry(
        entry,
        log_key=log_key.public_key,
        name="log.site.example",
        origin="log.site.example",
        signed=signed,
    )
    assert TransparencyLog(db.conn).verify().checkpoint.size == 1


def test_an_approval_signature_is_logged_as_its_own_dsse_entry(tmp_path) -> None:
    """Approving adds a second entry, about the approver's signature, after the first one."""
    import hashlib
    from datetime import UTC, datetime

    from airseal.appliance.actions import approve_action
    from airseal.appliance.db import open_database
    from airseal.appliance.home import init_home
    from airseal.appliance.keystore import generate_file_key, get_key, open_signer
    from airseal.appliance.tlog_store import TransparencyLog, create_log
    from airseal.trustroot.errors import LogProofError
    from airseal.trustroot.tlog.entries import SignedContent
    from tests.appliance.test_intake_and_actions import FixedPrompter, _create

    home, _ = init_home(tmp_path / "home")
    db = open_database(home)
    generate_file_key(home, db, "ops", FixedPrompter())
    generate_file_key(home, db, "second", FixedPrompter())
    log_key = generate_file_key(home, db, "logkey", FixedPrompter())
    with open_signer(home, get_key(db, "logkey"), FixedPrompter()) as signer:
        create_log(db.conn, origin="log.site.example", key_name="logkey",
                   public_key=log_key.public_key, signer=signer, now=datetime.now(UTC))
    payload = tmp_path / "agent.tar"
    payload.write_bytes(b"payload")
    record = _create(home, db, payload)
    approved = approve_action(home, db, record.id, "second", FixedPrompter())
    bundle = json.loads(approved.bundle)
    items = [TlogEntry.from_json(i) for i in bundle["verificationMaterial"]["tlogEntries"]]
    assert [(e.kind, e.log_index) for e in items] == [("dsse", 0), ("dsse", 1)]
    envelope = bundle["dsseEnvelope"]
    digest = hashlib.sha256(base64.b64decode(envelope["payload"])).digest()
    sigs = [base64.b64decode(s["sig"]) for s in envelope["signatures"]]
    for entry, sig in zip(items, sigs, strict=True):
        verify_tlog_entry(entry, log_key=log_key.public_key, name="log.site.example",
                          origin="log.site.example", signed=SignedContent(sig, digest))
    with pytest.raises(LogProofError):  # the approval's entry is about its own signature only
        verify_tlog_entry(items[1], log_key=log_key.public_key, name="log.site.example",
                          origin="log.site.example", signed=SignedContent(sigs[0], digest))
    subjects = [r[0] for r in db.conn.execute("SELECT subject FROM log_entries ORDER BY idx")]
    assert subjects[1].startswith(f"action {record.id} v1 approval ")
    assert TransparencyLog(db.conn).verify().checkpoint.size == 2


def test_site_metadata_versions_are_logged_by_the_log_key(airseal, logged_home) -> None:
    """Each published root/targets/snapshot/timestamp version is a hashedrekord entry over the
    file's SHA-256, signed by the log key, named `tuf <role> v<N>`; the log still verifies."""
    import hashlib

    from airseal.trustroot.keys import load_public_key, verify_digest

    made = airseal("site", "init", "--root-key", "signer", "--root-threshold", "1",
                   "--targets-key", "signer", "--targets-threshold", "1", "--online-key", "signer")
    assert made.code == 0, made.stderr
    conn = sqlite3.connect(logged_home / "airseal.db")
    rows = conn.execute("SELECT idx, subject FROM log_entries ORDER BY idx").fetchall()
    assert [s for _, s in rows] == ["tuf root v1", "tuf targets v1", "tuf snapshot v1",
                                    "tuf timestamp v1"]
    status = json.loads(airseal("log", "status", "--json").stdout)
    assert status["size"] == 4
    log_key = load_public_key(status_key(conn), subject="log key")
    metadata = logged_home / "site" / "metadata"
    for (index, subject), name in zip(rows, ("1.root.json", "1.targets.json",
                                             "1.snapshot.json", "timestamp.json"), strict=True):
        got = json.loads(airseal("log", "get", str(index)).stdout)["entry"]
        body = json.loads(base64.b64decode(got["canonicalizedBody"]))
        assert got["kindVersion"] == {"kind": "hashedrekord", "version": "0.0.1"}
        digest = hashlib.sha256((metadata / name).read_bytes()).digest()
        assert body["spec"]["data"]["hash"]["value"] == digest.hex(), subject
        verify_digest(log_key, base64.b64decode(body["spec"]["signature"]["content"]), digest)
    before = status["size"]
    assert airseal("distributor", "add", "signer", "--may-sign", "actions").code == 0
    later = [s for (s,) in conn.execute("SELECT subject FROM log_entries WHERE idx >= ?",
                                        [before])]
    assert later == ["tuf targets v2", "tuf snapshot v2", "tuf timestamp v2"]
    conn.close()
    assert json.loads(airseal("log", "verify", "--json").stdout)["verified"] is True
    replaced = metadata / "2.targets.json"  # published metadata swapped after it was logged
    replaced.write_bytes(replaced.read_bytes().replace(b'"version": 2', b'"version": 2 '))
    broken = airseal("log", "verify")
    assert broken.code == 1 and "2.targets.json differs" in broken.stderr, broken.stderr


def status_key(conn: sqlite3.Connection) -> bytes:
    return str(conn.execute("SELECT public_key_pem FROM log").fetchone()[0]).encode()


@pytest.mark.slow
def test_a_logged_export_still_checks_and_imports(airseal, logged_home, tmp_path) -> None:
    """Bundles carrying tlogEntries are accepted by the courier's check and by the agent."""
    import os
    import subprocess
    import sys

    payload = tmp_path / "tool.bin"
    payload.write_bytes(os.urandom(1000))
    assert airseal("file", "add", str(payload)).code == 0
    dest = tmp_path / "installed" / "tool.bin"
    created = airseal(
        "action",
        "create",
        "--name",
        "(Install)Tool",
        "--file",
        str(payload),
        "--os",
        "linux",
        "--mode",
        "download",
        "--dest",
        str(dest),
        "--key",
        "signer",
        "--json",
    )
    assert created.code == 0, created.stderr
    media = tmp_path / "media"
    media.mkdir()
    exported = airseal("export", "--to", str(media), "--key", "signer", "--json")
    assert exported.code == 0, exported.stderr
    statement = json.loads((media / "airseal" / "export.sigstore.json").read_text())
    assert statement["verificationMaterial"]["tlogEntries"][0]["kindVersion"]["kind"] == "dsse"
    # the action, the audit chain's anchor (every export makes one) and the export statement
    assert json.loads(airseal("log", "status", "--json").stdout)["size"] == 3
    assert json.loads(airseal("log", "verify", "--json").stdout)["auditAnchors"] == 1
    assert airseal("media", "check", str(media)).code == 0
    pub = tmp_path / "signer.pub"
    pub.write_text(airseal("key", "export-public", "signer").stdout)

    def agent(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "airseal.agent", *args],
            env={**os.environ, "AIRSEAL_AGENT_KEY_PASSWORD": "agent receipt password"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    assert agent("init").returncode == 0
    assert agent("enroll", "--key", str(pub), "--name", "Site").returncode == 0
    imported = agent("import", str(media), "--yes", "--json")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert dest.read_bytes() == payload.read_bytes()


def test_verify_bundle_log_entry_matches_the_bundle_it_rides_in(airseal, logged_home, tmp_path):
    """The check an endpoint runs: the entry is this log's, about this bundle's signature."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    from airseal.trustroot.errors import LogProofError
    from airseal.trustroot.tlog.entries import verify_bundle_log_entry

    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"first")
    b.write_bytes(b"second")
    for path in (a, b):
        bundle = str(path) + ".json"
        assert airseal("sign-blob", str(path), "--key", "signer", "--bundle", bundle).code == 0
    root = tmp_path / "trusted_root.json"
    assert airseal("log", "trusted-root", "--output", str(root)).code == 0
    raw = json.loads(root.read_text())["tlogs"][0]["publicKey"]["rawBytes"]
    key = load_der_public_key(base64.b64decode(raw))
    first = json.loads((tmp_path / "a.json").read_text())
    second = json.loads((tmp_path / "b.json").read_text())
    site = {"log_key": key, "name": "log.site.example", "origin": "log.site.example"}
    entry, checkpoint = verify_bundle_log_entry(first, **site)
    assert (entry.log_index, checkpoint.size) == (0, 1)
    # An entry lifted from another bundle does not vouch for this one.
    swapped = {**first, "verificationMaterial": second["verificationMaterial"]}
    with pytest.raises(LogProofError, match="different"):
        verify_bundle_log_entry(swapped, **site)
    first["verificationMaterial"]["tlogEntries"] = []
    with pytest.raises(LogProofError, match="0 entries"):
        verify_bundle_log_entry(first, **site)
    with pytest.raises(LogProofError, match=r"expected 'other\.example'"):
        verify_bundle_log_entry(
            second, log_key=key, name="log.site.example", origin="other.example"
        )


def test_the_logs_trusted_root_proves_its_entries_to_verify_blob(airseal, logged_home, tmp_path):
    """`site trusted-root` is what `verify-blob --trusted-root` needs to check a bundle's entry
    from this log (attest's tlog check), instead of saying it was left unchecked."""
    blob = tmp_path / "logged.bin"
    blob.write_bytes(b"logged\n")
    bundle = tmp_path / "logged.sigstore.json"
    assert airseal("sign-blob", str(blob), "--key", "signer", "--bundle", str(bundle)).code == 0
    pub = tmp_path / "signer.pub"
    pub.write_text(airseal("key", "export-public", "signer").stdout)
    root = tmp_path / "trusted_root.json"
    assert airseal("site", "trusted-root", "--output", str(root)).code == 0
    base = ("verify-blob", str(blob), "--key", str(pub), "--bundle", str(bundle))
    unchecked = airseal(*base)
    assert unchecked.code == 0 and "NOT checked" in unchecked.stderr
    checked = airseal(*base, "--trusted-root", str(root))
    assert checked.code == 0, checked.stderr
    assert "NOT checked" not in checked.stderr
