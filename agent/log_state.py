"""What the endpoint knows of the site's transparency log: which log it trusts, and the last
checkpoint it verified.

- ``<state>/log/trust.json``: the log key (PEM) and origin pinned by
  ``airseal-agent enroll --log-key FILE --log-origin HOST`` (pinned mode; in TUF mode the log
  comes from the site's ``airseal/trusted_root.json`` target instead, verified by TUF).
- ``<state>/log/checkpoint.json``: origin, size and root hash (and the signed note, as evidence)
  of the last checkpoint an *accepted* import proved; the next media must be consistent with it.
  Written atomically (temp file, fsync, rename) only after the import was accepted.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from airseal._internal.atomic import read_capped, write_atomic
from airseal.agent.errors import EnrolmentError, StateError
from airseal.errors import AirsealError
from airseal.trustroot.keys import load_public_key, spki_pem
from airseal.trustroot.tlog.checkpoint import Checkpoint, check_origin
from airseal.trustroot.tlog.media_proofs import LogTrust

LOG_DIR = "log"
TRUST_NAME = "trust.json"
CHECKPOINT_NAME = "checkpoint.json"
_MAX = 128 * 1024


def _dir(state_root: Path) -> Path:
    return Path(state_root) / LOG_DIR


def enroll_log_key(state_root: Path, pem: bytes, origin: str, *, subject: str) -> LogTrust:
    """Pin the log key and origin (the log must then prove every media: fail closed)."""
    try:
        key = load_public_key(pem, subject=subject)
        check_origin(origin)
    except ValueError as exc:
        raise EnrolmentError(f"--log-origin: {exc}", subject=origin) from None
    except AirsealError as exc:
        raise EnrolmentError(exc.detail, subject=subject) from None
    trust = LogTrust(key, origin, source="the log key enrolled on this endpoint")
    folder = _dir(state_root)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(folder / TRUST_NAME, (json.dumps(
        {"schemaVersion": 1, "origin": origin, "publicKey": spki_pem(key).decode()},
        indent=2) + "\n").encode(), mode=0o600)
    return trust


def pinned_log(state_root: Path) -> LogTrust | None:
    """The log pinned at enrolment, if any (required: an enrolled log is always checked)."""
    path = _dir(state_root) / TRUST_NAME
    if not path.is_file():
        return None
    data = _read(path)
    key = load_public_key(str(data["publicKey"]).encode(), subject=str(path))
    return LogTrust(key, str(data["origin"]), source="the log key enrolled on this endpoint")


def last_checkpoint(state_root: Path) -> Checkpoint | None:
    path = _dir(state_root) / CHECKPOINT_NAME
    if not path.is_file():
        return None
    data = _read(path)
    try:
        return Checkpoint(str(data["origin"]), int(data["size"]),
                          base64.b64decode(str(data["rootHash"])))
    except (KeyError, ValueError, TypeError):
        raise StateError("the stored log checkpoint is damaged", subject=str(path),
                         hint="restore the endpoint's state from backup") from None


def store_checkpoint(state_root: Path, checkpoint: Checkpoint, note: str) -> None:
    folder = _dir(state_root)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(folder / CHECKPOINT_NAME, (json.dumps({
        "schemaVersion": 1, "origin": checkpoint.origin, "size": checkpoint.size,
        "rootHash": base64.b64encode(checkpoint.root_hash).decode(), "note": note,
    }, indent=2) + "\n").encode(), mode=0o600)


def status_json(state_root: Path) -> dict[str, Any] | None:
    """What `airseal-agent status` shows of the log: the pinned origin (pinned mode; in TUF
    mode the log comes from the media's site target) and the last checkpoint an accepted import
    proved. ``None`` when the endpoint has never been told of a log."""
    pinned = pinned_log(state_root)
    seen = last_checkpoint(state_root)
    if pinned is None and seen is None:
        return None
    return {
        "pinnedOrigin": pinned.origin if pinned is not None else None,
        "checkpoint": None if seen is None else {
            "origin": seen.origin, "size": seen.size,
            "rootHash": base64.b64encode(seen.root_hash).decode(),
        },
    }


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(read_capped(path, _MAX))
    except (OSError, ValueError, AirsealError) as exc:
        raise StateError(f"cannot be read ({exc})", subject=str(path)) from None
    if not isinstance(data, dict):
        raise StateError("is not a JSON object", subject=str(path))
    return data
