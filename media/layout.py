"""Where things live on the media (DESIGN.md, "Media").

```
<mount>/airseal/
  export.sigstore.json                      signed export statement (the commit point)
  actions/<action-id>/action.sigstore.json  signed action statement
  actions/<action-id>/vendor.json           the vendor's signature over the payload (optional)
  actions/<action-id>/payload/<name>        payload, or <name>.part000, .part001 ... when split
  log/checkpoint, log/proofs.json, log/hashes  the transparency log's checkpoint and proof (listed;
                                            names in airseal.trustroot.tlog.media_proofs)
  tuf/...                                   the site TUF repository (site mode; listed)
  receipts/<agent-id>/<export-id>.json      written by agents; the only unlisted subtree
<mount>/.airseal-staging-<export-id>/       an export being written (leftover = interrupted)
<mount>/.airseal-old-<export-id>/           the export being replaced (leftover = interrupted)
<mount>/airseal-repair/airseal*.par2         PAR2 repair data for the files above (optional)
```
Paths inside the statement are relative to ``airseal/``; paths in reports are relative to the
mount point.
"""

from __future__ import annotations

import re
from typing import Final

MEDIA_DIR: Final = "airseal"
STATEMENT_NAME: Final = "export.sigstore.json"
ACTIONS_DIR: Final = "actions"
ACTION_BUNDLE_NAME: Final = "action.sigstore.json"
PAYLOAD_DIR: Final = "payload"
RECEIPTS_DIR: Final = "receipts"
STAGING_PREFIX: Final = ".airseal-staging-"
OLD_PREFIX: Final = ".airseal-old-"
REPAIR_DIR: Final = "airseal-repair"
"""PAR2 repair data (:mod:`airseal.media.parity`): outside ``airseal/``, so readers ignore it."""
REPAIR_INDEX: Final = "airseal.par2"

FAT32_MAX_FILE_SIZE: Final = 4 * 1024**3 - 1
"""The largest file FAT32 can hold; payloads above the split threshold are written in parts."""

PART_SUFFIX_DIGITS: Final = 3
MAX_PARTS: Final = 10**PART_SUFFIX_DIGITS

IDENTIFIER_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""Export, action, agent and appliance ids: short, ASCII, safe as a FAT name on every OS."""
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


def is_identifier(value: str) -> bool:
    return bool(_IDENTIFIER.match(value)) and not value.endswith(".")


def action_dir(action_id: str) -> str:
    return f"{ACTIONS_DIR}/{action_id}"


def action_bundle_path(action_id: str) -> str:
    return f"{ACTIONS_DIR}/{action_id}/{ACTION_BUNDLE_NAME}"


def vendor_evidence_path(action_id: str) -> str:
    """The vendor's signature carried with the action (:mod:`airseal.media.vendor`)."""
    return f"{ACTIONS_DIR}/{action_id}/vendor.json"


def payload_path(action_id: str, payload_name: str) -> str:
    return f"{ACTIONS_DIR}/{action_id}/{PAYLOAD_DIR}/{payload_name}"


def part_name(payload_name: str, index: int) -> str:
    return f"{payload_name}.part{index:0{PART_SUFFIX_DIGITS}d}"


def part_paths(action_id: str, payload_name: str, count: int) -> list[str]:
    """Paths of the ``count`` parts of a split payload, in joining order."""
    return [payload_path(action_id, part_name(payload_name, i)) for i in range(count)]


def on_mount(relative_to_media: str) -> str:
    """A statement path (relative to ``airseal/``) as a path relative to the mount point."""
    return f"{MEDIA_DIR}/{relative_to_media}"


def staging_dir_name(export_id: str) -> str:
    return f"{STAGING_PREFIX}{export_id}"


def old_dir_name(export_id: str) -> str:
    return f"{OLD_PREFIX}{export_id}"


def is_leftover_name(name: str) -> bool:
    """True for a top-level folder left behind by an interrupted export."""
    folded = name.casefold()  # FAT32 and exFAT ignore case
    return folded.startswith((STAGING_PREFIX, OLD_PREFIX))
