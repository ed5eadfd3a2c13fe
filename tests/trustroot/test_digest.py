"""The shared read loop: same digests as hashlib, limits honoured, buffer on a page boundary."""

from __future__ import annotations

import ctypes
import hashlib
import io
import mmap
import os

import pytest

from airseal.trustroot.digest import CHUNK_SIZE, chunk_buffer, read_chunks, sha256_stream


def _address(view: memoryview) -> int:
    return ctypes.addressof((ctypes.c_char * len(view)).from_buffer(view))


def test_the_buffer_starts_on_a_page_boundary_and_is_writable() -> None:
    # The point of chunk_buffer (see the module docstring): reads into a buffer 1-31 bytes past
    # a page boundary ran four times slower, and malloc puts 1 MiB buffers at +16.
    for size in (4096, 256 * 1024, CHUNK_SIZE):
        view = chunk_buffer(size)
        assert len(view) == size and not view.readonly
        assert _address(view) % mmap.PAGESIZE == 0
        view[-1] = 7
        assert view[-1] == 7


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE])
def test_sha256_stream_matches_hashlib(size: int) -> None:
    data = os.urandom(size)
    seen: list[int] = []
    digest, total = sha256_stream(io.BytesIO(data), on_progress=seen.append)
    assert digest == hashlib.sha256(data).digest()
    assert total == size == sum(seen)
    assert all(n <= CHUNK_SIZE for n in seen)


def test_read_chunks_stops_at_the_limit_and_leaves_the_rest() -> None:
    data = os.urandom(5000)
    stream = io.BytesIO(data)
    got = b"".join(bytes(c) for c in read_chunks(stream, buffer=chunk_buffer(4096), limit=4500))
    assert got == data[:4500]
    assert stream.read() == data[4500:]


def test_read_chunks_of_a_short_stream_yields_what_is_there() -> None:
    data = b"short"
    got = [bytes(c) for c in read_chunks(io.BytesIO(data), limit=100)]
    assert got == [data]
    assert list(read_chunks(io.BytesIO(b""))) == []
