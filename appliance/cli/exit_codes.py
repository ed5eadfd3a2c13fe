"""Exit codes of `airseal` (documented in the README): the shared table, named for the appliance.

The codes and the ladder that picks them live in :mod:`airseal._internal.cli`; the appliance adds
one family of its own: a failed verification exits 1.
"""

from __future__ import annotations

from airseal._internal import cli as shared
from airseal.errors import AirsealError
from airseal.trustroot.errors import VerificationError

OK = shared.OK
VERIFICATION_FAILED = shared.FAILED  # a signature, digest, bundle, identity or media check failed
USAGE = shared.USAGE  # bad arguments: click's, and airseal.errors.UsageError
OPERATIONAL = shared.OPERATIONAL  # home, key, password, token or I/O problem: nothing was verified
INTERNAL = shared.INTERNAL  # a bug: EX_SOFTWARE
INTERRUPTED = shared.INTERRUPTED

ERROR_CODES: shared.ExitCodes = ((VerificationError, VERIFICATION_FAILED),)


def for_error(error: AirsealError) -> int:
    return shared.exit_code_for(error, ERROR_CODES)
