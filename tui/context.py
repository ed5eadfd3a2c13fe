"""What the screens work on: the appliance home, the clock and the hardware access.

Screens never hold a database connection across threads: each piece of work opens its own
session (:meth:`ApplianceContext.session`) in the thread that runs it. Time, hardware and the
mount table are injected here so that tests can fix the clock, attach a software YubiKey and
show the same removable media on every machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite_utils

    from airseal.appliance.home import Home
    from airseal.appliance.mounts import MediaMount, SpaceCheck


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ApplianceContext:
    root: Path
    clock: Callable[[], datetime] = field(default=_utc_now)
    yubikey_factory: Callable[[int | None], Callable[[], Any]] | None = None
    """serial -> connection factory; default: a real YubiKey over PC/SC."""
    yubikey_lister: Callable[[], list[Any]] | None = None
    attestation_anchors: Any = None
    """Trust anchors for PIV attestation; default: Yubico's shipped roots."""
    capacity_probe: Callable[[Path], Any] | None = None
    """Free-space measurement shown before an export; default: the export writer's own."""
    mount_table: Callable[[], str] | None = None
    """The text of ``/proc/self/mountinfo`` (where media are mounted); default: the real one."""

    def now(self) -> datetime:
        return self.clock()

    @contextmanager
    def session(self) -> Iterator[tuple[Home, sqlite_utils.Database]]:
        """The opened home and a database connection for the calling thread."""
        from airseal.appliance.db import open_database
        from airseal.appliance.home import open_home

        home = open_home(self.root)
        db = open_database(home)
        try:
            yield home, db
        finally:
            db.close()

    def yubikey(self, serial: int | None = None) -> Callable[[], Any]:
        if self.yubikey_factory is not None:
            return self.yubikey_factory(serial)
        from airseal.appliance.signers.piv import yubikey

        return yubikey(serial)

    def yubikeys(self) -> list[Any]:
        if self.yubikey_lister is not None:
            return self.yubikey_lister()
        from airseal.appliance.signers.piv import list_yubikeys

        return list(list_yubikeys())

    def detect_media(self) -> list[MediaMount]:
        """Removable media mounted now."""
        from airseal.appliance.mounts import detect_media

        return detect_media(self.mount_table() if self.mount_table else None)

    def check_space(
        self, db: sqlite_utils.Database, target: Path, action_ids: list[str]
    ) -> SpaceCheck:
        """Whether an export of ``action_ids`` fits on ``target``."""
        from airseal.appliance.mounts import check_space

        mountinfo = self.mount_table() if self.mount_table else None
        if self.capacity_probe is not None:
            return check_space(
                db, target, action_ids, probe=self.capacity_probe, mountinfo=mountinfo
            )
        return check_space(db, target, action_ids, mountinfo=mountinfo)


def default_context() -> ApplianceContext:
    from airseal.appliance.home import default_home

    return ApplianceContext(root=default_home())
