"""The real public-good Sigstore TUF repository, laid out as its CDN serves it.

``/work/shared/interop/sigstore-root-signing`` (see its README) is github.com/sigstore/root-signing
at commit 60cf2ce8 (2026-08-21): git keeps un-prefixed names, the CDN serves consistent snapshots
(``N.root.json``, ``N.snapshot.json``, ``N.targets.json``, ``N.<role>.json``, and every target as
``targets/<sha256>.<name>`` and ``targets/<sha512>.<name>``). :func:`lay_out_cdn` builds that tree.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

UPSTREAM = Path("/work/shared/interop/sigstore-root-signing")
INSIDE_VALIDITY = datetime(2026, 8, 22, tzinfo=UTC)
"""Timestamp v762 was signed 2026-08-21 and expires 2026-08-28T19:25:56Z."""
INSIDE_VALIDITY_ENV = "2026-08-22T00:00:00Z"


def _version(path: Path) -> int:
    return int(json.loads(path.read_bytes())["signed"]["version"])


def lay_out_cdn(to: Path) -> Path:
    """Write the CDN layout of the upstream copy into ``to`` (created) and return it."""
    metadata = UPSTREAM / "metadata"
    to.mkdir(parents=True)
    for root in (metadata / "root_history").glob("*.root.json"):
        shutil.copyfile(root, to / root.name)
    shutil.copyfile(metadata / "timestamp.json", to / "timestamp.json")
    for role in ("snapshot", "targets", "registry.npmjs.org"):
        source = metadata / f"{role}.json"
        shutil.copyfile(source, to / f"{_version(source)}.{role}.json")
    for target in (UPSTREAM / "targets").rglob("*"):
        if not target.is_file():
            continue
        relative = target.relative_to(UPSTREAM / "targets")
        data = target.read_bytes()
        for algorithm in ("sha256", "sha512"):
            prefixed = to / "targets" / relative.parent / (
                f"{hashlib.new(algorithm, data).hexdigest()}.{relative.name}"
            )
            prefixed.parent.mkdir(parents=True, exist_ok=True)
            prefixed.write_bytes(data)
    return to


def upstream_target(name: str) -> bytes:
    return (UPSTREAM / "targets" / name).read_bytes()
