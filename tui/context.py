"""What the screens work on: a factory of :class:`~airseal.appliance.service.Appliance` objects.

Screens never hold a database connection across threads: each piece of work opens its own
``Appliance`` (:meth:`ApplianceContext.open`) in the thread that runs it. Time, hardware and the
mount table are the service's :class:`~airseal.appliance.service.ApplianceOptions`, injected here
so that tests can fix the clock, attach a software YubiKey and show the same removable media on
every machine.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airseal.appliance.service import ApplianceOptions, UnlockedKeys

if TYPE_CHECKING:
    from airseal.appliance.service import Appliance
    from airseal.appliance.service.records import MediaMount, Prompter


class ApplianceContext:
    """The appliance at ``root`` and the options every :class:`Appliance` opened for the app
    gets; ``overrides`` are :class:`ApplianceOptions` fields (``clock=``, ``mount_table=`` ...).

    The app is one session: file keys unlocked in it stay unlocked (in memory) until locked or
    idle (:attr:`unlocked_keys`)."""

    def __init__(
        self, root: Path, options: ApplianceOptions | None = None, **overrides: Any
    ) -> None:
        self.root = root
        options = replace(options or ApplianceOptions(), **overrides)
        if options.unlocked_keys is None:
            options = replace(options, unlocked_keys=UnlockedKeys())
        self.options = options

    @property
    def unlocked_keys(self) -> UnlockedKeys:
        keys = self.options.unlocked_keys
        assert keys is not None  # set in __init__
        return keys

    def now(self) -> datetime:
        return self.options.clock()

    def open(self, prompter: Prompter | None = None) -> Appliance:
        """An appliance for the calling thread; use it in a ``with`` block."""
        # loaded here (by the first worker), not with the app: the dashboard paints without it
        from airseal.appliance.service import Appliance

        return Appliance(self.root, prompter, self.options)

    def detect_media(self) -> list[MediaMount]:
        """Removable media mounted now (the media pickers call this)."""
        with self.open() as appliance:
            return appliance.detect_media()


def default_context() -> ApplianceContext:
    from airseal.appliance.service import default_home

    return ApplianceContext(root=default_home())
