"""One kit build per test session: building resolves and downloads about 60 wheels."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.packaging.kit_build import Signer, build_kit, make_signer


@pytest.fixture(scope="session")
def kit_signer(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    return make_signer(tmp_path_factory.mktemp("kit-signer"))


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory, kit_signer: Signer) -> Path:
    return build_kit(tmp_path_factory.mktemp("kit") / "airseal-kit", kit_signer, "--tar")
