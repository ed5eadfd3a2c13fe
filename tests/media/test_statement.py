"""Export and action statement models: validated on construction, camelCase JSON, bounded."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from airseal.media.errors import InvalidExportStatement
from airseal.media.limits import MAX_SUBJECTS
from airseal.media.statement import (
    ACTION_PREDICATE_TYPE,
    EXPORT_PREDICATE_TYPE,
    ActionPredicate,
    ExportPredicate,
    action_statement,
    export_statement,
    read_action_statement,
    read_export_statement,
)
from airseal.trustroot.dsse import Statement, Subject

from .helpers import NOW

SHA_A = "a" * 64
SHA_B = "b" * 64
SHA_C = "c" * 64


def export_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "exportId": "exp-1",
        "sequence": 3,
        "created": "2025-06-01T12:00:00Z",
        "expires": "2025-06-15T12:00:00Z",
        "applianceId": "appliance-1",
        "distributor": "d" * 64,
        "actions": [
            {
                "id": "act-1",
                "version": 2,
                "name": "(Install)Tool",
                "bundle": "actions/act-1/action.sigstore.json",
                "payload": {"name": "tool.bin", "sha256": SHA_B, "size": 10, "parts": []},
            }
        ],
        "files": [
            {"path": "actions/act-1/action.sigstore.json", "size": 1500},
            {"path": "actions/act-1/payload/tool.bin", "size": 10},
        ],
    }
    data.update(changes)
    return data


def digests() -> dict[str, str]:
    return {"actions/act-1/action.sigstore.json": SHA_A, "actions/act-1/payload/tool.bin": SHA_B}


def test_export_predicate_round_trips_through_a_statement_in_camel_case() -> None:
    predicate = ExportPredicate.model_validate(export_data())
    statement = export_statement(predicate, digests())
    payload = json.loads(statement.to_payload())
    assert payload["predicateType"] == EXPORT_PREDICATE_TYPE
    assert payload["predicate"]["exportId"] == "exp-1"
    assert payload["predicate"]["applianceId"] == "appliance-1"
    assert payload["predicate"]["created"] == "2025-06-01T12:00:00Z"
    assert [s["name"] for s in payload["subject"]] == list(digests())
    contents = read_export_statement(Statement.from_payload(statement.to_payload()))
    assert contents.predicate == predicate
    assert contents.by_path()["actions/act-1/payload/tool.bin"].sha256 == SHA_B
    assert contents.by_path()["actions/act-1/payload/tool.bin"].size == 10


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"distributor": "D" * 64}, "distributor"),
        ({"distributor": "d" * 63}, "distributor"),
        ({"created": "2025-06-01T12:00:00"}, "timezone"),
        ({"created": 1700000000}, "RFC 3339"),
        ({"expires": "2025-06-01T12:00:00Z"}, "expires must be after created"),
        ({"sequence": 0}, "sequence"),
        ({"sequence": "3"}, "sequence"),
        ({"exportId": "../x"}, "not an id"),
        ({"exportId": "CON:"}, "not an id"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
        ({"files": []}, "files"),
    ],
)
def test_export_predicate_rejects(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ExportPredicate.model_validate(export_data(**changes))


def test_naive_datetime_objects_are_refused_and_offsets_normalised_to_utc() -> None:
    naive = datetime(2025, 6, 1, 12, 0)
    with pytest.raises(ValidationError, match="timezone"):
        ExportPredicate.model_validate(export_data(created=naive))
    predicate = ExportPredicate.model_validate(export_data(created="2025-06-01T14:00:00+02:00"))
    assert predicate.created == NOW
    assert predicate.created.utcoffset() == timedelta(0)


def test_bad_sha_in_payload_and_unknown_nested_field() -> None:
    data = export_data()
    data["actions"][0]["payload"]["sha256"] = "xyz"
    with pytest.raises(ValidationError, match="sha256"):
        ExportPredicate.model_validate(data)
    data = export_data()
    data["actions"][0]["payload"]["mode"] = "0777"
    with pytest.raises(ValidationError, match="Extra inputs"):
        ExportPredicate.model_validate(data)


def test_oversized_lists_are_refused() -> None:
    files = [{"path": f"f{i}", "size": 1} for i in range(MAX_SUBJECTS + 1)]
    with pytest.raises(ValidationError, match="at most 10000"):
        ExportPredicate.model_validate(export_data(actions=[], files=files))
    huge = export_data()
    huge["actions"] = huge["actions"] * 1001
    with pytest.raises(ValidationError, match="at most 1000"):
        ExportPredicate.model_validate(huge)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("actions/../../etc/passwd", "component"),
        ("/etc/passwd", "absolute"),
        ("export.sigstore.json", "cannot list itself"),
        ("receipts/agent/exp.json", "receipts"),
        ("ACTIONS/act-1/payload/tool.bin", "same name on FAT32"),
    ],
)
def test_export_file_paths_are_checked(path: str, message: str) -> None:
    data = export_data()
    data["files"].append({"path": path, "size": 1})
    with pytest.raises(ValidationError, match=message):
        ExportPredicate.model_validate(data)


def test_action_layout_and_sizes_must_match_the_files() -> None:
    data = export_data()
    data["actions"][0]["bundle"] = "actions/other/action.sigstore.json"
    with pytest.raises(ValidationError, match="bundle must be"):
        ExportPredicate.model_validate(data)
    data = export_data()
    data["actions"][0]["payload"]["size"] = 11
    with pytest.raises(ValidationError, match="payload size"):
        ExportPredicate.model_validate(data)
    data = export_data()
    data["files"].pop()
    with pytest.raises(ValidationError, match="not among the files"):
        ExportPredicate.model_validate(data)


def test_split_payload_parts_must_be_in_order() -> None:
    data = export_data()
    parts = ["actions/act-1/payload/tool.bin.part000", "actions/act-1/payload/tool.bin.part001"]
    data["actions"][0]["payload"]["parts"] = parts
    data["files"] = [data["files"][0], {"path": parts[0], "size": 6}, {"path": parts[1], "size": 4}]
    ExportPredicate.model_validate(data)
    data["actions"][0]["payload"]["parts"] = list(reversed(parts))
    with pytest.raises(ValidationError, match="in order"):
        ExportPredicate.model_validate(data)
    data["actions"][0]["payload"]["parts"] = parts[:1]
    with pytest.raises(ValidationError, match="at least two parts"):
        ExportPredicate.model_validate(data)


def test_models_are_frozen() -> None:
    predicate = ExportPredicate.model_validate(export_data())
    with pytest.raises(ValidationError):
        predicate.sequence = 4  # type: ignore[misc]


def test_statement_subjects_must_match_the_files() -> None:
    predicate = ExportPredicate.model_validate(export_data())
    with pytest.raises(ValueError, match="do not match"):
        export_statement(predicate, {"actions/act-1/action.sigstore.json": SHA_A})
    statement = Statement(
        subject=(
            Subject(name="actions/act-1/action.sigstore.json", digest={"sha256": SHA_A}),
            Subject(name="actions/act-1/payload/other.bin", digest={"sha256": SHA_B}),
        ),
        predicateType=EXPORT_PREDICATE_TYPE,
        predicate=predicate.to_json_dict(),
    )
    with pytest.raises(InvalidExportStatement, match="subjects and files differ"):
        read_export_statement(statement, subject="airseal/export.sigstore.json")


def test_unsplit_payload_digest_must_match_its_subject() -> None:
    predicate = ExportPredicate.model_validate(export_data())
    statement = export_statement(predicate, {**digests(), "actions/act-1/payload/tool.bin": SHA_C})
    with pytest.raises(InvalidExportStatement, match="payload sha256 differs"):
        read_export_statement(statement)


def test_wrong_predicate_type_is_refused() -> None:
    predicate = ExportPredicate.model_validate(export_data())
    statement = export_statement(predicate, digests())
    other = statement.model_copy(update={"predicate_type": ACTION_PREDICATE_TYPE})
    with pytest.raises(InvalidExportStatement, match="predicate type"):
        read_export_statement(other)


# -- actions -----------------------------------------------------------------------------------


def action_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "act-1",
        "version": 1,
        "name": "(Security)Agent update",
        "description": "Installs the agent",
        "label": "agents",
        "os": "linux",
        "conditions": {"ifMissing": ["/opt/agent/v2"], "host": "web-*", "group": "servers"},
        "mode": "execute",
        "execute": {
            "run": "bin/install.sh",
            "args": ["--quiet"],
            "runAs": "root",
            "timeoutSeconds": 600,
            "reboot": "if-requested",
        },
        "validFrom": "2025-06-01T00:00:00Z",
        "validUntil": "2025-07-01T00:00:00Z",
        "payload": {"name": "agent.tar.gz", "sha256": SHA_A, "size": 1234},
        "intake": {"verified": True, "method": "cosign-signature", "signer": "vendor key"},
    }
    data.update(changes)
    return data


def test_action_round_trips_and_its_subject_is_the_payload() -> None:
    predicate = ActionPredicate.model_validate(action_data())
    statement = action_statement(predicate)
    assert [(s.name, s.sha256) for s in statement.subject] == [("agent.tar.gz", SHA_A)]
    assert statement.predicate["execute"]["timeoutSeconds"] == 600
    assert read_action_statement(Statement.from_payload(statement.to_payload())) == predicate


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "Agent update"}, r"\(Purpose\)Name"),
        ({"name": "()Agent"}, r"\(Purpose\)Name"),
        ({"os": "solaris"}, "os"),
        ({"mode": "download"}, "mode download needs download options"),
        ({"download": {"dest": "/opt/x"}}, "mode execute needs execute options and no download"),
        ({"execute": None}, "mode execute needs execute options"),
        ({"validUntil": "2025-05-01T00:00:00Z"}, "validUntil must be after validFrom"),
        ({"intake": {"verified": True, "method": "none"}}, "not verified"),
        ({"intake": {"verified": False, "method": "keyless"}}, "not verified"),
        ({"intake": {"verified": "yes", "method": "keyless"}}, "verified"),
        ({"conditions": {"ifExists": ["relative/path"]}}, "not an absolute path"),
        ({"payload": {"name": "a/b", "sha256": SHA_A, "size": 1}}, "not allowed on FAT"),
        ({"payload": {"name": "x" * 250, "sha256": SHA_A, "size": 1}}, "partNNN"),
        ({"timeout": 5}, "Extra inputs"),
    ],
)
def test_action_predicate_rejects(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ActionPredicate.model_validate(action_data(**changes))


def test_execute_options_are_checked() -> None:
    for execute, message in [
        ({"run": "../../bin/sh"}, "component"),
        ({"timeoutSeconds": 0}, "timeoutSeconds"),
        ({"reboot": "sometimes"}, "reboot"),
        ({"args": ["ok"] * 257}, "at most 256"),
        ({"args": ["a\x00b"]}, "NUL"),
        ({"runAs": "a/b"}, "account"),
    ]:
        with pytest.raises(ValidationError, match=message):
            ActionPredicate.model_validate(action_data(execute=execute))


@pytest.mark.parametrize(
    ("os_name", "dest", "ok"),
    [
        ("linux", "/opt/app/file.bin", True),
        ("macos", "/Applications/App.pkg", True),
        ("linux", "opt/app", False),
        ("linux", "/opt/../etc/passwd", False),
        ("windows", "C:\\Program Files\\App\\app.msi", True),
        ("windows", "C:\\", True),
        ("windows", "/opt/app", False),
        ("windows", "C:\\Temp\\..\\Windows", False),
        ("windows", "C:\\Temp\\CON", False),
        ("windows", "C:\\Temp\\a:b", False),
    ],
)
def test_download_destination_follows_the_target_os(os_name: str, dest: str, ok: bool) -> None:
    data = action_data(
        os=os_name,
        mode="download",
        execute=None,
        conditions={},
        download={"dest": dest, "fileMode": "0640", "owner": "svc"},
    )
    if ok:
        assert ActionPredicate.model_validate(data).download is not None
    else:
        with pytest.raises(ValidationError, match="download dest"):
            ActionPredicate.model_validate(data)


@pytest.mark.parametrize("mode", ["644", "0999", "04755", "rw-r--r--", "0o644"])
def test_file_mode_is_a_0644_style_octal_string(mode: str) -> None:
    data = action_data(mode="download", execute=None, download={"dest": "/x", "fileMode": mode})
    with pytest.raises(ValidationError, match=r"file_mode|fileMode"):
        ActionPredicate.model_validate(data)


def test_action_statement_subject_must_name_the_payload() -> None:
    predicate = ActionPredicate.model_validate(action_data())
    statement = action_statement(predicate).model_copy(
        update={"subject": (Subject(name="agent.tar.gz", digest={"sha256": SHA_B}),)}
    )
    with pytest.raises(InvalidExportStatement, match="does not name the action's payload"):
        read_action_statement(statement)
