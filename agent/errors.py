"""Typed errors for everything the agent decides or fails to do.

Two families, as in :mod:`airseal.media.errors` (python-tuf's ``RepositoryError`` vs
``DownloadError``):

- :class:`ImportRefused` (a :class:`airseal.trustroot.errors.VerificationError`): the media, a
  statement, an archive or a destination failed a check. Fail closed: nothing from such media is
  run. :mod:`airseal.media.errors` ``BadMedia`` and :mod:`airseal.trustroot.errors` verification
  errors pass through the agent unchanged and are refusals too.
- :class:`AgentError` (an :class:`airseal.errors.AirsealError`): the agent could not do its
  work (state directory, key password, lock, a command that failed to start); nothing was decided
  about the media.

Every error names the file (``subject``: a path relative to the mount point for media files) and
the ``check`` that failed, and carries a hint; ``str(error)`` is written for the endpoint user.
"""

from __future__ import annotations

from airseal import errors as shared
from airseal.errors import AirsealError
from airseal.trustroot.errors import VerificationError


class ImportRefused(VerificationError):
    """A check of the import failed: nothing from this media may be used."""

    title = "Import refused"
    check = "import"


class UntrustedDistributor(ImportRefused):
    title = "Unknown distributor"
    check = "trust"
    hint = (
        "the media was signed by a key this endpoint does not trust; if the distributor is "
        "genuine, enroll its public key: airseal-agent enroll --key distributor.pub"
    )


class SiteTrustRefused(ImportRefused):
    """The site TUF metadata on the media failed a TUF check (python-tuf's ngclient)."""

    title = "Site trust refused"
    check = "tuf"
    hint = (
        "the site repository on this media is stale, tampered with or incomplete: export again "
        "from the appliance and bring the new media"
    )


class ActionBelowThreshold(ImportRefused):
    title = "Too few approvals"
    check = "two-person"
    hint = (
        "the site policy requires more distinct distributor signatures on each action: have a "
        "second distributor approve it (airseal action approve ID --key NAME) and export again"
    )


class DistributorMismatch(ImportRefused):
    title = "Distributor mismatch"
    check = "trust"
    hint = "the statement names another distributor than the key that signed it; do not use it"


class DistributorNotApproved(ImportRefused):
    title = "Distributor not approved"
    check = "approval"
    hint = (
        "the endpoint user has not approved this distributor; run the import by hand "
        "(airseal-agent import DIR) to see its identity and approve it, or use --yes"
    )


class ExpiredMedia(ImportRefused):
    title = "Expired media"
    check = "freshness"
    hint = "the export is past its expiry; ask for a fresh export (stale media is never used)"


class MediaFromTheFuture(ImportRefused):
    title = "Media from the future"
    check = "freshness"
    hint = (
        "the export was created later than this endpoint's clock allows; set the clock right "
        "(freshness cannot be judged with a wrong clock)"
    )


class ReplayedMedia(ImportRefused):
    title = "Replayed media"
    check = "sequence"
    hint = (
        "this export is older than one already accepted from the same distributor (a replay "
        "or a rollback); use the newest export"
    )


class ActionStatementMismatch(ImportRefused):
    title = "Action mismatch"
    check = "action"
    hint = "the signed action does not match the export's listing; write the export again"


class StagedPayloadMismatch(ImportRefused):
    title = "Payload changed"
    check = "staging"
    hint = (
        "the payload changed between the import check and its use (check 3 of 3); nothing was "
        "run; check the media and this endpoint for tampering"
    )


class UnsafeArchive(ImportRefused):
    title = "Unsafe archive"
    check = "archive"
    hint = (
        "archives may hold only relative paths without '..', links that stay inside, no device "
        "files, within the size and count bounds; rebuild the archive"
    )


class UnsafeDestination(ImportRefused):
    title = "Unsafe destination"
    check = "destination"
    hint = "download destinations are absolute paths without '.' or '..' components"


class DestinationThroughLink(UnsafeDestination):
    title = "Link in destination"
    hint = (
        "a folder on the way to the destination is a symbolic link, which this endpoint does "
        "not follow; remove the link, or allow links: airseal-agent config --destination-links "
        "root-owned|follow"
    )


class DestinationOutsidePolicy(UnsafeDestination):
    title = "Destination outside policy"
    hint = (
        "this endpoint accepts downloads only below its allowed roots "
        "(airseal-agent config --allow-destination-root DIR); even a signed action cannot "
        "leave them"
    )


class AgentError(AirsealError):
    """The agent could not do its work; nothing was decided about any media."""

    title = "Agent error"
    check = "agent"


class StateError(AgentError):
    title = "Agent state"
    check = "state"
    hint = "initialise the agent with `airseal-agent init` (state: $AIRSEAL_AGENT_HOME)"


class NotEnrolled(AgentError):
    title = "Not enrolled"
    check = "enrolment"
    hint = "enroll a distributor first: airseal-agent enroll --key distributor.pub --name NAME"


class EnrolmentError(AgentError):
    title = "Enrolment"
    check = "enrolment"


class KeyPasswordError(AgentError):
    title = "Agent key password"
    check = "password"
    hint = (
        "the agent key password comes from the systemd credential airseal-agent-key "
        "($CREDENTIALS_DIRECTORY), else AIRSEAL_AGENT_KEY_PASSWORD, else a prompt on a terminal"
    )


class AgentBusy(AgentError):
    title = "Agent busy"
    check = "lock"
    hint = "another airseal-agent command holds the state lock; wait for it to finish"


class ActionFailed(AgentError):
    """One action could not be carried out (the import goes on with the next)."""

    title = "Action failed"
    check = "run"


class InsufficientSpace(ActionFailed):
    """A full disk is not the media's fault: the action fails, the import goes on."""

    title = "Not enough space"
    check = "disk-space"
    hint = "free space on the agent's state filesystem, then import the media again"


class RunAsUnavailable(ActionFailed):
    title = "Run-as unavailable"
    check = "run-as"
    hint = "running an action as another account needs the agent to run as root (or SYSTEM)"


class UsageError(AgentError, shared.UsageError):
    """The shared usage error (exit 2), tagged as the agent's."""

    title = "Usage"
    check = "usage"
