"""Signed actions: what an operator wants done on endpoints, signed once when created.

An action is an in-toto Statement (subject = payload name + SHA-256, predicate =
:class:`airseal.media.statement.ActionPredicate`) in a DSSE Sigstore bundle. Actions are immutable:
editing signs a new version under the same id; revoking marks every version so no later export
carries it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

import sqlite_utils
from pydantic import ValidationError

from airseal.appliance import audit, settings
from airseal.appliance.errors import ApplianceError, UsageError
from airseal.appliance.home import Home
from airseal.appliance.intake import find_file, read_vendor_evidence
from airseal.appliance.keystore import get_key, open_signer
from airseal.appliance.prompts import Prompter
from airseal.appliance.tlog_store import LogAppender
from airseal.media.statement import (
    ActionPayload,
    ActionPredicate,
    Conditions,
    DownloadOptions,
    ExecuteOptions,
    Intake,
    action_statement,
)
from airseal.trustroot.bundle import bundle_to_json, sign_statement

Reboot = Literal["never", "if-requested", "always"]


class ActionNotFound(ApplianceError):
    title = "Action not found"
    hint = "`airseal action list` shows the actions"


@dataclass(frozen=True)
class ActionSpec:
    """The operator's input for an action; every field is optional when editing."""

    name: str | None = None
    description: str | None = None
    label: str | None = None
    os: str | None = None
    mode: str | None = None
    file: str | None = None
    if_missing: tuple[str, ...] | None = None
    if_exists: tuple[str, ...] | None = None
    host: str | None = None
    group: str | None = None
    run: str | None = None
    args: tuple[str, ...] | None = None
    run_as: str | None = None
    timeout: int | None = None
    reboot: str | None = None
    dest: str | None = None
    file_mode: str | None = None
    owner: str | None = None
    valid_days: int | None = None
    require_vendor_signature: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionRecord:
    id: str
    version: int
    name: str
    os: str
    mode: str
    payload_sha256: str
    key_name: str
    created: str
    valid_until: str
    revoked: str | None
    predicate: ActionPredicate
    bundle: str

    def expired(self, now: datetime) -> bool:
        """Past its validity window: endpoints would refuse it, so exports leave it out."""
        return datetime.fromisoformat(self.valid_until) <= now

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "name": self.name,
            "os": self.os,
            "mode": self.mode,
            "payload_sha256": self.payload_sha256,
            "key": self.key_name,
            "created": self.created,
            "valid_until": self.valid_until,
            "revoked": self.revoked,
        }

    def details(self) -> dict[str, Any]:
        """The summary and the signed predicate as stored (wire keys, sorted): what ``action
        show`` prints in the CLI and the TUI."""
        return {**self.summary(), "predicate": _sorted(self.predicate.to_json_dict())}


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


_FLAG_OF_FIELD = {"timeout_seconds": "--timeout", "os": "--os", "valid_until": "--valid-days"}
"""Predicate fields whose flag is not the field's name in kebab case (``file_mode`` is
``--file-mode``): errors name the flag the operator typed, never the model's field."""

_PLAIN_PATTERN = {
    "--file-mode": "must be octal permission bits with a leading 0, e.g. 0644 or 0755",
}


