"""Witness cosignatures the appliance holds for its log's checkpoints.

Witness stations are other machines (``airseal witness cosign`` there). The operator carries
the latest checkpoint to them and their cosigned notes back; ``import_cosigned`` keeps the note
under ``<home>/log/cosigned`` once its log signature verifies and its checkpoint is one this log
signed (the caller first checks the lines of the witnesses the site policy names: a bad one is
refused, not kept), merging the cosignatures of several witnesses on the same checkpoint.
An export carries the cosigned note only while it is still the latest checkpoint: cosignatures
of an older size say nothing about entries appended since, so media would then lack the quorum
and endpoints refuse it.
"""

from __future__ import annotations

from pathlib import Path

from airseal.appliance.home import Home
from airseal.appliance.tlog_store import LogError, TransparencyLog
from airseal.trustroot.tlog.checkpoint import SignedNote, verify_checkpoint

COSIGNED_NAME = "cosigned"


def cosigned_path(home: Home) -> Path:
    return home.root / "log" / COSIGNED_NAME


def cosigned_note(home: Home, log: TransparencyLog) -> str | None:
    """The latest checkpoint with the witnesses' cosignatures, if they cosigned that one."""
    path = cosigned_path(home)
    if not path.is_file():
        return None
    text = path.read_text("utf-8")
    latest = log.latest_checkpoint()
    if SignedNote.parse(text).body != SignedNote.parse(latest.note).body:
        return None
    return text


def import_cosigned(home: Home, log: TransparencyLog, text: str, *, subject: str) -> str:
    """Merge the cosignature lines of ``text`` (a note of one of this log's checkpoints) into
    the kept cosigned note; returns it."""
    from airseal._internal.atomic import write_atomic

    info = log.info
    checkpoint = verify_checkpoint(text, key=info.public_key, name=info.origin,
                                   origin=info.origin)
    stored = log.checkpoint_at(checkpoint.size)
    if stored.checkpoint.root_hash != checkpoint.root_hash:
        raise LogError(f"the cosigned checkpoint of size {checkpoint.size} has another root "
                       "than this log's", subject=subject, check="tlog.fork")
    note = SignedNote.parse(text)
    path = cosigned_path(home)
    merged = list(SignedNote.parse(stored.note).signatures)
    if path.is_file():
        kept = SignedNote.parse(path.read_text("utf-8"))
        if kept.body == note.body:
            merged += [s for s in kept.signatures if s not in merged]
    merged += [s for s in note.signatures if s not in merged]
    out = SignedNote(note.body, tuple(merged)).text()
    path.parent.mkdir(mode=0o700, exist_ok=True)
    write_atomic(path, out.encode("utf-8"))
    return out
