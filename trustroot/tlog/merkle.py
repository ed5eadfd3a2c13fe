"""RFC 6962 Merkle trees: leaf and node hashing, inclusion and consistency proofs.

Why this is hand-written: sigstore-python 4.x only carries an *inclusion* verifier, private
(``sigstore._internal.merkle.verify_merkle_inclusion``) and bound to its ``TransparencyLogEntry``
model; it has no consistency proofs and no proof *generation*, and no maintained Python library
offers them over a tile store. The algorithms below are RFC 9162 section 2.1 written out (proof
generation is the recursive PATH / SUBPROOF definition of RFC 6962 section 2.1), and the tests
check them against a brute-force tree for every small size, against real public-good Rekor proofs
and against sigstore-python's own inclusion verifier.

Proof generation reads only *complete, aligned* subtree hashes through a :data:`NodeReader`
(``node(level, index)`` = hash of leaves ``[index * 2**level, (index + 1) * 2**level)``), which is
exactly what a tile store can answer; right-edge partial subtrees are rebuilt from them.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence

from airseal.trustroot.errors import LogProofError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeReader = Callable[[int, int], bytes]
"""``node(level, index)``: the hash of a complete subtree of ``2**level`` leaves."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes (for small trees and tests)."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def range_hash(start: int, end: int, node: NodeReader) -> bytes:
    """MTH of leaves ``[start, end)``, ``start`` aligned as RFC 6962's recursion leaves it."""
    n = end - start
    if n <= 0:
        raise ValueError("empty range")
    if n & (n - 1) == 0 and start % n == 0:
        level = n.bit_length() - 1
        return node(level, start >> level)
    k = _split(n)
    return node_hash(range_hash(start, start + k, node), range_hash(start + k, end, node))


def root_hash(size: int, node: NodeReader) -> bytes:
    """The root hash of the first ``size`` leaves."""
    return EMPTY_ROOT if size == 0 else range_hash(0, size, node)


