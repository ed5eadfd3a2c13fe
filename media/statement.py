"""The predicates Airseal signs: the export statement and the action statement.

Both travel as in-toto v1 Statements inside DSSE Sigstore bundles (:mod:`airseal.trustroot.dsse`,
:mod:`airseal.trustroot.bundle`). The models are frozen, reject unknown fields, bound every string
and
list, and check their cross-field rules on construction: an object that exists is well-formed.
JSON field names are camelCase.

- Export statement: subjects are every file written under ``airseal/`` except the statement
  itself and ``receipts/`` (name = path relative to ``airseal/``, digest = sha256); the predicate
  (:class:`ExportPredicate`) carries the export's identity, freshness, the action list and each
  file's size (in-toto subjects carry no size).
- Action statement: one subject, the payload (name + sha256); the predicate
  (:class:`ActionPredicate`) is what the operator created, as a commercial "node action".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from airseal.media import layout
from airseal.media.errors import InvalidExportStatement, UnsafeName, UnsafePath
from airseal.media.limits import (
    MAX_ACTIONS,
    MAX_ARGS,
    MAX_CONDITION_PATHS,
    MAX_PAYLOAD_BYTES,
    MAX_SEQUENCE,
    MAX_SUBJECTS,
)
from airseal.media.names import (
    MAX_NAME_UTF16_UNITS,
    check_unique,
    collision_key,
    name_problem,
    safe_relative_path,
    utf16_units,
)
from airseal.trustroot.dsse import Statement, Subject

EXPORT_PREDICATE_TYPE: Final = "https://airseal.dev/export/v1"
ACTION_PREDICATE_TYPE: Final = "https://airseal.dev/action/v1"

_PART_SUFFIX_UNITS = len(layout.part_name("", 0))

# -- field types ---------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:59:59-23:59 is a valid timestamp whose UTC form has no year.
        raise ValueError("is outside years 1 to 9999 once converted to UTC") from None


def _timestamp_input(value: Any) -> Any:
    # pydantic's lax mode would read a bare number as a Unix time; media must say what it means.
    if not isinstance(value, (str, datetime)):
        raise ValueError("must be an RFC 3339 timestamp string")
    return value


def _safe_name(value: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise ValueError(f"{value!r} {problem}")
    return value


def _payload_name(value: str) -> str:
    _safe_name(value)
    if utf16_units(value) > MAX_NAME_UTF16_UNITS - _PART_SUFFIX_UNITS:
        raise ValueError("payload name leaves no room for a .partNNN suffix")
    return value


def _relative_path(value: str) -> str:
    try:
        return safe_relative_path(value)
    except (UnsafePath, UnsafeName) as exc:
        raise ValueError(exc.detail) from None


def _identifier(value: str) -> str:
    if not layout.is_identifier(value):
        raise ValueError(f"{value!r} is not an id (ASCII letters, digits, '.', '_', '-'; <= 64)")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_timestamp_input), AfterValidator(_utc)]
"""A timezone-aware timestamp, normalised to UTC (naive datetimes are rejected)."""
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Identifier = Annotated[str, AfterValidator(_identifier)]
FileSize = Annotated[StrictInt, Field(ge=0, le=MAX_PAYLOAD_BYTES)]
SequenceNumber = Annotated[StrictInt, Field(ge=1, le=MAX_SEQUENCE)]
"""A sequence or version: positive, and small enough for every JSON reader and SQLite."""
SafeName = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(_safe_name)
]
PayloadName = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(_payload_name)
]
RelativePath = Annotated[
    str, StringConstraints(min_length=1, max_length=1024), AfterValidator(_relative_path)
]
Text = Annotated[str, StringConstraints(max_length=4096), AfterValidator(_no_nul)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(_no_nul)]
OperatingSystem = Literal["linux", "macos", "windows"]


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        str_strip_whitespace=False,
    )

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON form (camelCase), as it goes into a statement predicate."""
        return self.model_dump(mode="json", by_alias=True)


# -- export --------------------------------------------------------------------------------------


class PayloadRef(_Model):
    """An exported payload: its name, digest and size, and its parts when it was split."""

    name: PayloadName
    sha256: Sha256Hex
    size: FileSize
    parts: tuple[RelativePath, ...] = Field(default=(), max_length=layout.MAX_PARTS)


