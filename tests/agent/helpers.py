"""Builders for agent tests: a distributor key, payload archives, signed actions, real media.

Media is written by the real export writer (:func:`airseal.media.writer.write_export`); hostile
media
that the writer (rightly) refuses to produce is made by :func:`resign_export`, which edits a
written export and signs a fresh statement over it, as a compromised or buggy appliance could.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from airseal.media import layout
from airseal.media.statement import (
    ActionPayload,
    ActionPredicate,
    Conditions,
    DownloadOptions,
    ExecuteOptions,
    Intake,
    action_statement,
)
from airseal.media.writer import ActionToExport, ExportHeader, write_export
from airseal.trustroot.bundle import bundle_to_json, parse_bundle, sign_statement
from airseal.trustroot.dsse import Statement, Subject
from airseal.trustroot.keys import fingerprint, spki_pem
from airseal.trustroot.signer import PrivateKeySigner

PASSWORD = "agent key password for tests"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Distributor:
    signer: PrivateKeySigner
    pub: Path

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.signer.public_key)

    def sign(self, statement: Statement) -> bytes:
        return bundle_to_json(sign_statement(self.signer, statement))


def new_distributor(directory: Path, name: str = "distributor") -> Distributor:
    signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    directory.mkdir(parents=True, exist_ok=True)
    pub = directory / f"{name}.pub"
    pub.write_bytes(spki_pem(signer.public_key))
    return Distributor(signer, pub)


# -- payloads -------------------------------------------------------------------------------------


def script(body: str) -> bytes:
    return ("#!/bin/sh\nset -e\n" + body + "\n").encode()


def tar_payload(
    path: Path, members: dict[str, bytes], *, modes: dict[str, int] | None = None
) -> Path:
    """A gzip tar of regular files (mode 0755 for *.sh unless given)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = (modes or {}).get(name, 0o755 if name.endswith(".sh") else 0o644)
            tar.addfile(info, io.BytesIO(data))
    return path


def zip_payload(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | (0o755 if name.endswith(".sh") else 0o644)) << 16
            archive.writestr(info, data)
    return path


