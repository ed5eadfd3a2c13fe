"""The TUF walk over a repository copy: the real public-good repository, and a signed one for
rollbacks and mixed copies. Everything in memory: ``verify_mirror`` does no I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path

import pytest

from airseal.trustroot.errors import MirrorRefused
from airseal.trustroot.tuf_mirror import PreviousImport, verify_mirror
from tests.trustroot.sigstore_cdn import INSIDE_VALIDITY, lay_out_cdn, upstream_target
from tests.trustroot.tuf_repo import SignedRepository

PACKAGED_ROOT = (
    files("sigstore").joinpath("_store", "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev", "root.json")
).read_bytes()


@pytest.fixture(scope="module")
def cdn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = lay_out_cdn(tmp_path_factory.mktemp("cdn") / "repo")
    return {
        str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


def source_of(tree: dict[str, bytes]):
    read: list[str] = []

    def source(path: str, limit: int) -> bytes | None:
        read.append(path)
        return tree.get(path)

    source.read = read  # type: ignore[attr-defined]
    return source


def flip(data: bytes, marker: bytes) -> bytes:
    """Change one byte inside ``marker`` (which must occur in ``data``)."""
    at = data.index(marker) + len(marker) // 2
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


# -- the real public-good repository ------------------------------------------------------------


def test_public_good_copy_verifies_inside_its_validity(cdn: dict[str, bytes]) -> None:
    mirror = verify_mirror(source_of(cdn), pinned_root=PACKAGED_ROOT, now=INSIDE_VALIDITY)

    assert (mirror.root_version, mirror.timestamp_version) == (15, 762)
    assert (mirror.snapshot_version, mirror.targets_version) == (165, 14)
    assert mirror.delegations == {"registry.npmjs.org": 8}
    assert mirror.targets["trusted_root.json"] == upstream_target("trusted_root.json")
    assert mirror.targets["signing_config.v0.2.json"] == upstream_target(
        "signing_config.v0.2.json"
    )
    assert mirror.targets["registry.npmjs.org/keys.json"] == upstream_target(
        "registry.npmjs.org/keys.json"
    )
    assert mirror.timestamp_expires == datetime(2026, 8, 28, 19, 25, 56, tzinfo=UTC)
    assert set(mirror.metadata) == {
        "15.root.json", "timestamp.json", "165.snapshot.json", "14.targets.json",
        "8.registry.npmjs.org.json",
    }


def test_walk_starts_at_an_older_root_and_climbs_every_version(cdn: dict[str, bytes]) -> None:
    mirror = verify_mirror(source_of(cdn), pinned_root=cdn["5.root.json"], now=INSIDE_VALIDITY)

    assert mirror.root_version == 15
    assert {f"{v}.root.json" for v in range(6, 16)} <= set(mirror.metadata)


def test_public_good_copy_is_refused_today_naming_the_root_and_its_expiry(
    cdn: dict[str, bytes],
) -> None:
    with pytest.raises(MirrorRefused) as caught:
        verify_mirror(source_of(cdn), pinned_root=PACKAGED_ROOT, now=datetime.now(UTC))

    assert caught.value.check == "root expiry"
    assert "root metadata (15.root.json) expired at 2026-11-20T13:58:18Z" in str(caught.value)
    assert "airseal trustroot fetch" in caught.value.hint


def test_expired_timestamp_is_refused_naming_it(cdn: dict[str, bytes]) -> None:
    with pytest.raises(MirrorRefused) as caught:
        verify_mirror(
            source_of(cdn), pinned_root=PACKAGED_ROOT, now=datetime(2026, 9, 1, tzinfo=UTC)
        )

    assert caught.value.check == "timestamp expiry"
    assert "timestamp metadata (timestamp.json) expired at 2026-08-28T19:25:56Z" in str(
        caught.value
    )


def _target(cdn: dict[str, bytes], name: str) -> str:
    return next(p for p in cdn if p.startswith("targets/") and p.endswith(f".{name}") and
                len(p.split("/")[-1].split(".")[0]) == 64)


def test_flipped_byte_in_a_target_is_refused(cdn: dict[str, bytes]) -> None:
    path = _target(cdn, "trusted_root.json")
    tree = dict(cdn)
    tree[path] = flip(tree[path], b"fulcio")

    with pytest.raises(MirrorRefused) as caught:
        verify_mirror(source_of(tree), pinned_root=PACKAGED_ROOT, now=INSIDE_VALIDITY)

    assert caught.value.check == "targets target trusted_root.json hash"
    assert caught.value.subject == path


def test_altered_copy_under_the_other_hash_is_refused() -> None:
    repo = SignedRepository({"trusted_root.json": upstream_target("trusted_root.json")})
    repo.publish(1)
    tree = repo.tree(1)
    sha512 = next(p for p in tree if p.endswith(".trusted_root.json") and len(p) > 150)
    tree[sha512] = flip(tree[sha512], b"fulcio")

    with pytest.raises(MirrorRefused, match="differs from"):
        verify_mirror(source_of(tree), pinned_root=repo.roots[0], now=datetime.now(UTC))

    del tree[sha512]  # a repository may serve a target under its first hash only
    verify_mirror(source_of(tree), pinned_root=repo.roots[0], now=datetime.now(UTC))


@pytest.mark.parametrize(
    ("path", "marker", "check"),
    [
        ("timestamp.json", b"19:25:56", "timestamp signature"),
        ("14.targets.json", b"trusted_root.json", "targets signature"),
        ("8.registry.npmjs.org.json", b"keys.json", "registry.npmjs.org signature"),
    ],
)
def test_flipped_byte_in_metadata_is_refused(
    cdn: dict[str, bytes], path: str, marker: bytes, check: str
) -> None:
    tree = dict(cdn)
    tree[path] = flip(tree[path], marker)

    with pytest.raises(MirrorRefused) as caught:
        verify_mirror(source_of(tree), pinned_root=PACKAGED_ROOT, now=INSIDE_VALIDITY)

    assert caught.value.check == check
    assert caught.value.subject == path


def test_snapshot_with_a_flipped_byte_is_refused(cdn: dict[str, bytes]) -> None:
    tree = dict(cdn)
    tree["165.snapshot.json"] = flip(tree["165.snapshot.json"], b"registry.npmjs.org")

    with pytest.raises(MirrorRefused) as caught:
        verify_mirror(source_of(tree), pinned_root=PACKAGED_ROOT, now=INSIDE_VALIDITY)

    assert caught.value.check.startswith("snapshot")


def test_missing_delegated_role_is_refused(cdn: dict[str, bytes]) -> None:
    tree = dict(cdn)
    del tree["8.registry.npmjs.org.json"]

    with pytest.raises(MirrorRefused, match=r"no 8\.registry\.npmjs\.org\.json"):
        verify_mirror(source_of(tree), pinned_root=PACKAGED_ROOT, now=INSIDE_VALIDITY)


def test_paths_from_the_repository_never_leave_it() -> None:
    repo = SignedRepository({"../escape.json": b"{}"})
    repo.publish(1)

    with pytest.raises(MirrorRefused, match="not a plain relative name"):
        verify_mirror(source_of(repo.tree(1)), pinned_root=repo.roots[0], now=datetime.now(UTC))


# -- rollbacks and mixed copies (a repository signed here) ---------------------------------------


@pytest.fixture
def repo() -> SignedRepository:
    signed = SignedRepository({"trusted_root.json": upstream_target("trusted_root.json")})
    for version in (1, 2):
        signed.publish(version)
    return signed


def _previous(repo: SignedRepository, version: int) -> PreviousImport:
    files = repo.versions[version]
    return PreviousImport(files["timestamp.json"], files[f"{version}.snapshot.json"])


def test_newer_copy_verifies_after_an_older_import(repo: SignedRepository) -> None:
    mirror = verify_mirror(
        source_of(repo.tree(2)), pinned_root=repo.roots[0], now=datetime.now(UTC),
        previous=_previous(repo, 1),
    )
    assert (mirror.timestamp_version, mirror.snapshot_version, mirror.targets_version) == (2, 2, 2)


def test_same_copy_imports_again(repo: SignedRepository) -> None:
    mirror = verify_mirror(
        source_of(repo.tree(2)), pinned_root=repo.roots[0], now=datetime.now(UTC),
        previous=_previous(repo, 2),
    )
    assert mirror.timestamp_version == 2


def test_older_timestamp_than_imported_is_a_rollback(repo: SignedRepository) -> None:
    with pytest.raises(MirrorRefused) as caught:
        verify_mirror(
            source_of(repo.tree(1)), pinned_root=repo.roots[0], now=datetime.now(UTC),
            previous=_previous(repo, 2),
        )

    assert caught.value.check == "timestamp version"
    assert "rollback" in caught.value.hint
    assert "must be >= 2" in str(caught.value)


def test_newer_timestamp_naming_an_older_snapshot_is_a_rollback(repo: SignedRepository) -> None:
    repo.publish(3, snapshot_version=1)
    tree = repo.tree(3) | {"1.snapshot.json": repo.versions[1]["1.snapshot.json"]}

    with pytest.raises(MirrorRefused) as caught:
        verify_mirror(
            source_of(tree), pinned_root=repo.roots[0], now=datetime.now(UTC),
            previous=_previous(repo, 2),
        )

    assert caught.value.check == "timestamp version"
    assert "snapshot version must be >= 2" in str(caught.value)


def test_snapshot_from_another_version_is_a_mixed_copy(repo: SignedRepository) -> None:
    tree = repo.tree(2)
    tree["2.snapshot.json"] = repo.versions[1]["1.snapshot.json"]

    with pytest.raises(MirrorRefused) as caught:
        verify_mirror(source_of(tree), pinned_root=repo.roots[0], now=datetime.now(UTC))

    assert caught.value.check == "snapshot version"
    assert "Expected snapshot version 2, got 1" in str(caught.value)


def test_targets_from_another_version_is_a_mixed_copy(repo: SignedRepository) -> None:
    tree = repo.tree(2)
    tree["2.targets.json"] = repo.versions[1]["1.targets.json"]

    with pytest.raises(MirrorRefused) as caught:
        verify_mirror(source_of(tree), pinned_root=repo.roots[0], now=datetime.now(UTC))

    assert caught.value.check == "targets version"


def test_rotated_root_is_walked_and_the_old_root_alone_is_not_enough(
    repo: SignedRepository,
) -> None:
    repo.rotate_root()
    repo.publish(3)

    mirror = verify_mirror(source_of(repo.tree(3)), pinned_root=repo.roots[0],
                           now=datetime.now(UTC))
    assert mirror.root_version == 2
    assert "2.root.json" in mirror.metadata

    tree = repo.tree(3)
    document = json.loads(tree["2.root.json"])
    document["signed"]["expires"] = "2099-01-01T00:00:00Z"  # signatures kept: no longer match
    tree["2.root.json"] = json.dumps(document).encode()
    with pytest.raises(MirrorRefused) as caught:
        verify_mirror(source_of(tree), pinned_root=repo.roots[0], now=datetime.now(UTC))
    assert caught.value.check == "root signature"


def test_expired_metadata_of_a_signed_repository_names_its_expiry() -> None:
    short = SignedRepository({"trusted_root.json": b"{}"}, expires_in=timedelta(hours=1))
    short.publish(1)
    later = datetime.now(UTC) + timedelta(days=2)

    with pytest.raises(MirrorRefused) as caught:
        verify_mirror(source_of(short.tree(1)), pinned_root=short.roots[0], now=later)

    assert caught.value.check == "root expiry"
    assert short.expires.strftime("%Y-%m-%dT%H:%M:%SZ") in str(caught.value)


def test_lay_out_cdn_has_every_root(tmp_path: Path) -> None:
    root = lay_out_cdn(tmp_path / "repo")
    assert {f"{v}.root.json" for v in range(1, 16)} <= {p.name for p in root.iterdir()}
