"""Typed errors for the media format, its reader, its writer and the courier's check.

Two families, kept apart as python-tuf keeps ``RepositoryError`` apart from ``DownloadError``:

- :class:`BadMedia` (a :class:`airseal.trustroot.errors.VerificationError`): *the media is bad*.
  Something on the stick, or a name or path about to be written to it, breaks a rule. Fail
  closed: nothing from such media may be used.
- :class:`MediaIOError` (an :class:`airseal.errors.AirsealError`): *reading or writing failed*.
  Nothing was decided about the content (a full stick, an unknown capacity, an I/O error, bytes
  that did not read back as written).

Every error names the file (``subject``, a path relative to the mount point where there is one)
and the ``check`` that failed, and carries a hint. ``str(error)`` is written for the user.
"""

from __future__ import annotations

from airseal.errors import AirsealError
from airseal.trustroot.errors import DigestMismatch, StatementError, VerificationError


class BadMedia(VerificationError):
    """The media (or a name or path meant for it) breaks a media rule."""

    title = "Bad media"
    check = "media"


class UnsafePath(BadMedia):
    title = "Unsafe path"
    check = "path"
    hint = (
        "media paths are relative, '/'-separated, without '.', '..', empty parts or drive letters"
    )


class UnsafeName(BadMedia):
    title = "Unsafe name"
    check = "name"
    hint = (
        "names must be valid on FAT32 and exFAT: no reserved device names (CON, NUL, COM1...), "
        'no <>:"/\\|?* or control characters, no trailing dot or space, at most 255 UTF-16 units, '
        "unique ignoring case"
    )


class UnsafeEntry(BadMedia):
    title = "Unsafe entry"
    check = "entry-type"
    hint = (
        "media holds only plain files and folders: remove symlinks, hard links and special "
        "files, or write the export again"
    )


class OversizedFile(BadMedia):
    title = "File too large"
    check = "size-limit"
    hint = "the file is larger than the media format allows; the media was not made by Airseal"


class TooManyEntries(BadMedia):
    title = "Too many entries"
    check = "entry-count"
    hint = "the media holds more files or deeper folders than an export can; write it again"


class UnlistedFile(BadMedia):
    title = "Unlisted file"
    check = "listed"
    hint = "every file under airseal/ must be named by the export statement; write the export again"


class MissingFile(BadMedia):
    title = "Missing file"
    check = "present"
    hint = "the export is incomplete; write it again before carrying it"


class SizeMismatch(BadMedia):
    title = "Size mismatch"
    check = "size"
    hint = "the file was truncated or changed after the export was written; write it again"


class MediaDigestMismatch(BadMedia, DigestMismatch):
    title = "Digest mismatch"
    check = "sha256"
    hint = "the file was changed or damaged after the export was written; write it again"


class InvalidExportStatement(BadMedia, StatementError):
    title = "Invalid statement"
    check = "statement"
    hint = "the statement is not an Airseal export or action statement; write the export again"


class PayloadMismatch(BadMedia):
    title = "Payload mismatch"
    check = "payload"
    hint = "the payload is not the file the action signed; recreate the action or restore the file"


class InvalidReceipt(BadMedia):
    title = "Invalid receipt"
    check = "receipt"
    hint = (
        "a receipt is airseal/receipts/<agent-id>/<export-id>.json, with ids the media rules "
        "allow and within the receipt size limit"
    )


class MediaIOError(AirsealError):
    """Reading or writing the media failed; nothing was decided about its content."""

    title = "Media I/O failed"
    check = "io"


class MediaReadError(MediaIOError):
    title = "Read failed"
    check = "read"
    hint = "the media could not be read; reseat the stick or try another port"


class MediaWriteError(MediaIOError):
    title = "Write failed"
    check = "write"
    hint = "the export was not completed; the previous export (if any) is still in place"


class ReadBackMismatch(MediaWriteError):
    title = "Read-back mismatch"
    check = "read-back"
    hint = "the media did not return the bytes just written to it; it may be failing, use another"


class InsufficientSpace(MediaWriteError):
    title = "Insufficient space"
    check = "capacity"
    hint = "free space on the media or export fewer actions; the previous export was left intact"


class UnknownCapacity(MediaWriteError):
    title = "Unknown capacity"
    check = "capacity"
    hint = (
        "the free space of this filesystem cannot be determined; if you know it is large enough, "
        "override the check (airseal export --ignore-capacity, or allow_unknown_capacity=True)"
    )
