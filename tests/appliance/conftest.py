"""Fixtures for appliance tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.realparts.softhsm import SoftHsm, SoftHsmToken

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
