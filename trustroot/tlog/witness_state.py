"""Moving a verifier's last-seen checkpoint forward, refusing forks and shrinks.

An endpoint (or a witness) remembers the last checkpoint it verified. A new one is accepted only
if it is signed by the log key for the expected origin and a consistency proof shows the old tree
is a prefix of the new one. A smaller size is a *shrunk* log; the same size with another root, or
a proof that does not hold, is a *forked* log; each refusal names both checkpoints, because the
operator will need both as evidence. Pure: the caller stores the result atomically.
"""

from __future__ import annotations

from collections.abc import Sequence

from airseal.trustroot.errors import LogProofError
from airseal.trustroot.keys import PublicKey
from airseal.trustroot.tlog.checkpoint import Checkpoint, verify_checkpoint
from airseal.trustroot.tlog.media_proofs import MediaProofs
from airseal.trustroot.tlog.merkle import verify_consistency


def advance_checkpoint(
    previous: Checkpoint | None,
    new_note: str,
    consistency: Sequence[bytes] | MediaProofs,
    *,
    key: PublicKey,
    name: str,
    origin: str,
) -> Checkpoint:
    """The verified new checkpoint, consistent with ``previous`` (``None``: first contact):
    ``consistency`` is an RFC 9162 proof from ``previous``, or the media's one proof
    (:class:`.media_proofs.MediaProofs`, which must cover ``previous``'s size)."""
    new = verify_checkpoint(new_note, key=key, name=name, origin=origin)
    if previous is None:
        return new
    if previous.origin != new.origin:
        raise LogProofError(
            f"the last checkpoint seen ({previous.describe()}) is of another log than the new "
            f"one ({new.describe()})",
            check="tlog.origin",
        )
    if new.size < previous.size:
        raise LogProofError(
            f"the log shrank: last seen {previous.describe()}, now {new.describe()}",
            check="tlog.shrink",
            hint="keep both checkpoints as evidence and report them; do not use this media",
        )
    if isinstance(consistency, MediaProofs) and previous.size < new.size \
            and previous.size not in consistency.earlier_sizes:
        raise LogProofError(f"no consistency proof from size {previous.size} (last seen) to "
                            f"{new.size}", check="tlog.consistency")
    try:
        if isinstance(consistency, MediaProofs):
            _prefix_by_media_proof(previous, new, consistency)
        else:
            verify_consistency(previous.size, new.size, consistency, previous.root_hash,
                               new.root_hash)
    except LogProofError as exc:
        raise LogProofError(
            f"the log forked: last seen {previous.describe()}, now {new.describe()} ({exc.detail})",
            check="tlog.fork",
            hint="keep both checkpoints as evidence and report them; do not use this media",
        ) from None
    return new


def _prefix_by_media_proof(previous: Checkpoint, new: Checkpoint, proofs: MediaProofs) -> None:
    if proofs.tree_size != new.size:
        raise LogProofError(f"the proof is for size {proofs.tree_size}, the checkpoint for "
                            f"{new.size}")
    if previous.size == new.size:
        verify_consistency(previous.size, new.size, (), previous.root_hash, new.root_hash)
        return
    root, earlier = proofs.roots({})
    if root != new.root_hash:
        raise LogProofError("the proof does not give the checkpoint's root")
    if earlier[previous.size] != previous.root_hash:
        raise LogProofError(f"its first {previous.size} entries have another root")