def inclusion_proof(index: int, size: int, node: NodeReader) -> list[bytes]:
    """RFC 6962 PATH(index, D[0:size]): audit path from the leaf to the root, bottom-up."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    start, end, m = 0, size, index
    # Walk down from the root, collecting the sibling subtrees; they are emitted bottom-up.
    while end - start > 1:
        k = _split(end - start)
        if m < k:
            proof.append(range_hash(start + k, end, node))
            end = start + k
        else:
            proof.append(range_hash(start, start + k, node))
            start, m = start + k, m - k
    proof.reverse()
    return proof


def consistency_proof(old_size: int, new_size: int, node: NodeReader) -> list[bytes]:
    """RFC 6962 PROOF(old_size, D[0:new_size]); empty when the sizes are equal or old is 0."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"cannot prove {old_size} consistent with a smaller tree {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    start, end, m, complete = 0, new_size, old_size, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                proof.append(range_hash(start, end, node))
            break
        k = _split(n)
        if m <= k:
            proof.append(range_hash(start + k, end, node))
            end = start + k
        else:
            proof.append(range_hash(start, start + k, node))
            start, m, complete = start + k, m - k, False
    proof.reverse()
    return proof


def _check_hashes(proof: Sequence[bytes], what: str) -> None:
    for h in proof:
        if len(h) != HASH_SIZE:
            raise LogProofError(f"{what} holds a hash of {len(h)} bytes, not {HASH_SIZE}")


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 2.1.3.2: ``leaf`` (a leaf hash) is at ``index`` of the tree with ``root``."""
    _check_hashes(proof, "the inclusion proof")
    if not 0 <= index < size:
        raise LogProofError(f"inclusion proof: index {index} is not below tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise LogProofError("inclusion proof: more hashes than the tree has levels")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise LogProofError("inclusion proof: fewer hashes than the tree has levels")
    if r != root:
        raise LogProofError(
            f"inclusion proof: the path from entry {index} gives root {r.hex()[:16]}..., "
            f"the checkpoint says {root.hex()[:16]}..."
        )


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """RFC 9162 2.1.4.2: the tree ``old_root`` of ``old_size`` is a prefix of ``new_root``."""
    _check_hashes(proof, "the consistency proof")
    if old_size > new_size:
        raise LogProofError(f"the log shrank from {old_size} to {new_size} entries")
    if old_size == new_size:
        if proof:
            raise LogProofError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise LogProofError(
                f"two different roots for the same size {old_size}: the log has forked"
            )
        return
    if old_size == 0:
        if proof:
            raise LogProofError("consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise LogProofError("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise LogProofError("consistency proof: more hashes than needed")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise LogProofError("consistency proof: fewer hashes than needed")
    if fr != old_root or sr != new_root:
        raise LogProofError(
            f"the log of {new_size} entries does not extend the one of {old_size} entries: "
            "the log has forked or been rewritten"
        )


def _inside(boundaries: Sequence[int], start: int, end: int, lo: int) -> tuple[int, int]:
    """``boundaries[i:j]`` (sorted) are those strictly between ``start`` and ``end``."""
    i = bisect_left(boundaries, start + 1, lo)
    return i, bisect_left(boundaries, end, i)


def multi_proof(indexes: Sequence[int], sizes: Sequence[int], size: int,
                node: NodeReader) -> list[bytes]:
    """One proof that several leaves are in the tree of ``size`` *and* that each earlier tree
    of ``sizes`` is a prefix of it: walking RFC 6962's recursive split left to right, the hash
    of every maximal subtree that holds none of ``indexes`` and straddles none of ``sizes``.
    The verifier (:func:`roots_from_multi_proof`) computes every other subtree, among them the
    complete subtrees whose fold is each earlier root, so inclusion of every leaf and
    consistency from every earlier size share one list in which no hash appears twice (our
    addition: RFC 9162 defines one-leaf and one-size proofs only; the tests check this against
    them). Neighbouring leaves share their whole path, and each other's sibling leaves cost
    nothing."""
    wanted = sorted(set(indexes))
    cuts = sorted(set(sizes))
    if wanted and (wanted[0] < 0 or wanted[-1] >= size):
        raise ValueError(f"leaves {wanted[:1]}..{wanted[-1:]} are not in a tree of size {size}")
    if cuts and (cuts[0] <= 0 or cuts[-1] >= size):
        raise ValueError(f"earlier sizes {cuts[:1]}..{cuts[-1:]} are not in (0, {size})")
    out: list[bytes] = []

    def walk(start: int, end: int, lo: int, hi: int, clo: int) -> None:
        c, c_end = _inside(cuts, start, end, clo)
        if lo == hi and c == c_end:
            out.append(range_hash(start, end, node))
        elif end - start > 1:
            mid = start + _split(end - start)
            cut = bisect_left(wanted, mid, lo, hi)
            walk(start, mid, lo, cut, c)
            walk(mid, end, cut, hi, c)

    if size:
        walk(0, size, 0, len(wanted), 0)
    return out


def roots_from_multi_proof(leaves: Mapping[int, bytes], sizes: Sequence[int], size: int,
                           proof: Sequence[bytes]) -> tuple[bytes, dict[int, bytes]]:
    """The root of ``size`` and the root of each earlier size that :func:`multi_proof` of
    ``leaves`` (index to leaf hash) and ``sizes`` gives, consuming every proof hash exactly
    once. Compare the first with the checkpoint's root (that proves every leaf included and
    binds every subtree computed on the way) and an earlier one with a checkpoint of that size
    (that proves it a prefix: the earlier root is folded from those bound subtrees)."""
    _check_hashes(proof, "the log proof")
    wanted = sorted(leaves)
    cuts = sorted(set(sizes))
    if size <= 0:
        raise LogProofError(f"log proof: tree size {size} has nothing to prove")
    if wanted and (wanted[0] < 0 or wanted[-1] >= size):
        raise LogProofError(f"log proof: entries {wanted[:1]}..{wanted[-1:]} are not all "
                            f"below tree size {size}")
    if cuts and (cuts[0] <= 0 or cuts[-1] >= size):
        raise LogProofError(f"log proof: earlier sizes {cuts[:1]}..{cuts[-1:]} are not all "
                            f"between 0 and {size}")
    used = 0
    ends: dict[tuple[int, int], bytes] = {}

    def walk(start: int, end: int, lo: int, hi: int, clo: int) -> bytes:
        nonlocal used
        c, c_end = _inside(cuts, start, end, clo)
        if lo == hi and c == c_end:
            if used == len(proof):
                raise LogProofError("log proof: fewer hashes than the entries and sizes need")
            used += 1
            value = proof[used - 1]
        elif end - start == 1:
            value = leaves[start]
        else:
            mid = start + _split(end - start)
            cut = bisect_left(wanted, mid, lo, hi)
            left = walk(start, mid, lo, cut, c)
            value = node_hash(left, walk(mid, end, cut, hi, c))
        ends[start, end] = value
        return value

    root = walk(0, size, 0, len(wanted), 0)
    if used != len(proof):
        raise LogProofError("log proof: more hashes than the entries and sizes need")
    return root, {m: _fold_prefix(m, size, ends) for m in cuts}


def _fold_prefix(m: int, size: int, ends: Mapping[tuple[int, int], bytes]) -> bytes:
    """MTH of the first ``m`` leaves from the subtrees the walk computed: the complete
    subtrees of the tree of ``size`` that tile ``[0, m)`` (each was reached, because every
    subtree straddling ``m`` was split), folded right to left as RFC 6962's recursion does."""
    blocks: list[bytes] = []
    start, end = 0, size
    while True:
        mid = start + _split(end - start)
        if m <= mid:
            if m == mid:
                blocks.append(ends[start, mid])
                break
            end = mid
        else:
            blocks.append(ends[start, mid])
            start = mid
            if m == end:  # pragma: no cover - m < size, and m == mid breaks above
                break
    value = blocks[-1]
    for left in reversed(blocks[:-1]):
        value = node_hash(left, value)
    return value
