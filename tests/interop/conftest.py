"""Fixtures for interop tests: the sigstore-js verifier as a plain function."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .sigstore_js import SigstoreJsResult, ensure_installed, verify_with_sigstore_js


@pytest.fixture
def sigstore_js() -> Callable[..., SigstoreJsResult]:
    """``verify_with_sigstore_js``; errors at setup if Node or ``npm ci`` is missing."""
    ensure_installed()
    return verify_with_sigstore_js
