"""The tamper matrix: every file on an exported media, every way of damaging it.

For each file (the export statement, each action bundle, each payload part, including a payload
split into parts): byte flips at several offsets, truncation, deletion, a rename, an added file
next to it and a symlink swap. Every case must be refused with an error naming the file, and
nothing may run or be written outside staging: the payloads' marker files must not appear and the
download's destination folder must not exist.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from airseal.agent.approval import ApproveAll
from airseal.agent.enrolment import enroll
from airseal.agent.journal import Journal
from airseal.trustroot.errors import VerificationError

from .conftest import ImportRunner
from .helpers import (
    ActionBuild,
    media_files,
    new_distributor,
    script,
    sign_action,
    tar_payload,
    utcnow,
    write_media,
    zip_payload,
)


class Pristine:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.distributor = new_distributor(base / "keys")
        self.dest = base / "dest"
        self.markers = base / "markers"
        self.markers.mkdir()
        payload = base / "big.conf"
        payload.write_bytes(bytes(range(256)) * 12)  # split into three parts below
        tar = tar_payload(base / "tool.tar.gz", {"run.sh": script(f"touch {self.markers}/tar")})
        zipped = zip_payload(base / "tool.zip", {"run.sh": script(f"touch {self.markers}/zip")})
        actions = [
            sign_action(
                ActionBuild("dl", payload, dest=str(self.dest / "big.conf")), self.distributor
            ),
            sign_action(ActionBuild("tar", tar, mode="execute", run="run.sh"), self.distributor),
            sign_action(ActionBuild("zip", zipped, mode="execute", run="run.sh"), self.distributor),
        ]
        self.mount = write_media(base / "media", self.distributor, actions, split_threshold=1200)
        self.files = media_files(self.mount)

    def copy(self, into: Path) -> Path:
        target = into / "usb"
        shutil.copytree(self.mount, target, symlinks=True)
        return target

    def untouched(self) -> None:
        assert list(self.markers.iterdir()) == [], "an action ran"
        assert not self.dest.exists(), "something was written to the download destination"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    return Pristine(tmp_path_factory.mktemp("pristine"))


@pytest.fixture
def importer(agent_state, agent_signer, pristine) -> ImportRunner:
    with Journal.open(agent_state.journal_path) as journal:
        enroll(
            journal,
            pristine.distributor.pub.read_bytes(),
            name="Site",
            purposes=("exports", "actions"),
            now=utcnow(),
        )
    return ImportRunner(agent_state, agent_signer)


def test_the_pristine_media_covers_every_kind_of_file(pristine):
    names = pristine.files
    assert "airseal/export.sigstore.json" in names
    assert sum(n.endswith("action.sigstore.json") for n in names) == 3
    assert sum(".part" in n for n in names) == 3


def flip_at(fraction: float, mask: int = 0xFF) -> Callable[[Path], str]:
    def tamper(path: Path) -> str:
        data = bytearray(path.read_bytes())
        offset = min(int(len(data) * fraction), len(data) - 1)
        data[offset] ^= mask
        path.write_bytes(bytes(data))
        return ""

    return tamper


def truncate(path: Path) -> str:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return ""


def delete(path: Path) -> str:
    path.unlink()
    return ""


def rename(path: Path) -> str:
    path.rename(path.with_name(path.name + ".renamed"))
    return ""


def add_file(path: Path) -> str:
    added = path.with_name("added-" + path.name)
    added.write_bytes(b"not part of the export")
    return str(added)


def symlink_swap(path: Path) -> str:
    elsewhere = Path(os.environ["AIRSEAL_AGENT_HOME"]).parent / f"outside-{path.name}"
    shutil.copyfile(path, elsewhere)
    path.unlink()
    path.symlink_to(elsewhere)  # identical bytes, but behind a link
    return ""


TAMPERS = {
    "flip-first-byte": flip_at(0.0),
    "flip-middle-byte": flip_at(0.5),
    "flip-last-byte": flip_at(1.0),
    "flip-byte-at-a-third": flip_at(1 / 3),
    "flip-low-bit-at-two-thirds": flip_at(2 / 3, 0x01),  # stays valid text: the signature fails
    "truncate": truncate,
    "delete": delete,
    "rename": rename,
    "add-file": add_file,
    "symlink-swap": symlink_swap,
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_every_file_every_tamper_is_refused(tamper, pristine, importer, tmp_path):
    for index, relative in enumerate(pristine.files):
        case = tmp_path / f"case-{index}"
        case.mkdir()
        mount = pristine.copy(case)
        named = TAMPERS[tamper](mount / relative)
        expected = os.path.relpath(named, mount) if named else relative
        report = importer(mount, approver=ApproveAll())
        where = f"{tamper} of {relative}"
        assert report.refused, f"{where}: not refused"
        assert isinstance(report.error, VerificationError), f"{where}: {report.error!r}"
        assert report.error.subject == expected, f"{where}: {report.error}"
        assert expected in str(report.error)
        assert {a.outcome for a in report.actions} <= {"not-run"}, where
        pristine.untouched()
        assert list(importer.state.staging_dir.iterdir()) == [], where
        shutil.rmtree(case)


def test_the_untampered_copy_imports(pristine, importer, tmp_path):
    mount = pristine.copy(tmp_path)
    report = importer(mount, approver=ApproveAll())
    assert report.status == "completed", report.error
    assert (pristine.dest / "big.conf").read_bytes() == bytes(range(256)) * 12
    assert sorted(p.name for p in pristine.markers.iterdir()) == ["tar", "zip"]
    for marker in pristine.markers.iterdir():
        marker.unlink()
    shutil.rmtree(pristine.dest)
