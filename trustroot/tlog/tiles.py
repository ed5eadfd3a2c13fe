"""The C2SP tlog-tiles layout: tile paths and node hashes read out of tiles.

A tile at level ``L`` and index ``N`` holds up to 256 hashes of tree level ``8 * L``, nodes
``N * 256 ...``; a partial tile of width ``W`` is served at ``<path>.p/<W>``. Node hashes of the
seven levels in between are rebuilt from the tile below them (at most 127 hashes), so any subtree
hash costs one tile read. Hand-written because the layout is a few lines of arithmetic and the only
implementations are Go (``golang.org/x/mod/sumdb/tlog``, ``transparency-dev/tessera``).
"""

from __future__ import annotations

from collections.abc import Callable

from airseal.trustroot.errors import LogProofError
from airseal.trustroot.tlog.merkle import HASH_SIZE, NodeReader, node_hash

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT

TileReader = Callable[[int, int], bytes]
"""``read_tile(level, index)``: the concatenated hashes of that tile (full or partial)."""


def index_path(n: int) -> str:
    """C2SP's encoding of a tile index: groups of three digits, all but the last prefixed ``x``."""
    if n < 0:
        raise ValueError("negative tile index")
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]``."""
    if not 0 < width <= TILE_WIDTH:
        raise ValueError(f"tile width {width} is not in 1..{TILE_WIDTH}")
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{index_path(index)}{suffix}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>[.p/<W>]``: the entry bundle of leaves ``index * 256 ...``."""
    if not 0 < width <= TILE_WIDTH:
        raise ValueError(f"tile width {width} is not in 1..{TILE_WIDTH}")
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/entries/{index_path(index)}{suffix}"


def tiles_for_size(size: int) -> list[tuple[int, int, int]]:
    """Every tile ``(level, index, width)`` a tree of ``size`` leaves publishes."""
    out: list[tuple[int, int, int]] = []
    level, count = 0, size
    while count > 0:
        full, rest = divmod(count, TILE_WIDTH)
        out.extend((level, i, TILE_WIDTH) for i in range(full))
        if rest:
            out.append((level, full, rest))
        level, count = level + 1, full
    return out


def subtree_of_hashes(hashes: list[bytes]) -> bytes:
    """The root of a complete subtree given its (power-of-two count of) bottom hashes."""
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


INNER_SLOTS = tuple(TILE_WIDTH >> k for k in range(1, TILE_HEIGHT))
"""Slots per inner level (128, 64, ..., 2) of :func:`inner_levels`."""
INNER_OFFSETS = tuple(sum(INNER_SLOTS[:k]) for k in range(len(INNER_SLOTS)))
INNER_SIZE = sum(INNER_SLOTS) * HASH_SIZE


def inner_levels(tile: bytes) -> bytes:
    """The node levels 1..7 inside a tile, in fixed slots (zeros where a node is incomplete)."""
    out = bytearray(INNER_SIZE)
    level = [tile[i : i + HASH_SIZE] for i in range(0, len(tile), HASH_SIZE)]
    for k in range(1, TILE_HEIGHT):
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        base = INNER_OFFSETS[k - 1] * HASH_SIZE
        out[base : base + len(level) * HASH_SIZE] = b"".join(level)
    return bytes(out)


InnerReader = Callable[[int, int], tuple[bytes, bytes]]
"""``read(level, index)``: a tile and its :func:`inner_levels`."""


def stored_node_reader(read: InnerReader) -> NodeReader:
    """A :data:`NodeReader` over tiles stored with their inner levels: every node is a slice.
    Caches the tiles it read (use one per proof)."""
    cache: dict[tuple[int, int], tuple[bytes, bytes]] = {}

    def node(level: int, index: int) -> bytes:
        tile_level, sub = divmod(level, TILE_HEIGHT)
        tile_index, offset = divmod(index << sub, TILE_WIDTH)
        key = (tile_level, tile_index)
        pair = cache.get(key)
        if pair is None:
            pair = cache[key] = read(tile_level, tile_index)
        tile, inner = pair
        if len(tile) < (offset + (1 << sub)) * HASH_SIZE:
            raise LogProofError(
                f"tile {tile_path(tile_level, tile_index)} holds {len(tile) // HASH_SIZE} hashes, "
                f"node ({level}, {index}) needs more"
            )
        if sub == 0:
            return tile[offset * HASH_SIZE : (offset + 1) * HASH_SIZE]
        at = (INNER_OFFSETS[sub - 1] + (offset >> sub)) * HASH_SIZE
        return inner[at : at + HASH_SIZE]

    return node


def node_reader(read_tile: TileReader) -> NodeReader:
    """A :data:`NodeReader` over tiles; caches the tiles it read (use one per proof)."""
    cache: dict[tuple[int, int], bytes] = {}

    def node(level: int, index: int) -> bytes:
        tile_level, sub = divmod(level, TILE_HEIGHT)
        first = index << sub
        tile_index, offset = divmod(first, TILE_WIDTH)
        key = (tile_level, tile_index)
        blob = cache.get(key)
        if blob is None:
            blob = cache[key] = read_tile(tile_level, tile_index)
        count = 1 << sub
        end = (offset + count) * HASH_SIZE
        if len(blob) < end:
            raise LogProofError(
                f"tile {tile_path(tile_level, tile_index)} holds {len(blob) // HASH_SIZE} hashes, "
                f"node ({level}, {index}) needs {end // HASH_SIZE}"
            )
        hashes = [blob[i : i + HASH_SIZE] for i in range(offset * HASH_SIZE, end, HASH_SIZE)]
        return subtree_of_hashes(hashes)

    return node
