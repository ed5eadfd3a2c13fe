"""The pure listing rules: what is missing, damaged, extra or unsafe, before any hashing."""

from __future__ import annotations

from airseal.media.limits import MAX_RECEIPT_BYTES
from airseal.media.rules import EntryKind, MediaEntry, entry_problem, judge_listing, receipt_problem

LISTED = {
    "actions/a/action.sigstore.json": 100,
    "actions/a/payload/p.bin": 10,
}


def tree(*extra: MediaEntry, skip: tuple[str, ...] = ()) -> list[MediaEntry]:
    entries = [
        MediaEntry("airseal/export.sigstore.json", EntryKind.FILE, 5000),
        MediaEntry("airseal/actions", EntryKind.DIRECTORY),
        MediaEntry("airseal/actions/a", EntryKind.DIRECTORY),
        MediaEntry("airseal/actions/a/action.sigstore.json", EntryKind.FILE, 100),
        MediaEntry("airseal/actions/a/payload", EntryKind.DIRECTORY),
        MediaEntry("airseal/actions/a/payload/p.bin", EntryKind.FILE, 10),
    ]
    return [e for e in entries if e.path not in skip] + list(extra)


def test_a_whole_export_leaves_only_hashing_to_do() -> None:
    verdict = judge_listing(tree(), LISTED)
    assert (verdict.missing, verdict.damaged, verdict.extra, verdict.unsafe) == ([], [], [], [])
    assert verdict.to_hash == list(LISTED)


def test_missing_file_is_named() -> None:
    verdict = judge_listing(tree(skip=("airseal/actions/a/payload/p.bin",)), LISTED)
    assert [(f.path, f.check) for f in verdict.missing] == [
        ("airseal/actions/a/payload/p.bin", "present")
    ]


def test_wrong_size_is_damaged_and_not_hashed() -> None:
    entries = tree(skip=("airseal/actions/a/payload/p.bin",))
    entries.append(MediaEntry("airseal/actions/a/payload/p.bin", EntryKind.FILE, 9))
    verdict = judge_listing(entries, LISTED)
    assert [(f.path, f.check) for f in verdict.damaged] == [
        ("airseal/actions/a/payload/p.bin", "size")
    ]
    assert verdict.to_hash == ["actions/a/action.sigstore.json"]


def test_unlisted_files_and_folders_are_extra() -> None:
    verdict = judge_listing(
        tree(
            MediaEntry("airseal/notes.txt", EntryKind.FILE, 3),
            MediaEntry("airseal/tuf", EntryKind.DIRECTORY),
        ),
        LISTED,
    )
    assert sorted(f.path for f in verdict.extra) == ["airseal/notes.txt", "airseal/tuf"]


def test_unsafe_entries_are_reported_not_hashed() -> None:
    verdict = judge_listing(
        [
            *tree(
                MediaEntry("airseal/link", EntryKind.SYMLINK),
                MediaEntry("airseal/pipe", EntryKind.FIFO),
                MediaEntry("airseal/hard.bin", EntryKind.FILE, 1, links=2),
                MediaEntry("airseal/CON.txt", EntryKind.FILE, 1),
                skip=("airseal/actions/a/payload/p.bin",),
            ),
            MediaEntry("airseal/actions/a/payload/p.bin", EntryKind.SYMLINK),
        ],
        LISTED,
    )
    reasons = {f.path: f.check for f in verdict.unsafe}
    assert reasons == {
        "airseal/link": "entry-type",
        "airseal/pipe": "entry-type",
        "airseal/hard.bin": "entry-type",
        "airseal/CON.txt": "name",
        "airseal/actions/a/payload/p.bin": "entry-type",
    }
    assert verdict.missing == []
    assert "actions/a/payload/p.bin" not in verdict.to_hash


def test_receipts_are_the_only_unlisted_subtree_and_follow_strict_rules() -> None:
    verdict = judge_listing(
        tree(
            MediaEntry("airseal/receipts", EntryKind.DIRECTORY),
            MediaEntry("airseal/receipts/agent-7", EntryKind.DIRECTORY),
            MediaEntry("airseal/receipts/agent-7/exp-1.json", EntryKind.FILE, 400),
            MediaEntry("airseal/receipts/agent-7/notes.txt", EntryKind.FILE, 4),
            MediaEntry("airseal/receipts/agent-7/big.json", EntryKind.FILE, MAX_RECEIPT_BYTES + 1),
            MediaEntry("airseal/receipts/stray.json", EntryKind.FILE, 4),
            MediaEntry("airseal/receipts/agent-7/deeper", EntryKind.DIRECTORY),
        ),
        LISTED,
    )
    assert verdict.receipts == 1
    assert sorted(f.path for f in verdict.extra) == [
        "airseal/receipts/agent-7/big.json",
        "airseal/receipts/agent-7/deeper",
        "airseal/receipts/agent-7/notes.txt",
        "airseal/receipts/stray.json",
    ]


def test_receipt_problem() -> None:
    assert receipt_problem("receipts/agent-1/exp-1.json", 10) is None
    assert receipt_problem("receipts/agent 1/exp-1.json", 10) is not None
    assert receipt_problem("receipts/a/b/c.json", 10) is not None
    assert receipt_problem("receipts/a/.json", 10) is not None


def test_entry_problem_for_plain_entries_is_none() -> None:
    assert entry_problem(MediaEntry("airseal/x.bin", EntryKind.FILE, 1)) is None
    assert entry_problem(MediaEntry("airseal/dir", EntryKind.DIRECTORY)) is None