class ExportedAction(_Model):
    id: Identifier
    version: SequenceNumber
    name: ShortText
    bundle: RelativePath
    payload: PayloadRef
    vendor: RelativePath | None = None
    """``actions/<id>/vendor.json`` when the vendor's signature travels with the action."""

    @model_validator(mode="after")
    def _layout(self) -> ExportedAction:
        expected = layout.action_bundle_path(self.id)
        if self.bundle != expected:
            raise ValueError(f"bundle must be {expected!r}, not {self.bundle!r}")
        if self.vendor is not None and self.vendor != layout.vendor_evidence_path(self.id):
            raise ValueError(
                f"vendor must be {layout.vendor_evidence_path(self.id)!r}, not {self.vendor!r}"
            )
        parts = self.payload.parts
        if len(parts) == 1:
            raise ValueError("a split payload has at least two parts")
        if parts and list(parts) != layout.part_paths(self.id, self.payload.name, len(parts)):
            raise ValueError("payload parts must be <payload>.part000, .part001 ... in order")
        return self

    @property
    def payload_paths(self) -> tuple[str, ...]:
        """The payload's file(s), relative to ``airseal/``, in joining order."""
        if self.payload.parts:
            return self.payload.parts
        return (layout.payload_path(self.id, self.payload.name),)


class ExportFile(_Model):
    path: RelativePath
    size: FileSize


class ExportPredicate(_Model):
    """What an export says about itself; sizes of every subject live in ``files``."""

    export_id: Identifier
    sequence: SequenceNumber
    created: UtcDatetime
    expires: UtcDatetime
    appliance_id: Identifier
    distributor: Sha256Hex
    actions: tuple[ExportedAction, ...] = Field(max_length=MAX_ACTIONS)
    files: tuple[ExportFile, ...] = Field(min_length=1, max_length=MAX_SUBJECTS)

    @model_validator(mode="after")
    def _consistent(self) -> ExportPredicate:
        if self.expires <= self.created:
            raise ValueError("expires must be after created")
        paths = [f.path for f in self.files]
        try:
            check_unique(paths)
            check_unique(a.id for a in self.actions)
        except UnsafeName as exc:
            raise ValueError(exc.detail) from None
        statement_key = collision_key(layout.STATEMENT_NAME)
        receipts_key = collision_key(layout.RECEIPTS_DIR)
        for path in paths:
            if collision_key(path) == statement_key:
                raise ValueError("the statement cannot list itself")
            if collision_key(path.split("/", 1)[0]) == receipts_key:
                raise ValueError(f"{path!r}: receipts are never part of an export")
        sizes = {f.path: f.size for f in self.files}
        for action in self.actions:
            carried = (action.vendor,) if action.vendor is not None else ()
            for path in (action.bundle, *action.payload_paths, *carried):
                if path not in sizes:
                    raise ValueError(f"action {action.id}: {path!r} is not among the files")
            if sum(sizes[p] for p in action.payload_paths) != action.payload.size:
                raise ValueError(f"action {action.id}: payload size does not match its files")
        return self

    def file_sizes(self) -> dict[str, int]:
        return {f.path: f.size for f in self.files}


