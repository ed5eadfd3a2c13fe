"""Which keys may sign exports and actions for this endpoint: one interface, several sources.

:class:`TrustSource` is what the import pipeline asks ("may the key with this fingerprint sign
exports?"), and all it may ask. :class:`PinnedKeyTrust` answers from keys an administrator
enrolled on the endpoint (``airseal-agent enroll --key distributor.pub``), the parity mode of
commercial endpoint tools; a TUF-backed source (the site repository carried on the media) will
implement the same protocol, so the pipeline does not change when sites move to TUF.

An empty trust source is an error, not a pass: :class:`PinnedKeyTrust` refuses to exist without
a key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from airseal.agent.errors import NotEnrolled
from airseal.trustroot.keys import PublicKey
from airseal.trustroot.tlog.media_proofs import LogTrust

Purpose = Literal["exports", "actions"]
PURPOSES: tuple[Purpose, ...] = ("exports", "actions")


@dataclass(frozen=True)
class TrustedKey:
    """A key the endpoint trusts, with what it may sign and who said so."""

    fingerprint: str
    name: str
    public_key: PublicKey
    may_sign: frozenset[Purpose]
    authorised_by: str
    """Shown to the endpoint user at approval: e.g. "pinned at enrolment on 2025-06-01"."""


class TrustSource(Protocol):
    """Answers which keys may sign what. Implementations never return a key for a purpose it
    may not sign."""

    @property
    def description(self) -> str:
        """One line for people: where this trust comes from."""
        ...

    def key(self, fingerprint: str, purpose: Purpose) -> TrustedKey | None:
        """The trusted key with this fingerprint, if it may sign ``purpose``; else ``None``."""
        ...

    def keys(self, purpose: Purpose) -> tuple[TrustedKey, ...]:
        """Every key that may sign ``purpose``."""
        ...

    def explain(self, fingerprint: str, purpose: Purpose) -> str | None:
        """Why the key may not sign ``purpose`` (a revocation, a retirement), when known."""
        ...

    @property
    def action_threshold(self) -> int:
        """How many distinct trusted keys must sign each action (the two-person rule)."""
        ...

    @property
    def log_trust(self) -> LogTrust | None:
        """The transparency log media must be proved in, and the policy on it (``None``: no
        log is known to this endpoint, and media log files are only digest-checked)."""
        ...


class PinnedKeyTrust:
    """Trust in keys enrolled on this endpoint by an administrator. ``distrusted`` maps keys an
    administrator removed (`airseal-agent distrust`) to why, so refusals can name it."""

    def __init__(
        self, keys: Iterable[TrustedKey], distrusted: Mapping[str, str] | None = None,
        log_trust: LogTrust | None = None,
    ) -> None:
        self.log_trust = log_trust
        self._distrusted = dict(distrusted or {})
        self._keys = {k.fingerprint: k for k in keys if k.fingerprint not in self._distrusted}
        if not self._keys and not self._distrusted:
            raise NotEnrolled("no distributor key is enrolled on this endpoint")

    @property
    def description(self) -> str:
        return f"{len(self._keys)} pinned key(s)"

    def key(self, fingerprint: str, purpose: Purpose) -> TrustedKey | None:
        found = self._keys.get(fingerprint)
        if found is None or purpose not in found.may_sign:
            return None
        return found

    def keys(self, purpose: Purpose) -> tuple[TrustedKey, ...]:
        return tuple(k for k in self._keys.values() if purpose in k.may_sign)

    def explain(self, fingerprint: str, purpose: Purpose) -> str | None:
        return self._distrusted.get(fingerprint)

    @property
    def action_threshold(self) -> int:
        return 1


def hint_to_fingerprint(hint: str) -> str | None:
    """A bundle's ``publicKey.hint`` (base64 SHA-256 of the SPKI) as a hex fingerprint."""
    try:
        raw = base64.b64decode(hint, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


def parse_purposes(value: str) -> frozenset[Purpose]:
    """``exports``, ``actions`` or ``both`` (the CLI's ``--role``)."""
    if value == "both":
        return frozenset(PURPOSES)
    if value in PURPOSES:
        return frozenset({value})
    raise ValueError(f"{value!r} is not exports, actions or both")
