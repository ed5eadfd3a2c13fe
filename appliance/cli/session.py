"""The open appliance a command works on."""

from __future__ import annotations

import logging

from airseal.appliance.cli.ui import TerminalPrompter
from airseal.appliance.service import Appliance

log = logging.getLogger("airseal.appliance")


def open_appliance() -> Appliance:
    """The appliance in ``$AIRSEAL_HOME`` (else the platform's), opened now: a command that needs
    the home fails before it asks or reads anything when there is none."""
    appliance = Appliance(prompter=TerminalPrompter())
    home = appliance.home
    log.info("appliance home %s (appliance %s)", home.root, home.appliance_id)
    return appliance


def appliance_without_home() -> Appliance:
    """For commands that need no home (the courier's check, token listing, a PEM key file)."""
    return Appliance(prompter=TerminalPrompter())
