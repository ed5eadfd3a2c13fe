"""Exit codes of `airseal`, in one place (documented in the README)."""

from __future__ import annotations

from airseal.trustroot.errors import TrustrootError, VerificationError

OK = 0
VERIFICATION_FAILED = 1  # a signature, digest, bundle, identity or media check failed
USAGE = 2  # bad arguments (click's own convention)
OPERATIONAL = 3  # home, key, password, token or I/O problem: nothing was verified
INTERNAL = 70  # a bug: EX_SOFTWARE
INTERRUPTED = 130


def for_error(error: TrustrootError) -> int:
    if isinstance(error, VerificationError):
        return VERIFICATION_FAILED
    return OPERATIONAL