@dataclass(frozen=True)
class ListedFile:
    """A file the export statement lists: path relative to ``airseal/``, size, sha256 (hex)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ExportContents:
    """An export statement read back: its predicate and every listed file with size and digest.

    Reading it does **not** verify the signature; see :func:`read_export_statement`.
    """

    statement: Statement
    predicate: ExportPredicate
    files: tuple[ListedFile, ...]

    def by_path(self) -> dict[str, ListedFile]:
        return {f.path: f for f in self.files}


def export_statement(predicate: ExportPredicate, digests: Mapping[str, str]) -> Statement:
    """The export Statement: one subject per file in ``predicate.files`` (digests by path)."""
    paths = [f.path for f in predicate.files]
    if set(digests) != set(paths):
        missing = sorted(set(paths) - set(digests))
        extra = sorted(set(digests) - set(paths))
        raise ValueError(f"digests do not match the file list (missing {missing}, extra {extra})")
    return Statement(
        subject=tuple(Subject(name=p, digest={"sha256": digests[p]}) for p in paths),
        predicateType=EXPORT_PREDICATE_TYPE,
        predicate=predicate.to_json_dict(),
    )


def validation_detail(exc: ValidationError, *, what: str = "predicate") -> str:
    """The first problem in the user's words: the JSON field as written in the file
    (``actions[0].version``) and what is wrong with it, without pydantic's prefixes."""
    first = exc.errors()[0]
    where = ""
    for part in first["loc"]:
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
    message = first["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return f"{where or what}: {message}"


def read_export_statement(statement: Statement, *, subject: str | None = None) -> ExportContents:
    """Validate an export Statement's predicate and its subjects against each other.

    Structure only: whether the statement was signed by a trusted key is decided by whoever
    verified the bundle it came from (the agent), not here.
    """
    if statement.predicate_type != EXPORT_PREDICATE_TYPE:
        raise InvalidExportStatement(
            f"predicate type is {statement.predicate_type!r}, not {EXPORT_PREDICATE_TYPE!r}",
            subject=subject,
        )
    try:
        predicate = ExportPredicate.model_validate(statement.predicate)
    except ValidationError as exc:
        raise InvalidExportStatement(validation_detail(exc), subject=subject) from None
    digests: dict[str, str] = {}
    for s in statement.subject:
        if s.name in digests:
            raise InvalidExportStatement(f"subject {s.name!r} is listed twice", subject=subject)
        digests[s.name] = s.sha256
    sizes = predicate.file_sizes()
    if set(digests) != set(sizes):
        only_subjects = sorted(set(digests) - set(sizes))[:3]
        only_files = sorted(set(sizes) - set(digests))[:3]
        raise InvalidExportStatement(
            f"subjects and files differ (only in subjects: {only_subjects}, "
            f"only in files: {only_files})",
            subject=subject,
        )
    for action in predicate.actions:
        if not action.payload.parts:
            (path,) = action.payload_paths
            if digests[path] != action.payload.sha256:
                raise InvalidExportStatement(
                    f"action {action.id}: payload sha256 differs from its subject", subject=subject
                )
    files = tuple(ListedFile(f.path, f.size, digests[f.path]) for f in predicate.files)
    return ExportContents(statement, predicate, files)


# -- action --------------------------------------------------------------------------------------

_ACTION_NAME = re.compile(r"^\([^()\x00-\x1f]{1,64}\)[^\x00-\x1f]{1,192}$")
_FILE_MODE = re.compile(r"^0[0-7]{3}$")
_ACCOUNT = re.compile(r"^[^\x00-\x1f:/]{1,256}$")
_WINDOWS_ABSOLUTE = re.compile(r"^[A-Za-z]:\\")
_INTAKE_METHOD = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


def _action_name(value: str) -> str:
    if not _ACTION_NAME.match(value):
        raise ValueError('must look like "(Purpose)Name"')
    return value


def _account(value: str) -> str:
    if not _ACCOUNT.match(value):
        raise ValueError(f"{value!r} is not an account or group name")
    return value


def absolute_path_problem(path: str, os_name: OperatingSystem) -> str | None:
    """Why ``path`` is not an absolute path in ``os_name``'s syntax, or ``None``."""
    if "\x00" in path:
        return "contains a NUL character"
    if len(path) > 4096:
        return "is longer than 4096 characters"
    if os_name == "windows":
        if not _WINDOWS_ABSOLUTE.match(path):
            return r"is not an absolute Windows path (C:\...)"
        parts = path[3:].split("\\")
        if parts == [""]:
            return None
        for part in parts:
            if part in ("", ".", ".."):
                return f"has an {'empty' if not part else repr(part)} component"
            problem = name_problem(part)
            if problem is not None:
                return f"component {part!r} {problem}"
        return None
    if not path.startswith("/"):
        return "is not an absolute path (/...)"
    if any(part in (".", "..") for part in path.split("/")):
        return "has a '.' or '..' component"
    return None


AccountName = Annotated[str, AfterValidator(_account)]
ConditionPath = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class Conditions(_Model):
    """When the action applies on an endpoint; all given conditions must hold."""

    if_missing: tuple[ConditionPath, ...] = Field(default=(), max_length=MAX_CONDITION_PATHS)
    if_exists: tuple[ConditionPath, ...] = Field(default=(), max_length=MAX_CONDITION_PATHS)
    host: Annotated[ShortText, StringConstraints(max_length=255)] | None = None
    """A shell-style glob matched against the endpoint's hostname."""
    group: AccountName | None = None


class ExecuteOptions(_Model):
    run: RelativePath | None = None
    """The file to run inside an archive payload; ``None`` runs the payload itself."""
    args: tuple[Text, ...] = Field(default=(), max_length=MAX_ARGS)
    run_as: AccountName | None = None
    timeout_seconds: StrictInt = Field(default=3600, ge=1, le=7 * 24 * 3600)
    reboot: Literal["never", "if-requested", "always"] = "never"


class DownloadOptions(_Model):
    dest: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    """Absolute destination path in the target OS's syntax (checked against ``os``)."""
    file_mode: Annotated[str, StringConstraints(pattern=_FILE_MODE.pattern)] = "0644"
    owner: AccountName | None = None


class ActionPayload(_Model):
    name: PayloadName
    sha256: Sha256Hex
    size: FileSize


class Intake(_Model):
    """How the payload was verified when it entered the appliance (integrity check 1 of 3)."""

    verified: StrictBool
    method: Annotated[str, StringConstraints(pattern=_INTAKE_METHOD.pattern)]
    """e.g. ``cosign-signature``, ``bundle-key``, ``keyless`` or ``none``."""
    signer: ShortText | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Intake:
        if self.verified == (self.method == "none"):
            raise ValueError('method is "none" exactly when the payload was not verified')
        return self


class ActionPredicate(_Model):
    """A signed action, with the fields of a commercial endpoint tool's "node action"."""

    id: Identifier
    version: SequenceNumber
    name: Annotated[str, AfterValidator(_action_name)]
    description: Text = ""
    label: Annotated[Text, StringConstraints(max_length=128)] = ""
    os: OperatingSystem
    conditions: Conditions = Conditions()
    mode: Literal["execute", "download"]
    execute: ExecuteOptions | None = None
    download: DownloadOptions | None = None
    valid_from: UtcDatetime
    valid_until: UtcDatetime
    payload: ActionPayload
    intake: Intake
    require_vendor_signature: StrictBool = False
    """Endpoints refuse the action unless the vendor's signature travels with it and holds."""

    @model_validator(mode="after")
    def _consistent(self) -> ActionPredicate:
        if self.valid_until <= self.valid_from:
            raise ValueError("validUntil must be after validFrom")
        if self.mode == "execute" and (self.execute is None or self.download is not None):
            raise ValueError("mode execute needs execute options and no download options")
        if self.mode == "download" and (self.download is None or self.execute is not None):
            raise ValueError("mode download needs download options and no execute options")
        if self.download is not None:
            problem = absolute_path_problem(self.download.dest, self.os)
            if problem is not None:
                raise ValueError(f"download dest {self.download.dest!r} {problem}")
        for path in (*self.conditions.if_missing, *self.conditions.if_exists):
            problem = absolute_path_problem(path, self.os)
            if problem is not None:
                raise ValueError(f"condition path {path!r} {problem}")
        return self


def action_statement(predicate: ActionPredicate) -> Statement:
    """The action Statement: subject = payload name + sha256, predicate = the action."""
    return Statement(
        subject=(
            Subject(name=predicate.payload.name, digest={"sha256": predicate.payload.sha256}),
        ),
        predicateType=ACTION_PREDICATE_TYPE,
        predicate=predicate.to_json_dict(),
    )


def read_action_statement(statement: Statement, *, subject: str | None = None) -> ActionPredicate:
    """Validate an action Statement (structure only; the signature is checked elsewhere)."""
    if statement.predicate_type != ACTION_PREDICATE_TYPE:
        raise InvalidExportStatement(
            f"predicate type is {statement.predicate_type!r}, not {ACTION_PREDICATE_TYPE!r}",
            subject=subject,
        )
    try:
        predicate = ActionPredicate.model_validate(statement.predicate)
    except ValidationError as exc:
        raise InvalidExportStatement(validation_detail(exc), subject=subject) from None
    if len(statement.subject) != 1:
        raise InvalidExportStatement("an action statement has exactly one subject", subject=subject)
    (only,) = statement.subject
    if only.name != predicate.payload.name or only.sha256 != predicate.payload.sha256:
        raise InvalidExportStatement(
            "the subject does not name the action's payload", subject=subject
        )
    return predicate


__all__ = [
    "ACTION_PREDICATE_TYPE",
    "EXPORT_PREDICATE_TYPE",
    "ActionPayload",
    "ActionPredicate",
    "Conditions",
    "DownloadOptions",
    "ExecuteOptions",
    "ExportContents",
    "ExportFile",
    "ExportPredicate",
    "ExportedAction",
    "Intake",
    "ListedFile",
    "PayloadRef",
    "absolute_path_problem",
    "action_statement",
    "export_statement",
    "read_action_statement",
    "read_export_statement",
    "validation_detail",
]
