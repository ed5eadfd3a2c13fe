"""Builders for signed actions and exports, with a throwaway in-memory signing key."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from airseal.media.statement import (
    ActionPayload,
    ActionPredicate,
    DownloadOptions,
    ExecuteOptions,
    Intake,
    action_statement,
)
from airseal.media.writer import ActionToExport, ExportHeader, SignCallback
from airseal.trustroot.bundle import bundle_to_json, sign_statement
from airseal.trustroot.dsse import Statement
from airseal.trustroot.keys import fingerprint
from airseal.trustroot.signer import PrivateKeySigner

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def new_signer() -> PrivateKeySigner:
    return PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))


def signing_callback(signer: PrivateKeySigner) -> SignCallback:
    def sign(statement: Statement) -> bytes:
        return bundle_to_json(sign_statement(signer, statement))

    return sign


def write_payload(path: Path, size: int, *, seed: int = 0) -> Path:
    """A payload of ``size`` pseudo-random bytes (deterministic per seed, fast to make)."""
    block = hashlib.sha256(f"seed-{seed}".encode()).digest() * 2048  # 64 KiB
    with open(path, "wb") as f:
        remaining = size
        counter = 0
        while remaining:
            chunk = hashlib.sha256(counter.to_bytes(8, "big") + block[:32]).digest() + block
            piece = chunk[: min(len(chunk), remaining)]
            f.write(piece)
            remaining -= len(piece)
            counter += 1
    return path


def action_predicate(
    action_id: str, payload: Path, payload_name: str, *, version: int = 1, mode: str = "download"
) -> ActionPredicate:
    with open(payload, "rb") as f:  # streamed: payloads above 4 GiB are tested too
        sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    return ActionPredicate(
        id=action_id,
        version=version,
        name=f"(Install){action_id}",
        description="test action",
        label="test",
        os="linux",
        mode=mode,  # type: ignore[arg-type]
        download=DownloadOptions(dest=f"/opt/airseal/{payload_name}")
        if mode == "download"
        else None,
        execute=ExecuteOptions(args=("--quiet",)) if mode == "execute" else None,
        valid_from=NOW,
        valid_until=NOW + timedelta(days=30),
        payload=ActionPayload(
            name=payload_name, sha256=sha256, size=payload.stat().st_size
        ),
        intake=Intake(verified=True, method="cosign-signature", signer="vendor"),
    )


def make_action(
    signer: PrivateKeySigner,
    workdir: Path,
    action_id: str,
    size: int,
    *,
    payload_name: str | None = None,
    version: int = 1,
    seed: int = 0,
) -> ActionToExport:
    """A payload file in ``workdir`` and its signed action bundle."""
    name = payload_name or f"{action_id}.bin"
    source_dir = workdir / "store"
    source_dir.mkdir(exist_ok=True)
    payload = write_payload(
        source_dir / f"{action_id}-{version}-{os.getpid()}.src", size, seed=seed
    )
    predicate = action_predicate(action_id, payload, name, version=version)
    bundle = bundle_to_json(sign_statement(signer, action_statement(predicate)))
    return ActionToExport(
        id=action_id,
        version=version,
        name=predicate.name,
        bundle=bundle,
        payload=payload,
        payload_name=name,
    )


def export_header(
    signer: PrivateKeySigner, export_id: str, sequence: int = 1, *, days: int = 14
) -> ExportHeader:
    return ExportHeader(
        export_id=export_id,
        sequence=sequence,
        created=NOW,
        expires=NOW + timedelta(days=days),
        appliance_id="appliance-1",
        distributor=fingerprint(signer.public_key),
    )


def standard_actions(
    signer: PrivateKeySigner,
    workdir: Path,
    *,
    seed: int = 0,
    version: int = 1,
    split_size: int = 300_000,
) -> list[ActionToExport]:
    """Three actions: a payload that is split at 128 KiB, a small one, and an empty one."""
    return [
        make_action(signer, workdir, "act-split", split_size, version=version, seed=seed + 1),
        make_action(signer, workdir, "act-small", 5_000, version=version, seed=seed + 2),
        make_action(signer, workdir, "act-empty", 0, version=version, seed=seed + 3),
    ]


SPLIT_THRESHOLD = 128 * 1024
