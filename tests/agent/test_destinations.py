"""Item 4 of issue 13: a download never leaves the folder its signed path names.

The attack: a local user plants ``linkdir -> /elsewhere`` in the destination's parent path
before the (root) agent imports; the agent must refuse (exit 1, naming the action's file, the
link and the check) and write nothing anywhere. And an endpoint policy of allowed roots that even
a signed action cannot leave.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airseal.agent import exit_codes
from airseal.agent.destinations import (
    DestinationPolicy,
    OpenFolders,
    check_roots,
    open_folder,
    within_roots,
)
from airseal.agent.errors import DestinationOutsidePolicy, DestinationThroughLink
from airseal.agent.journal import Journal

from .helpers import ActionBuild, script, sign_action, write_media

NOBODY = 65534


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Path]:
    drop = tmp_path / "srv" / "drop"
    elsewhere = tmp_path / "elsewhere"
    drop.mkdir(parents=True)
    elsewhere.mkdir()
    payload = tmp_path / "p.txt"
    payload.write_bytes(b"signed content\n")
    return {"drop": drop, "elsewhere": elsewhere, "payload": payload, "tmp": tmp_path}


def _media(site, distributor, dest: Path, *, before=()):
    return write_media(
        site["tmp"] / "usb",
        distributor,
        [*before, sign_action(ActionBuild("dl1", site["payload"], dest=str(dest)), distributor)],
    )


def _plant_link(site: dict[str, Path], *, owner: int | None = None) -> Path:
    link = site["drop"] / "linkdir"
    link.symlink_to(site["elsewhere"])
    if owner is not None:
        os.lchown(link, owner, owner)
    return link


def _runs(state) -> list[tuple[str, str]]:
    with Journal.open(state.journal_path) as journal:
        rows = journal._rows("SELECT action_id, outcome FROM runs ORDER BY id")
    return [(r["action_id"], r["outcome"]) for r in rows]


def test_a_link_planted_in_the_parent_path_is_refused(agent_cli, enrolled, distributor, site):
    link = _plant_link(site)
    marker = site["tmp"] / "ran"
    first = site["tmp"] / "first.sh"
    first.write_bytes(script(f"touch {marker}"))
    mount = _media(
        site,
        distributor,
        site["drop"] / "linkdir" / "p.txt",
        before=[sign_action(ActionBuild("ex1", first, mode="execute"), distributor)],
    )
    result = agent_cli("import", str(mount), "--yes")
    assert result.code == exit_codes.REFUSED, result.stderr
    assert "airseal/actions/dl1/action.sigstore.json" in result.stderr
    assert "[destination]" in result.stderr and str(link) in result.stderr
    assert "destination.links=refuse" in result.stderr
    assert os.listdir(site["elsewhere"]) == []  # nothing written through the link
    assert sorted(os.listdir(site["drop"])) == ["linkdir"]
    assert not marker.exists()  # refused before anything ran
    assert ("dl1", "succeeded") not in _runs(enrolled)
    assert os.listdir(enrolled.staging_dir) == []


def test_a_link_further_up_and_missing_folders_below_it_are_refused(
    agent_cli, enrolled, distributor, site
):
    _plant_link(site)
    mount = _media(site, distributor, site["drop"] / "linkdir" / "new" / "deeper" / "p.txt")
    result = agent_cli("import", str(mount), "--yes")
    assert result.code == exit_codes.REFUSED, result.stderr
    assert "link in destination [destination]" in result.stderr
    assert os.listdir(site["elsewhere"]) == []


def test_a_link_swapped_in_after_the_check_is_refused_at_placement(run_import, distributor, site):
    """The folder is a real folder when checked and a link when placed: the walk at placement
    time refuses it, and nothing lands in the link's target."""
    folder = site["drop"] / "sub"
    folder.mkdir()
    mount = _media(site, distributor, folder / "p.txt")

    def swap(stage, _importer):
        if stage == "staged":
            folder.rmdir()
            folder.symlink_to(site["elsewhere"])

    report = run_import(mount, hook=swap)
    assert report.status == "refused"
    assert isinstance(report.error, DestinationThroughLink)
    assert report.error.subject == "airseal/actions/dl1/action.sigstore.json"
    assert str(folder) in report.error.detail
    assert os.listdir(site["elsewhere"]) == []
    assert {a.id: a.outcome for a in report.actions} == {"dl1": "refused"}