def _validation_message(exc: ValidationError) -> str:
    """pydantic's errors in the operator's words: the flag, then what is wrong with its value
    (no "Value error," prefixes, no model field names, no regular expressions)."""
    parts = []
    for error in exc.errors()[:3]:
        fields = [str(p) for p in error["loc"] if not isinstance(p, int)]
        field = fields[-1] if fields else ""
        flag = _FLAG_OF_FIELD.get(field, f"--{field.replace('_', '-')}") if field else "action"
        message = str(error["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        if error["type"] == "string_pattern_mismatch":
            message = _PLAIN_PATTERN.get(flag, "is not in the expected form")
        parts.append(f"{flag}: {message}")
    return "; ".join(parts)


def build_predicate(
    db: sqlite_utils.Database,
    spec: ActionSpec,
    *,
    action_id: str,
    version: int,
    base: ActionPredicate | None,
    now: datetime,
) -> ActionPredicate:
    """Merge ``spec`` over ``base`` (the previous version) and validate. Raises UsageError."""
    file_ref = spec.file
    if file_ref is None and base is None:
        raise UsageError("--file is required: a stored file's SHA-256 or a path to it")
    if file_ref is not None:
        stored = find_file(db, file_ref)
        payload = ActionPayload(name=stored.name, sha256=stored.sha256, size=stored.size)
        intake = Intake(verified=stored.verified, method=stored.method, signer=stored.signer)
    else:
        assert base is not None
        payload, intake = base.payload, base.intake
    mode: Any = _pick(spec.mode, base.mode if base else None)
    old_exec = (base.execute if base else None) or ExecuteOptions()
    old_down = base.download if base else None
    old_cond = base.conditions if base else Conditions()
    valid_days = (
        spec.valid_days
        if spec.valid_days is not None
        else settings.get_int(db, "action.valid-days")
    )
    try:
        execute = download = None
        if mode == "execute":
            execute = ExecuteOptions(
                run=_pick(spec.run, old_exec.run),
                args=_pick(spec.args, old_exec.args),
                run_as=_pick(spec.run_as, old_exec.run_as),
                timeout_seconds=_pick(spec.timeout, old_exec.timeout_seconds),
                reboot=cast(Reboot, spec.reboot or old_exec.reboot),
            )
        elif mode == "download":
            dest = spec.dest or (old_down.dest if old_down else None)
            if not dest:
                raise UsageError("download actions need --dest (absolute path on the endpoint)")
            download = DownloadOptions(
                dest=dest,
                file_mode=spec.file_mode or (old_down.file_mode if old_down else "0644"),
                owner=_pick(spec.owner, old_down.owner if old_down else None),
            )
        conditions = Conditions(
            if_missing=_pick(spec.if_missing, old_cond.if_missing),
            if_exists=_pick(spec.if_exists, old_cond.if_exists),
            host=_pick(spec.host, old_cond.host),
            group=_pick(spec.group, old_cond.group),
        )
        return ActionPredicate(
            id=action_id,
            version=version,
            name=_pick(spec.name, base.name if base else None),
            description=_pick(spec.description, base.description if base else ""),
            label=_pick(spec.label, base.label if base else ""),
            os=_pick(spec.os, base.os if base else None),
            mode=mode,
            conditions=conditions,
            execute=execute,
            download=download,
            valid_from=now,
            valid_until=now + timedelta(days=valid_days),
            payload=payload,
            intake=intake,
            require_vendor_signature=_pick(
                spec.require_vendor_signature, base.require_vendor_signature if base else False
            ),
        )
    except ValidationError as exc:
        raise UsageError(_validation_message(exc), subject="action") from None


def _check_vendor_evidence(home: Home, predicate: ActionPredicate) -> None:
    """An action that requires the vendor's signature must have one that can travel."""
    if predicate.require_vendor_signature and (
        read_vendor_evidence(home, predicate.payload.sha256) is None
    ):
        raise UsageError(
            f"{predicate.payload.name} has no vendor signature that endpoints can check "
            "(it was added without one, or with an Ed25519 signature over the whole file)",
            subject=predicate.payload.name,
            hint="add the file again with its vendor signature (`airseal file add --bundle ...`),"
            " or drop --require-vendor-signature",
        )


def _pick(value: Any, previous: Any) -> Any:
    """The operator's value when given, else the previous version's."""
    return value if value is not None else previous


def _sign_and_store(
    home: Home,
    db: sqlite_utils.Database,
    predicate: ActionPredicate,
    key_name: str,
    prompter: Prompter,
    audit_action: str,
) -> ActionRecord:
    record = get_key(db, key_name)
    with open_signer(home, record, prompter) as signer, LogAppender(home, db, prompter) as log:
        bundle = log.attach(
            bundle_to_json(sign_statement(signer, action_statement(predicate))),
            signer.public_key,
            f"action {predicate.id} v{predicate.version}",
        )
    row = {
        "id": predicate.id,
        "version": predicate.version,
        "name": predicate.name,
        "os": predicate.os,
        "mode": predicate.mode,
        "payload_sha256": predicate.payload.sha256,
        "key_name": key_name,
        "created": predicate.valid_from.isoformat(),
        "valid_until": predicate.valid_until.isoformat(),
        "revoked": None,
        "predicate": json.dumps(predicate.to_json_dict(), sort_keys=True),
        "bundle": bundle.decode(),
    }
    db.table("actions").insert(row)
    audit.record(
        home,
        db,
        audit_action,
        predicate.id,
        {
            "version": predicate.version,
            "name": predicate.name,
            "key": key_name,
            "payload": predicate.payload.sha256,
        },
    )
    return _record(row)


def create_action(
    home: Home,
    db: sqlite_utils.Database,
    spec: ActionSpec,
    key_name: str,
    prompter: Prompter,
    *,
    now: datetime | None = None,
) -> ActionRecord:
    get_key(db, key_name)  # fail before asking anything
    for required in ("name", "os", "mode"):
        if getattr(spec, required) is None:
            raise UsageError(f"--{required} is required")
    action_id = uuid.uuid4().hex[:12]
    predicate = build_predicate(
        db, spec, action_id=action_id, version=1, base=None, now=now or datetime.now(UTC)
    )
    _check_vendor_evidence(home, predicate)
    return _sign_and_store(home, db, predicate, key_name, prompter, "action.create")


def edit_action(
    home: Home,
    db: sqlite_utils.Database,
    action_id: str,
    spec: ActionSpec,
    key_name: str | None,
    prompter: Prompter,
    *,
    now: datetime | None = None,
) -> ActionRecord:
    """Sign a new version of an action; earlier versions stay as they were signed."""
    latest = get_action(db, action_id)
    if latest.revoked:
        raise UsageError(f"action {action_id} is revoked", hint="create a new action instead")
    predicate = build_predicate(
        db,
        spec,
        action_id=action_id,
        version=latest.version + 1,
        base=latest.predicate,
        now=now or datetime.now(UTC),
    )
    _check_vendor_evidence(home, predicate)
    return _sign_and_store(
        home, db, predicate, key_name or latest.key_name, prompter, "action.edit"
    )


def _record(row: dict[str, Any]) -> ActionRecord:
    predicate = ActionPredicate.model_validate(json.loads(row["predicate"]))
    return ActionRecord(**{**row, "predicate": predicate})


def list_actions(
    db: sqlite_utils.Database, *, include_revoked: bool = False, all_versions: bool = False
) -> list[ActionRecord]:
    rows = db.execute(
        "SELECT * FROM actions a WHERE (? OR version = (SELECT MAX(version) FROM actions b "
        "WHERE b.id = a.id)) AND (? OR revoked IS NULL) ORDER BY created, id, version",
        [all_versions, include_revoked],
    )
    columns = [c[0] for c in rows.description]
    return [_record(dict(zip(columns, r, strict=True))) for r in rows.fetchall()]


def current_actions(db: sqlite_utils.Database, now: datetime) -> list[ActionRecord]:
    """The latest version of every action neither revoked nor expired: what an export carries."""
    return [record for record in list_actions(db) if not record.expired(now)]


def get_action(
    db: sqlite_utils.Database, action_id: str, version: int | None = None
) -> ActionRecord:
    query = "SELECT * FROM actions WHERE id = ?" + (" AND version = ?" if version else "")  # noqa: S608
    query += " ORDER BY version DESC LIMIT 1"
    cursor = db.execute(query, [action_id, version] if version else [action_id])
    row = cursor.fetchone()
    if row is None:
        raise ActionNotFound(
            f"no action {action_id}" + (f" version {version}" if version else ""), subject=action_id
        )
    return _record(dict(zip([c[0] for c in cursor.description], row, strict=True)))


def revoke_action(home: Home, db: sqlite_utils.Database, action_id: str, reason: str) -> int:
    """Mark every version revoked; returns how many versions were revoked."""
    get_action(db, action_id)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    cursor = db.execute(
        "UPDATE actions SET revoked = ? WHERE id = ? AND revoked IS NULL", [when, action_id]
    )
    audit.record(home, db, "action.revoke", action_id, {"reason": reason})
    return int(cursor.rowcount)


def approve_action(
    home: Home, db: sqlite_utils.Database, action_id: str, key_name: str, prompter: Prompter,
) -> ActionRecord:
    """Add ``key_name``'s signature to the newest version's DSSE envelope (the two-person rule:
    a second distributor approves what the first signed). The same key never signs twice."""
    from airseal.appliance.keystore import get_key, open_signer
    from airseal.trustroot.bundle import add_statement_signature, parse_bundle
    from airseal.trustroot.verify import dsse_signers

    record = get_action(db, action_id)
    if record.revoked:
        raise UsageError(f"action {action_id} is revoked", subject=action_id)
    key = get_key(db, key_name)
    bundle = parse_bundle(record.bundle.encode(), subject=f"action {action_id}")
    if dsse_signers({key.fingerprint: key.public_key}, bundle):
        raise UsageError(f"key {key_name} already signed action {action_id} v{record.version}",
                         subject="--key", hint="a second approval needs another distributor")
    with open_signer(home, key, prompter) as signer, LogAppender(home, db, prompter) as log:
        approved = add_statement_signature(signer, bundle)
        assert approved.dsse_envelope is not None
        approved_json = log.attach_signature(
            bundle_to_json(approved), len(approved.dsse_envelope.signatures) - 1,
            signer.public_key,
            f"action {action_id} v{record.version} approval {key.fingerprint[:16]}",
        )
    db.execute("UPDATE actions SET bundle = ? WHERE id = ? AND version = ?",
               [approved_json.decode(), action_id, record.version])
    db.conn.commit()
    audit.record(home, db, "action.approve", action_id,
                 {"version": record.version, "key": key_name, "fingerprint": key.fingerprint,
                  "signatures": len(approved.dsse_envelope.signatures)
                  if approved.dsse_envelope else 0})
    return get_action(db, action_id, record.version)
