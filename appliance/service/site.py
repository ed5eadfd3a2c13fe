"""The site trust use cases of :class:`~airseal.appliance.service.Appliance` (a mixin: the
front ends see them as ``Appliance`` methods). The work is :mod:`airseal.appliance.site`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils

    from airseal.appliance.actions import ActionRecord
    from airseal.appliance.home import Home
    from airseal.appliance.keystore import KeyRecord
    from airseal.appliance.prompts import Prompter
    from airseal.appliance.site import (
        AwaitingApproval,
        SignatureAttempt,
        SigningConfigView,
        SigningOutcome,
        SiteRepository,
        SiteStatus,
    )


class SiteUseCases:
    """Site repository and distributor policy: each change is a signing event."""

    prompter: Prompter

    @property
    def home(self) -> Home:
        raise NotImplementedError

    @property
    def db(self) -> sqlite_utils.Database:
        raise NotImplementedError

    def now(self) -> datetime:
        raise NotImplementedError

    def _site(self) -> SiteRepository:
        from airseal.appliance.site import SiteRepository

        return SiteRepository(self.home, self.db, self.prompter)

    def site_init(
        self, *, root_keys: Sequence[str], root_threshold: int, targets_keys: Sequence[str],
        targets_threshold: int, online_key: str,
    ) -> list[SigningOutcome]:
        """Create the site repository; root and targets are signed by the keys on hand."""
        return self._site().init(
            root_keys=root_keys, root_threshold=root_threshold, targets_keys=targets_keys,
            targets_threshold=targets_threshold, online_key=online_key, now=self.now(),
        )

    def site_status(self) -> SiteStatus:
        return self._site().status(now=self.now())

    def site_root(self) -> bytes:
        """The newest root metadata, for enrolling endpoints."""
        return self._site().root_bytes()

    def write_site_root(self, path: Path) -> None:
        from airseal._internal.atomic import write_atomic

        write_atomic(path, self.site_root(), mode=0o644)

    def site_sign(self) -> list[SigningOutcome]:
        """Collect signatures for the pending signing events from the keys on hand."""
        return self._site().sign_pending(now=self.now())

    def retire_key(self, name: str) -> KeyRecord:
        """Stop ``name`` from signing anything new."""
        from airseal.appliance.keystore import retire_key

        return retire_key(self.home, self.db, name)

    def site_write_request(self, target: Path) -> list[str]:
        """Carry the pending signing events to other key holders on media."""
        return self._site().write_request(target)

    def site_import_signatures(self, source: Path) -> list[SigningOutcome]:
        return self._site().import_signatures(source, now=self.now())

    def site_sign_request(self, source: Path, key_name: str) -> list[SignatureAttempt]:
        """Sign a request carried here on media with one of this appliance's keys."""
        from airseal.appliance.site import sign_request

        return sign_request(self.home, self.db, self.prompter, source, key_name)

    def site_rotate_root(
        self, *, add: Sequence[str], remove: Sequence[str], threshold: int | None,
        online_key: str | None = None,
    ) -> SigningOutcome:
        return self._site().rotate_root(add=add, remove=remove, threshold=threshold,
                                        online_key=online_key, now=self.now())

    def distributor_add(
        self, key: str, *, name: str | None, may_sign: Sequence[str]
    ) -> SigningOutcome:
        from airseal.trustroot.site_policy import PURPOSES, Purpose

        purposes: list[Purpose] = [p for p in PURPOSES if p in may_sign]
        return self._site().add_distributor(key, name=name, may_sign=purposes, now=self.now())

    def distributor_set_threshold(self, threshold: int) -> SigningOutcome:
        """How many distinct distributor keys must sign each action (the two-person rule)."""
        return self._site().set_action_threshold(threshold, now=self.now())

    def site_log_policy(self, *, required: bool, witnesses: Sequence[str], quorum: int | None
                        ) -> SigningOutcome:
        """Publish the policy's ``log`` section (and the log's trusted root target): whether
        endpoints require the log's proofs, and which witnesses' cosignatures (a quorum)."""
        from airseal.appliance.errors import UsageError
        from airseal.trustroot.site_policy import LogPolicy
        from airseal.trustroot.tlog.cosignature import WitnessKey

        try:
            keys = tuple(WitnessKey.from_vkey(v) for v in witnesses)
        except ValueError as exc:
            raise UsageError(f"--witness: {exc}", hint="`airseal witness status` on the "
                             "station prints its vkey") from None
        from airseal.trustroot.site_policy import PolicyError

        chosen = (len(keys) if quorum is None else quorum) if keys else (quorum or 0)
        try:
            policy = LogPolicy(required, keys, chosen)
        except PolicyError as exc:
            raise UsageError(exc.detail, hint="name each witness with --witness VKEY, and a "
                             "--quorum of at most their number") from None
        return self._site().publish_log(now=self.now(), policy=policy)

    def site_signing_config(self) -> bytes | None:
        """The site's published Sigstore ``signing_config.json``, or None."""
        return self._site().signing_config()

    def site_signing_config_view(self) -> SigningConfigView:
        """What `airseal site signing-config` shows: whether one is set, its digest, its Rekors."""
        from airseal.appliance.site import SigningConfigView

        return SigningConfigView.of(self.site_signing_config())

    def site_set_signing_config(self, document: Path | None) -> SigningOutcome:
        """Publish (``document``) or clear (None) the site's Sigstore signing config as a
        TUF target: `--rekor-url` then takes each listed Rekor's API version from it."""
        from airseal.appliance.errors import UsageError
        from airseal.appliance.rekor_client import MAX_SIGNING_CONFIG_BYTES

        data = None
        if document is not None:
            try:
                with document.open("rb") as handle:
                    data = handle.read(MAX_SIGNING_CONFIG_BYTES + 1)
            except OSError as exc:
                raise UsageError(f"--set: {exc.strerror or exc}", subject=str(document)) from None
        return self._site().publish_signing_config(data, now=self.now())

    def approve_action(self, action_id: str, key_name: str) -> ActionRecord:
        """Add ``key_name``'s signature to the action (a second approval)."""
        from airseal.appliance.actions import approve_action

        return approve_action(self.home, self.db, action_id, key_name, self.prompter)

    def actions_awaiting_approval(self) -> list[AwaitingApproval]:
        """Current actions with fewer distinct distributor signatures than the site policy's
        action threshold (none without a site repository)."""
        from airseal.appliance.actions import current_actions

        now = self.now()
        return self._site().awaiting_approval(current_actions(self.db, now), now=now)

    def distributor_retire(self, key: str) -> SigningOutcome:
        return self._site().retire_distributor(key, now=self.now())

    def distributor_revoke(self, key: str, *, reason: str) -> SigningOutcome:
        return self._site().revoke_distributor(key, reason=reason, now=self.now())
