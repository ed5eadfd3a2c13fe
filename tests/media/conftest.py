"""Fixtures for media tests: a signing key, and a real FAT32 filesystem (fusefat)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airseal.trustroot.signer import PrivateKeySigner
from tests.realparts.fat32 import Fat32, fat32_mount, fsck

from .helpers import new_signer


@pytest.fixture
def signer() -> PrivateKeySigner:
    return new_signer()


@pytest.fixture
def fat32(tmp_path: Path) -> Iterator[Fat32]:
    """A 40 MiB FAT32 image mounted with ``fusefat -o rw+``; unmounted afterwards, and then
    ``fsck.vfat -n`` must find it clean (nothing the test did may leave FAT inconsistent)."""
    with fat32_mount(tmp_path, 40) as fat:
        yield fat
    clean, output = fsck(fat.image)
    assert clean, output
