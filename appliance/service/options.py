"""What the appliance reaches outside itself: the clock, YubiKeys, media capacity, mount table.

Front ends build one :class:`ApplianceOptions` and hand it to every :class:`Appliance` they open;
tests fix the clock, attach a software YubiKey and show the same removable media on every
machine through it. ``None`` means the real thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airseal.appliance.unlocked_keys import UnlockedKeys


def utc_now() -> datetime:
    return datetime.now(UTC)


def default_home() -> Path:
    """Where the appliance lives unless told: ``$AIRSEAL_HOME``, else the platform's data dir."""
    from airseal.appliance.home import default_home as home_root

    return home_root()


@dataclass(frozen=True)
class ApplianceOptions:
    clock: Callable[[], datetime] = field(default=utc_now)
    yubikey_factory: Callable[[int | None], Callable[[], Any]] | None = None
    """serial -> connection factory; default: a real YubiKey over PC/SC."""
    yubikey_lister: Callable[[], list[Any]] | None = None
    """The attached YubiKeys; default: the ones PC/SC sees."""
    attestation_anchors: Any = None
    """Trust anchors for PIV attestation; default: Yubico's shipped roots."""
    capacity_probe: Callable[[Path], Any] | None = None
    """Free-space measurement shown before an export; default: the export writer's own."""
    mount_table: Callable[[], str] | None = None
    """The text of ``/proc/self/mountinfo`` (where media are mounted); default: the real one."""
    unlocked_keys: UnlockedKeys | None = None
    """File keys unlocked for the session (a front end that stays open); default: none, every
    signing asks for the password."""
