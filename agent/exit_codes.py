"""Exit codes of `airseal-agent`, in one place. They mirror `airseal`'s, plus one.

| code | meaning |
|---|---|
| 0 | every action succeeded or did not apply (skipped, already done) |
| 1 | import refused: a signature, trust, freshness, sequence, digest, archive or approval check |
| 2 | usage: bad arguments |
| 3 | operational: state, key password, lock or I/O problem; nothing was decided |
| 4 | the media verified and was imported, but at least one action failed |
| 70 | internal error (a bug) |
| 130 | interrupted |
"""

from __future__ import annotations

from airseal.trustroot.errors import TrustrootError, VerificationError

OK = 0
REFUSED = 1
USAGE = 2
OPERATIONAL = 3
ACTIONS_FAILED = 4
INTERNAL = 70
INTERRUPTED = 130


def for_error(error: TrustrootError) -> int:
    from airseal.agent.errors import UsageError

    if isinstance(error, VerificationError):
        return REFUSED
    if isinstance(error, UsageError):
        return USAGE
    return OPERATIONAL
