"""One root error for the whole package, and one usage error that every front end exits 2 for."""

from __future__ import annotations

import subprocess
import sys

import pytest

from airseal import errors
from airseal.agent import errors as agent_errors
from airseal.appliance import errors as appliance_errors
from airseal.media import errors as media_errors
from airseal.trustroot import errors as trustroot_errors


@pytest.mark.parametrize(
    "base",
    [
        trustroot_errors.TrustrootError,
        appliance_errors.ApplianceError,
        agent_errors.AgentError,
        media_errors.MediaIOError,
        media_errors.BadMedia,
    ],
)
def test_every_package_base_is_an_airseal_error(base: type[Exception]) -> None:
    assert issubclass(base, errors.AirsealError)


def test_the_front_ends_share_the_usage_error() -> None:
    assert appliance_errors.UsageError is errors.UsageError
    assert issubclass(agent_errors.UsageError, errors.UsageError)
    assert issubclass(agent_errors.UsageError, agent_errors.AgentError)


def test_message_and_diagnostics() -> None:
    error = errors.UsageError("give --key", subject="verify-blob", hint="see --help")
    assert str(error) == "verify-blob: usage: give --key"
    assert error.diagnostics() == "verify-blob: usage: give --key\n  hint: see --help"
    tagged = agent_errors.UsageError("at most 64 groups")
    assert str(tagged) == "usage [usage]: at most 64 groups"


def test_the_root_and_the_plumbing_load_none_of_the_packages() -> None:
    probe = (
        "import sys, airseal.errors, airseal._internal.atomic, airseal._internal.migrations, "
        "airseal._internal.cli; "
        "ours = ('trustroot', 'media', 'appliance', 'agent', 'tui'); "
        "print(sorted(m for m in sys.modules if m.split('.')[:2][-1] in ours "
        "and m.startswith('airseal.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
