"""The one API both front ends call: :class:`Appliance`, its options and its results.

Importing this package is cheap: the signing stack loads only inside the methods that sign.
"""

from airseal.appliance.service.appliance import Appliance, NoPrompter, default_home
from airseal.appliance.service.options import ApplianceOptions, utc_now
from airseal.appliance.service.results import (
    TOKEN_COLUMNS,
    AuditRow,
    Initialised,
    MediaCheck,
    SettingView,
    TokenTable,
)
from airseal.appliance.unlocked_keys import UnlockedKeys

__all__ = [
    "TOKEN_COLUMNS",
    "Appliance",
    "ApplianceOptions",
    "AuditRow",
    "Initialised",
    "MediaCheck",
    "NoPrompter",
    "SettingView",
    "TokenTable",
    "UnlockedKeys",
    "default_home",
    "utc_now",
]