def test_policy_root_owned_follows_only_links_nobody_else_could_plant(
    agent_cli, enrolled, distributor, site
):
    assert agent_cli("config", "--destination-links", "root-owned").code == 0
    _plant_link(site, owner=NOBODY)  # planted by an unprivileged user
    mount = _media(site, distributor, site["drop"] / "linkdir" / "p.txt")
    refused = agent_cli("import", str(mount), "--yes")
    assert refused.code == exit_codes.REFUSED, refused.stderr
    assert "destination.links=root-owned" in refused.stderr
    assert os.listdir(site["elsewhere"]) == []
    # the same link owned by root, in a folder only root may write: a system link, followed
    os.lchown(site["drop"] / "linkdir", 0, 0)
    assert site["drop"].stat().st_mode & 0o022 == 0
    placed = agent_cli("import", str(mount), "--yes")
    assert placed.code == 0, placed.stderr
    assert (site["elsewhere"] / "p.txt").read_bytes() == b"signed content\n"


def test_policy_follow_allows_links(agent_cli, enrolled, distributor, site):
    config = agent_cli("config", "--destination-links", "follow", "--json")
    assert config.code == 0, config.stderr
    assert json.loads(config.stdout)["destination"] == {"allowedRoots": [], "links": "follow"}
    _plant_link(site)
    mount = _media(site, distributor, site["drop"] / "linkdir" / "p.txt")
    result = agent_cli("import", str(mount), "--yes")
    assert result.code == 0, result.stderr
    assert (site["elsewhere"] / "p.txt").read_bytes() == b"signed content\n"


def test_a_destination_outside_the_allowed_roots_is_refused_before_anything_runs(
    agent_cli, enrolled, distributor, site
):
    config = agent_cli("config", "--allow-destination-root", str(site["drop"]))
    assert config.code == 0, config.stderr
    assert f"destination.allowed-roots   {site['drop']}" in config.stdout
    marker = site["tmp"] / "ran"
    first = site["tmp"] / "first.sh"
    first.write_bytes(script(f"touch {marker}"))
    outside = site["tmp"] / "srv" / "dropbox" / "p.txt"  # a string prefix, not below the root
    mount = _media(
        site,
        distributor,
        outside,
        before=[sign_action(ActionBuild("ex1", first, mode="execute"), distributor)],
    )
    dry = agent_cli("import", str(mount), "--yes", "--dry-run")
    assert dry.code == exit_codes.REFUSED and "destination.allowed-roots" in dry.stderr
    result = agent_cli("import", str(mount), "--yes")
    assert result.code == exit_codes.REFUSED, result.stderr
    assert "airseal/actions/dl1/action.sigstore.json" in result.stderr
    assert "destination outside policy [destination]" in result.stderr
    assert "action dl1" in result.stderr and str(outside) in result.stderr
    assert "destination.allowed-roots" in result.stderr
    assert not outside.parent.exists() and not marker.exists()
    assert ("ex1", "succeeded") not in _runs(enrolled)


def test_a_followed_link_cannot_leave_the_allowed_roots(agent_cli, enrolled, distributor, site):
    assert (
        agent_cli(
            "config",
            "--allow-destination-root",
            str(site["drop"]),
            "--destination-links",
            "follow",
        ).code
        == 0
    )
    _plant_link(site)
    mount = _media(site, distributor, site["drop"] / "linkdir" / "p.txt")
    result = agent_cli("import", str(mount), "--yes")
    assert result.code == exit_codes.REFUSED, result.stderr
    assert "destination outside policy [destination]" in result.stderr
    assert str(site["elsewhere"]) in result.stderr
    assert os.listdir(site["elsewhere"]) == []


def test_inside_the_allowed_roots_downloads_are_placed(agent_cli, enrolled, distributor, site):
    assert agent_cli("config", "--allow-destination-root", str(site["drop"])).code == 0
    dest = site["drop"] / "a" / "b" / "p.txt"
    result = agent_cli("import", str(_media(site, distributor, dest)), "--yes")
    assert result.code == 0, result.stderr
    assert dest.read_bytes() == b"signed content\n"
    assert oct(dest.parent.stat().st_mode & 0o777) == "0o755"
    assert [p.name for p in dest.parent.iterdir()] == ["p.txt"]  # no temporary left


def test_bad_roots_are_usage_errors(agent_cli, agent_state):
    relative = agent_cli("config", "--allow-destination-root", "srv/drop")
    assert relative.code == exit_codes.USAGE and "is not an absolute path" in relative.stderr
    dotted = agent_cli("config", "--allow-destination-root", "/srv/../etc")
    assert dotted.code == exit_codes.USAGE and "'..'" in dotted.stderr
    both = agent_cli("config", "--allow-destination-root", "/srv", "--clear-destination-roots")
    assert both.code == exit_codes.USAGE


