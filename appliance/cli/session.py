"""The open appliance a command works on."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from airseal.appliance.db import open_database
from airseal.appliance.home import Home, open_home


@dataclass(frozen=True)
class Session:
    home: Home
    db: sqlite_utils.Database


def open_appliance() -> Session:
    home = open_home()
    return Session(home, open_database(home))
