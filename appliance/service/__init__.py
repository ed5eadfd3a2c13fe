"""The one API both front ends call: :class:`Appliance`, its options and its results.

Importing this package is cheap: the signing stack loads only inside the methods that sign, and
each name below loads its module when first used (PEP 562), so that a front end that needs only
:class:`ApplianceOptions` to start (the TUI, before its first paint) does not load
:class:`Appliance` and every result type with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airseal.appliance.service.appliance import Appliance, NoPrompter
    from airseal.appliance.service.options import ApplianceOptions, default_home, utc_now
    from airseal.appliance.service.results import (
        TOKEN_COLUMNS,
        AuditRow,
        Initialised,
        MediaCheck,
        SettingView,
        TokenTable,
    )
    from airseal.appliance.unlocked_keys import UnlockedKeys

_MODULE_OF = {
    "Appliance": "airseal.appliance.service.appliance",
    "NoPrompter": "airseal.appliance.service.appliance",
    "default_home": "airseal.appliance.service.options",
    "ApplianceOptions": "airseal.appliance.service.options",
    "utc_now": "airseal.appliance.service.options",
    "TOKEN_COLUMNS": "airseal.appliance.service.results",
    "AuditRow": "airseal.appliance.service.results",
    "Initialised": "airseal.appliance.service.results",
    "MediaCheck": "airseal.appliance.service.results",
    "SettingView": "airseal.appliance.service.results",
    "TokenTable": "airseal.appliance.service.results",
    "UnlockedKeys": "airseal.appliance.unlocked_keys",
}

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


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
