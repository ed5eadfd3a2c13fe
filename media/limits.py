"""Bounds on everything read from media (python-tuf's ``UpdaterConfig`` limits, for sticks).

Media is hostile input: every read is capped *before* the bytes are parsed, every list has a
maximum length, and walking the media stops at a fixed number of entries and a fixed depth.
"""

from __future__ import annotations

from typing import Final

MiB: Final = 1024 * 1024

MAX_EXPORT_BUNDLE_BYTES: Final = 8 * MiB
MAX_ACTION_BUNDLE_BYTES: Final = 1 * MiB
MAX_RECEIPT_BYTES: Final = 256 * 1024

MAX_SUBJECTS: Final = 10_000
"""Files one export statement may list."""
MAX_ACTIONS: Final = 1_000
MAX_RECEIPTS: Final = 10_000
MAX_ENTRIES: Final = MAX_SUBJECTS + MAX_RECEIPTS + 2_000
"""Entries (files and folders) a reader walks under ``airseal/`` before giving up."""
MAX_TOP_LEVEL_ENTRIES: Final = 10_000
MAX_DEPTH: Final = 8

MAX_PAYLOAD_BYTES: Final = 1 << 44
"""16 TiB: far above any real payload, low enough that sizes stay exact everywhere."""
MAX_SEQUENCE: Final = 2**53 - 1
"""The largest export sequence or action version: exact in every JSON reader (IEEE doubles) and
far inside SQLite's 64-bit INTEGER, where the agent and the appliance record them."""
MIN_EXIT_CODE: Final = -(2**31)
MAX_EXIT_CODE: Final = 2**32 - 1
"""Exit codes as any OS reports them (Windows: 32 bits unsigned; POSIX: negative for signals)."""
MAX_ARGS: Final = 256
MAX_CONDITION_PATHS: Final = 64
