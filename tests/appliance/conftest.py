"""Fixtures for appliance tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from airseal.appliance.home import Home
from tests.appliance.receipt_site import copy_site, make_template
from tests.realparts.softhsm import SoftHsm, SoftHsmToken

# --- a site with one export, for receipts and agent enrolment ----------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    return make_template(tmp_path_factory.mktemp("appliance-template"))


@pytest.fixture
def site(
    template: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Home, dict]:
    """A copy of the template site; ``AIRSEAL_HOME`` points at it."""
    return copy_site(template, tmp_path, monkeypatch)


@pytest.fixture
def mount(tmp_path: Path) -> Path:
    """An empty media folder (``<mount>/airseal/``)."""
    (tmp_path / "usb" / "airseal").mkdir(parents=True)
    return tmp_path / "usb"


# --- SoftHSM2 (real Debian softhsm2; see tests/realparts/softhsm.py) ---------------------------


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SoftHsm:
    """A private, empty SoftHSM2 store with SOFTHSM2_CONF pointing at it for this test."""
    hsm = SoftHsm(tmp_path / "softhsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(hsm.conf))
    return hsm


@pytest.fixture
def two_tokens(softhsm: SoftHsm) -> tuple[SoftHsm, SoftHsmToken, SoftHsmToken]:
    """Two initialised tokens (labels ``airseal-a`` and ``airseal-b``) in one SoftHSM2 store."""
    first = softhsm.init_token("airseal-a")
    second = softhsm.init_token("airseal-b")
    softhsm.activate()
    return softhsm, first, second
