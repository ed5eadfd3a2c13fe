"""Which transparency logs a bundle's entries are in, seen against the site's log.

An action signed with ``--rekor-url`` is logged in that Rekor, not in the site's own log, and an
endpoint that trusts the site log accepts only entries of that log (it knows no other log's
key). Such an action would be refused at every endpoint; the appliance's export says so before
anything is written, and the agent's refusal names the other log, both from this one pure
reading, so they say the same thing about the same bytes.

Only the ``logId`` of each entry is read here: nothing is verified (an entry of another log is
never trusted, whatever it says), so a malformed entry counts as one of an unknown log.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from airseal.trustroot.errors import LogProofError

MAX_NAMED_LOGS: Final = 4
"""Log ids named in a message at most (a hostile bundle may carry many)."""
UNKNOWN_LOG: Final = b""
"""Stands for an entry whose ``logId`` cannot be read."""


@dataclass(frozen=True)
class BundleLogs:
    """A bundle's ``tlogEntries`` by log: how many are the site log's, and which other logs
    the rest are in (distinct log ids, in the bundle's order; :data:`UNKNOWN_LOG` for an
    unreadable one)."""

    site_entries: int
    other_logs: tuple[bytes, ...]

    @property
    def only_other_logs(self) -> bool:
        """Logged, but not in the site log: what endpoints trusting the site log refuse."""
        return self.site_entries == 0 and bool(self.other_logs)

    @property
    def unlogged(self) -> bool:
        return self.site_entries == 0 and not self.other_logs


def bundle_logs(bundle: Any, site_log_id: bytes, *, subject: str | None = None) -> BundleLogs:
    """Read a parsed bundle's ``tlogEntries`` log ids (nothing verified). Raises
    :class:`LogProofError` (naming ``subject``) when ``tlogEntries`` is not a list."""
    material = bundle.get("verificationMaterial") if isinstance(bundle, dict) else None
    items = (material or {}).get("tlogEntries") if isinstance(material, dict) else None
    if items is None:
        items = []
    if not isinstance(items, list):
        raise LogProofError("the bundle's tlogEntries is not a list", subject=subject,
                            check="tlog.entry")
    site = 0
    others: list[bytes] = []
    for item in items:
        found = _log_id_of(item)
        if found == site_log_id and found != UNKNOWN_LOG:
            site += 1
        elif found not in others:
            others.append(found)
    return BundleLogs(site, tuple(others))


def _log_id_of(item: Any) -> bytes:
    try:
        text = item["logId"]["keyId"]
        return base64.b64decode(text, validate=True) if isinstance(text, str) else UNKNOWN_LOG
    except (KeyError, TypeError, binascii.Error, ValueError):
        return UNKNOWN_LOG


def describe_logs(log_ids: tuple[bytes, ...], names: Mapping[bytes, str] | None = None) -> str:
    """``log id 3f2a... (https://rekor.example)``, for at most :data:`MAX_NAMED_LOGS` logs:
    each id in hex (16 digits) with the URL ``names`` gives it, when it does."""
    shown = []
    for log_id in log_ids[:MAX_NAMED_LOGS]:
        if log_id == UNKNOWN_LOG:
            shown.append("a log with no readable log id")
            continue
        name = (names or {}).get(log_id)
        shown.append(f"log id {log_id.hex()[:16]}..." + (f" ({name})" if name else ""))
    more = len(log_ids) - MAX_NAMED_LOGS
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")
