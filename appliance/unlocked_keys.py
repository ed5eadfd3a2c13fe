"""File keys unlocked for a session of a front end that stays open (the terminal UI).

The operator types a file key's password once; the decrypted key stays in this process's memory
(never written, logged or copied elsewhere) until the operator locks it or it has not been used
for ``idle_seconds``. A key is found by name *and* fingerprint, so a replaced key file is asked
for again. The CLI (one command per process) opens no session and holds nothing.

Why a context variable: :class:`~airseal.appliance.service.Appliance` sets the session around the
methods that sign, and :func:`airseal.appliance.keystore.open_signer` reads it; the signing
modules between them (actions, blobs, export) need no extra parameter. Each worker thread runs
in its own context, so a session set by one never leaks into another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

DEFAULT_IDLE_SECONDS = 300.0
DEFAULT_ATTEMPTS = 3


@dataclass
class _Unlocked:
    fingerprint: str
    key: Any
    last_used: float


class UnlockedKeys:
    """Decrypted file keys of one session, by key name; safe to use from several threads."""

    def __init__(
        self,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_seconds = idle_seconds
        self.attempts = attempts
        """How many passwords the operator may type before the unlock fails."""
        self._clock = clock
        self._keys: dict[str, _Unlocked] = {}
        self._lock = threading.Lock()

    def get(self, name: str, fingerprint: str) -> Any | None:
        """The unlocked private key of ``name`` (counts as a use), or None."""
        with self._lock:
            self._expire_locked()
            held = self._keys.get(name)
            if held is None or held.fingerprint != fingerprint:
                return None
            held.last_used = self._clock()
            return held.key

    def put(self, name: str, fingerprint: str, key: Any) -> None:
        with self._lock:
            self._keys[name] = _Unlocked(fingerprint, key, self._clock())

    def names(self) -> list[str]:
        """The keys unlocked now, by name."""
        with self._lock:
            self._expire_locked()
            return sorted(self._keys)

    def lock(self, name: str | None = None) -> list[str]:
        """Forget ``name`` (default: every key); returns the names locked."""
        with self._lock:
            names = sorted(self._keys) if name is None else [n for n in [name] if n in self._keys]
            for n in names:
                del self._keys[n]
            return names

    def expire(self) -> list[str]:
        """Lock the keys idle longer than ``idle_seconds``; returns their names."""
        with self._lock:
            return self._expire_locked()

    def _expire_locked(self) -> list[str]:
        now = self._clock()
        idle = sorted(n for n, k in self._keys.items() if now - k.last_used >= self.idle_seconds)
        for n in idle:
            del self._keys[n]
        return idle


_SESSION: ContextVar[UnlockedKeys | None] = ContextVar("airseal_unlocked_keys", default=None)


def current_session() -> UnlockedKeys | None:
    """The session the calling code signs in, if a front end opened one."""
    return _SESSION.get()


@contextmanager
def signing_session(keys: UnlockedKeys | None) -> Iterator[None]:
    """Sign in ``keys``'s session for the duration of the block (None: no session)."""
    token = _SESSION.set(keys)
    try:
        yield
    finally:
        _SESSION.reset(token)
