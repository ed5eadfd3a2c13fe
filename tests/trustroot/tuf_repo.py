"""A small TUF repository signed here, for what the real upstream copy cannot show.

The public-good copy has one timestamp, one snapshot and one targets version, so rollbacks and
mixed copies (files of two repository versions in one folder) need a repository that publishes
several versions: this one is built with python-tuf's Metadata API and fresh Ed25519 keys, laid
out like the CDN (consistent snapshots, ``N.<role>.json``, ``targets/<sha256>.<name>``), with
the real upstream ``trusted_root.json`` as its target so that an import of it is usable.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Role,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)

ROLES = ("root", "timestamp", "snapshot", "targets")


class SignedRepository:
    def __init__(self, target_files: dict[str, bytes], *, expires_in: timedelta | None = None):
        self.signers = {role: CryptoSigner.generate_ed25519() for role in ROLES}
        self.expires = datetime.now(UTC).replace(microsecond=0) + (
            expires_in or timedelta(days=365)
        )
        self.target_files = target_files
        root = Root(expires=self.expires, consistent_snapshot=True)
        for role, signer in self.signers.items():
            root.add_key(signer.public_key, role)
        self.roots: list[bytes] = [self._sign(root, ["root"])]
        self.versions: dict[int, dict[str, bytes]] = {}

    def _sign(self, signed: object, roles: list[str]) -> bytes:
        metadata = Metadata(signed)  # type: ignore[arg-type]
        for role in roles:
            metadata.sign(self.signers[role], append=True)
        return metadata.to_bytes()

    @property
    def root(self) -> bytes:
        return self.roots[-1]

    def rotate_root(self) -> None:
        """Root v+1 with a new root key, signed by the old and the new key (TUF 5.3.4)."""
        current = Metadata[Root].from_bytes(self.root).signed
        old = self.signers["root"]
        new = CryptoSigner.generate_ed25519()
        current.revoke_key(old.public_key.keyid, "root")
        current.add_key(new.public_key, "root")
        current.version += 1
        metadata = Metadata(current)
        metadata.sign(old, append=True)
        metadata.sign(new, append=True)
        self.signers["root"] = new
        self.roots.append(metadata.to_bytes())

    def publish(self, version: int, *, snapshot_version: int | None = None) -> dict[str, bytes]:
        """Timestamp, snapshot and targets of repository version ``version`` (as the CDN names
        them); ``snapshot_version`` lets the timestamp name another snapshot (rollback)."""
        targets = Targets(version=version, expires=self.expires)
        files: dict[str, bytes] = {}
        for name, data in self.target_files.items():
            info = TargetFile.from_data(name, data, ["sha256", "sha512"])
            targets.targets[name] = info
            for digest in info.hashes.values():
                files[f"targets/{digest}.{name}"] = data
        snapshot = Snapshot(version=version, expires=self.expires)
        snapshot.meta["targets.json"] = MetaFile(version=version)
        timestamp = Timestamp(version=version, expires=self.expires)
        timestamp.snapshot_meta = MetaFile(version=snapshot_version or version)
        files[f"{version}.targets.json"] = self._sign(targets, ["targets"])
        files[f"{version}.snapshot.json"] = self._sign(snapshot, ["snapshot"])
        files["timestamp.json"] = self._sign(timestamp, ["timestamp"])
        self.versions[version] = files
        return files

    def tree(self, version: int) -> dict[str, bytes]:
        """Everything a CDN serves at repository version ``version`` (every root, too)."""
        files = dict(self.versions[version])
        for root in self.roots:
            files[f"{Metadata[Root].from_bytes(root).signed.version}.root.json"] = root
        return files


def write_tree(files: dict[str, bytes], to: Path) -> Path:
    for path, data in files.items():
        target = to / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return to


__all__ = ["Role", "SignedRepository", "write_tree"]