def test_within_roots_is_by_component():
    roots = ("/srv/drop",)
    assert within_roots("/srv/drop/a", roots, "linux")
    assert within_roots("/srv/drop/a/b/c", ("/opt", "/srv/drop/"), "linux")
    assert not within_roots("/srv/dropbox/a", roots, "linux")
    assert not within_roots("/srv/drop", roots, "linux")  # the root itself is not a file in it
    assert within_roots("/anything", (), "linux")
    assert within_roots("c:\\Program Files\\App\\x.conf", ("C:\\Program Files",), "windows")
    assert not within_roots("D:\\Program Files\\x", ("C:\\Program Files",), "windows")


def test_open_folder_walks_links_as_the_policy_says(tmp_path):
    real = tmp_path / "real"
    (real / "inner").mkdir(parents=True)
    (tmp_path / "rel").symlink_to("real/inner")
    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(DestinationThroughLink, match="rel is a symbolic link"):
        open_folder(str(tmp_path / "rel"), DestinationPolicy(), create=False, dest="d", subject="s")
    opened = open_folder(
        str(tmp_path / "rel" / "made"),
        DestinationPolicy(links="follow"),
        create=True,
        dest="d",
        subject="s",
    )
    assert opened is not None
    os.close(opened[0])
    assert opened[1] == str(real / "inner" / "made") and (real / "inner" / "made").is_dir()
    with pytest.raises(Exception, match="links on the way"):
        open_folder(
            str(tmp_path / "loop"),
            DestinationPolicy(links="follow"),
            create=False,
            dest="d",
            subject="s",
        )
    assert (
        open_folder(
            str(tmp_path / "absent" / "x"), DestinationPolicy(), create=False, dest="d", subject="s"
        )
        is None
    )
    with pytest.raises(DestinationOutsidePolicy):
        check_roots("/etc/x", DestinationPolicy(("/srv",)), "linux", action="a", subject="s")


def test_open_folders_walks_each_folder_once_and_keeps_the_folder_not_the_path(tmp_path):
    """The batch's descriptor names the folder the walk checked: a link swapped in above it
    afterwards does not redirect the placement, a forbidden link is refused on the first
    walk, a missing folder is not remembered, and at most ``limit`` descriptors stay open."""
    drop = tmp_path / "srv" / "drop"
    drop.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with OpenFolders(DestinationPolicy(), limit=2) as folders:
        opened = folders.get(str(drop), create=False, dest="d", subject="s")
        assert opened is not None and opened[1] == str(drop)
        fd = opened[0]
        assert folders.get(str(drop), create=False, dest="d", subject="s") == opened
        # the path now leads elsewhere; the descriptor still is the checked folder
        (tmp_path / "srv").rename(tmp_path / "moved")
        (tmp_path / "srv").symlink_to(elsewhere)
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=fd))
        assert (tmp_path / "moved" / "drop" / "f").is_file() and os.listdir(elsewhere) == []
        with pytest.raises(DestinationThroughLink):
            folders.get(str(tmp_path / "srv" / "x"), create=True, dest="d", subject="s")
        assert os.listdir(elsewhere) == []
        absent = tmp_path / "later"
        assert folders.get(str(absent), create=False, dest="d", subject="s") is None
        absent.mkdir()
        assert folders.get(str(absent), create=False, dest="d", subject="s") is not None
        assert folders.get(str(tmp_path), create=False, dest="d", subject="s") is not None
        assert str(drop) not in folders._open  # the oldest was closed to stay within the limit
        assert len(folders._open) == 2
    assert folders._open == {}


def test_the_pre_check_remembers_a_missing_folder_and_the_placement_still_walks(tmp_path):
    """``remember_missing`` (the check before anything is written): a folder missing for the
    first download into it is not walked again for the next ones; asked to create it (the
    placement), it is walked and made as always, links refused."""
    absent = tmp_path / "later"
    with OpenFolders(DestinationPolicy(), remember_missing=True) as folders:
        assert folders.get(str(absent), create=False, dest="d", subject="s") is None
        absent.mkdir()
        assert folders.get(str(absent), create=False, dest="d", subject="s") is None
        opened = folders.get(str(absent), create=True, dest="d", subject="s")
        assert opened is not None and opened[1] == str(absent)
        (tmp_path / "link").symlink_to(absent)
        with pytest.raises(DestinationThroughLink):
            folders.get(str(tmp_path / "link" / "x"), create=True, dest="d", subject="s")
