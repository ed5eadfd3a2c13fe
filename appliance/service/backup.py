"""The backup and restore use cases of :class:`~airseal.appliance.service.Appliance`.

A mixin like the log's: the work is :mod:`airseal.appliance.backup`; these methods choose the
home, the prompter and the keys that confirm a backup's signer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from datetime import datetime

    import sqlite_utils

    from airseal.appliance.backup import BackupResult, CheckedBackup, RestoreResult
    from airseal.appliance.home import Home
    from airseal.appliance.prompts import Prompter


class BackupUseCases:
    """Mixed into :class:`Appliance`; relies on its ``root``, ``home``, ``db`` and ``prompter``."""

    if TYPE_CHECKING:
        root: Path | None
        prompter: Prompter

        @property
        def home(self) -> Home: ...
        @property
        def db(self) -> sqlite_utils.Database: ...

        def now(self) -> datetime: ...
        def _signing(self) -> AbstractContextManager[None]: ...

    def backup(
        self, target: Path, key_name: str, *, recipients: tuple[str, ...] = ()
    ) -> BackupResult:
        """Write an encrypted backup of this home into ``target``, signed by ``key_name``."""
        from airseal.appliance.backup import create_backup

        with self._signing():
            return create_backup(self.home, self.db, target, key_name, self.prompter,
                                 recipients=recipients, now=self.now())

    def verify_backup(self, directory: Path, *, expect_key: str | None = None) -> CheckedBackup:
        """Check a backup without restoring it. Its signer is confirmed by ``expect_key``, or
        by being a key of the appliance here (when there is a home)."""
        from airseal.appliance.backup import verify_backup
        from airseal.appliance.errors import HomeError

        try:
            known = {row["fingerprint"] for row in self.db["keys"].rows}
            scratch = self.home.root
        except HomeError:
            known, scratch = set(), None
        return verify_backup(directory, self.prompter, expect_key=expect_key, known_keys=known,
                             scratch=scratch)

    def restore(
        self,
        directory: Path,
        *,
        expect_key: str | None,
        media: list[Path] | None = None,
        sequence_gap: int | None = None,
    ) -> RestoreResult:
        """Restore a backup into this appliance's home root, which must be absent or empty."""
        from airseal.appliance.backup import restore_backup
        from airseal.appliance.home import default_home

        return restore_backup(directory, self.root or default_home(), self.prompter,
                              expect_key=expect_key, media=media, sequence_gap=sequence_gap,
                              now=self.now())
