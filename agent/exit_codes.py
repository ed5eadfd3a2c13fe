"""Exit codes of `airseal-agent`: the shared table (:mod:`airseal._internal.cli`), plus one.

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

from airseal._internal import cli as shared
from airseal.errors import AirsealError
from airseal.trustroot.errors import VerificationError

OK = shared.OK
REFUSED = shared.FAILED
USAGE = shared.USAGE
OPERATIONAL = shared.OPERATIONAL
ACTIONS_FAILED = shared.ACTIONS_FAILED
INTERNAL = shared.INTERNAL
INTERRUPTED = shared.INTERRUPTED

ERROR_CODES: shared.ExitCodes = ((VerificationError, REFUSED),)


def for_error(error: AirsealError) -> int:
    return shared.exit_code_for(error, ERROR_CODES)
