"""Streamed SHA-256 over files of any size in constant memory.

One preallocated buffer is filled with ``readinto`` and hashed through a memoryview, so memory
stays at one chunk whatever the file size; 1 MiB chunks let hashlib run at OpenSSL's speed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import BinaryIO

CHUNK_SIZE = 1024 * 1024

ProgressCallback = Callable[[int], None]
"""Called with the number of bytes just processed."""


def sha256_stream(
    stream: BinaryIO,
    *,
    on_progress: ProgressCallback | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[bytes, int]:
    """SHA-256 digest and byte count of everything left in ``stream``."""
    digest = hashlib.sha256()
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    total = 0
    while True:
        n = stream.readinto(view)  # type: ignore[attr-defined]
        if not n:
            break
        digest.update(view[:n])
        total += n
        if on_progress is not None:
            on_progress(n)
    return digest.digest(), total
