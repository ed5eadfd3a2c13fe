"""The JSON contract (docs/json.md) against what every `--json` command prints on a real site:
camelCase keys, a top-level schemaVersion, lists as items, one time format, every key
documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from airseal._internal.cli import DATA_KEYED
from tests.cli.commands import COMMANDS_BY_NAME
from tests.cli.json_tour import tour

DOC = (Path(__file__).parents[2] / "docs" / "json.md").read_text()
CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
ONE_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
FREE_FORM = {"details"}
"""Objects whose keys are what an audit entry recorded (documented by example, not one by one)."""


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return tour(tmp_path_factory.mktemp("json-tour"))


def _keys(value: Any, *, documented: bool = True) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, child in value.items():
            if documented:
                found.add(key)
            keep = documented and key not in DATA_KEYED and key not in FREE_FORM
            found |= _keys(child, documented=keep)
    elif isinstance(value, list):
        for item in value:
            found |= _keys(item, documented=documented)
    return found


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for child in value.values() for s in _strings(child)]
    if isinstance(value, list):
        return [s for child in value for s in _strings(child)]
    return [value] if isinstance(value, str) else []


def test_every_json_command_was_run(documents: dict[str, Any]) -> None:
    with_json = {
        name for name, command in COMMANDS_BY_NAME.items()
        if any(p.name == "as_json" for p in command.command.params)
    }
    needs_a_yubikey = {name for name in with_json if name.startswith("airseal piv ")}
    # self-update needs two signed install kits: tests/packaging/test_self_update.py reads its
    # document; its keys are still checked against docs/json.md there.
    # site sign, sign-request and import-signatures need a pending event (keys not on hand) and
    # a second appliance: tests/agent/test_site_hardware.py runs them.
    elsewhere = {
        "airseal key import", "airseal-agent self-update", "airseal site sign",
        "airseal site sign-request", "airseal site import-signatures",
    }
    assert with_json - needs_a_yubikey - elsewhere <= set(documents), (
        with_json - set(documents)
    )


def test_one_shape_one_key_style_one_time_format(documents: dict[str, Any]) -> None:
    for name, document in documents.items():
        assert isinstance(document, dict) and document["schemaVersion"] == 1, name
        for key in _keys(document):
            assert CAMEL.match(key), (name, key)
        for text in _strings(document):
            if TIMESTAMP.match(text):
                assert ONE_FORMAT.match(text), (name, text)
    assert set(documents["airseal key list"]) == {"schemaVersion", "items"}
    assert set(documents["airseal-agent history"]) == {"schemaVersion", "items"}


def test_every_key_is_documented(documents: dict[str, Any]) -> None:
    for name, document in documents.items():
        title = "## Errors" if name == "error" else f"`{name}`"
        assert title in DOC, (name, "no section in docs/json.md")
        missing = sorted(k for k in _keys(document) if f"`{k}`" not in DOC)
        assert missing == [], (name, missing)
