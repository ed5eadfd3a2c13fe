"""The open appliance a command works on."""

from __future__ import annotations

import sys

from airseal.appliance.cli.ui import TerminalPrompter
from airseal.appliance.service import Appliance


def open_appliance() -> Appliance:
    """The appliance in ``$AIRSEAL_HOME`` (else the platform's), opened now: a command that needs
    the home fails before it asks or reads anything when there is none."""
    appliance = Appliance(prompter=TerminalPrompter())
    home = appliance.home
    if "logging" in sys.modules:  # -v set logging up; otherwise it is not worth importing
        sys.modules["logging"].getLogger("airseal.appliance").info(
            "appliance home %s (appliance %s)", home.root, home.appliance_id
        )
    return appliance


def appliance_without_home() -> Appliance:
    """For commands that need no home (the courier's check, token listing, a PEM key file)."""
    return Appliance(prompter=TerminalPrompter())