def hostile_tar(path: Path, entries: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for entry in entries:
            if isinstance(entry, tuple):
                info, data = entry
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(entry)
    return path


def tar_info(
    name: str, kind: bytes = tarfile.REGTYPE, *, link: str = "", mode: int = 0o644
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = mode
    return info


def zip_symlink(path: Path, name: str, target: str, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, target)
        for member, data in (extra or {}).items():
            archive.writestr(member, data)
    return path


# -- actions --------------------------------------------------------------------------------------


@dataclass
class ActionBuild:
    """What to sign: the payload file and the action's fields (defaults: a linux download)."""

    id: str
    payload: Path
    payload_name: str | None = None
    mode: str = "download"
    os: str = "linux"
    version: int = 1
    dest: str | None = None
    file_mode: str = "0644"
    owner: str | None = None
    run: str | None = None
    args: tuple[str, ...] = ()
    run_as: str | None = None
    timeout: int = 60
    reboot: str = "never"
    conditions: dict[str, Any] = field(default_factory=dict)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    signer: PrivateKeySigner | None = None
    raw_predicate_edit: Callable[[dict[str, Any]], None] | None = None


def predicate_for(build: ActionBuild) -> dict[str, Any]:
    data = build.payload.read_bytes()
    now = utcnow()
    name = build.payload_name or build.payload.name
    predicate = ActionPredicate(
        id=build.id,
        version=build.version,
        name=f"(Test){build.id}",
        description="agent test action",
        os=build.os,  # type: ignore[arg-type]
        conditions=Conditions(**build.conditions),
        mode=build.mode,  # type: ignore[arg-type]
        execute=ExecuteOptions(
            run=build.run,
            args=build.args,
            run_as=build.run_as,
            timeout_seconds=build.timeout,
            reboot=build.reboot,  # type: ignore[arg-type]
        )
        if build.mode == "execute"
        else None,
        download=DownloadOptions(
            dest=build.dest or f"/tmp/{name}", file_mode=build.file_mode, owner=build.owner
        )
        if build.mode == "download"
        else None,
        valid_from=build.valid_from or now - timedelta(hours=1),
        valid_until=build.valid_until or now + timedelta(days=30),
        payload=ActionPayload(name=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data)),
        intake=Intake(verified=False, method="none"),
    )
    return predicate.to_json_dict()


def sign_action(build: ActionBuild, distributor: Distributor) -> ActionToExport:
    predicate_json = predicate_for(build)
    if build.raw_predicate_edit is not None:
        build.raw_predicate_edit(predicate_json)
    payload = predicate_json["payload"]
    statement = Statement(
        subject=(Subject(name=payload["name"], digest={"sha256": payload["sha256"]}),),
        predicateType="https://airseal.dev/action/v1",
        predicate=predicate_json,
    )
    signer = build.signer or distributor.signer
    if build.raw_predicate_edit is None:
        # the model round-trips: exactly what the appliance would sign
        statement = action_statement(ActionPredicate.model_validate(predicate_json))
    bundle = bundle_to_json(sign_statement(signer, statement))
    return ActionToExport(
        id=build.id,
        version=build.version,
        name=predicate_json["name"],
        bundle=bundle,
        payload=build.payload,
        payload_name=payload["name"],
    )


# -- media ----------------------------------------------------------------------------------------


def header(
    distributor: Distributor,
    export_id: str,
    sequence: int = 1,
    *,
    created: datetime | None = None,
    expires: datetime | None = None,
) -> ExportHeader:
    created = created or utcnow() - timedelta(minutes=5)
    return ExportHeader(
        export_id=export_id,
        sequence=sequence,
        created=created,
        expires=expires or created + timedelta(days=14),
        appliance_id="appliance-test",
        distributor=distributor.fingerprint,
    )


def write_media(
    mount: Path,
    distributor: Distributor,
    actions: list[ActionToExport],
    *,
    export_id: str = "export-1",
    sequence: int = 1,
    created: datetime | None = None,
    expires: datetime | None = None,
    split_threshold: int = layout.FAT32_MAX_FILE_SIZE,
    **kwargs: Any,
) -> Path:
    mount.mkdir(parents=True, exist_ok=True)
    write_export(
        mount,
        actions,
        header(distributor, export_id, sequence, created=created, expires=expires),
        distributor.sign,
        split_threshold=split_threshold,
        **kwargs,
    )
    return mount


def statement_on(mount: Path) -> Statement:
    data = (mount / layout.MEDIA_DIR / layout.STATEMENT_NAME).read_bytes()
    bundle = parse_bundle(data)
    assert bundle.dsse_envelope is not None
    return Statement.from_payload(bundle.dsse_envelope.payload)


def resign_export(
    mount: Path,
    distributor: Distributor,
    *,
    edit_predicate: Callable[[dict[str, Any]], None] | None = None,
    replace_files: dict[str, bytes] | None = None,
    signer: PrivateKeySigner | None = None,
) -> None:
    """Replace files under ``airseal/`` and sign a new statement listing them as they now are.

    ``replace_files`` maps paths relative to ``airseal/`` to new content; the statement's
    subjects and sizes are recomputed for every listed file, and payload digests/sizes in the
    action list follow the (possibly replaced) payload files.
    """
    root = mount / layout.MEDIA_DIR
    for relative, data in (replace_files or {}).items():
        (root / relative).write_bytes(data)
    statement = statement_on(mount)
    predicate = json.loads(json.dumps(statement.predicate))
    digests = {}
    for entry in predicate["files"]:
        data = (root / entry["path"]).read_bytes()
        entry["size"] = len(data)
        digests[entry["path"]] = hashlib.sha256(data).hexdigest()
    for action in predicate["actions"]:
        parts = action["payload"]["parts"] or [
            f"actions/{action['id']}/payload/{action['payload']['name']}"
        ]
        joined = b"".join((root / p).read_bytes() for p in parts)
        action["payload"]["sha256"] = hashlib.sha256(joined).hexdigest()
        action["payload"]["size"] = len(joined)
    if edit_predicate is not None:
        edit_predicate(predicate)
    new = Statement(
        subject=tuple(Subject(name=p, digest={"sha256": d}) for p, d in digests.items()),
        predicateType=statement.predicate_type,
        predicate=predicate,
    )
    bundle = bundle_to_json(sign_statement(signer or distributor.signer, new))
    (root / layout.STATEMENT_NAME).write_bytes(bundle)


def media_files(mount: Path) -> list[str]:
    """Every file under ``airseal/`` (mount-relative, '/'-separated), receipts excluded."""
    found = []
    for folder, _dirs, files in os.walk(mount / layout.MEDIA_DIR):
        for name in files:
            relative = os.path.relpath(os.path.join(folder, name), mount).replace(os.sep, "/")
            if not relative.startswith("airseal/receipts/"):
                found.append(relative)
    return sorted(found)
