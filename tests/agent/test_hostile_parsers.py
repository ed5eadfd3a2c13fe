"""Issue 13, items 1 and 2, at the endpoint: hostile JSON and out-of-range values on media are
refused by `airseal-agent import` (exit 1, the file and the check named), never a crash (exit 70),
and nothing is written, run or remembered."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from airseal.agent import exit_codes
from airseal.media import layout

from .helpers import ActionBuild, Distributor, new_distributor, resign_export, sign_action
from .helpers import write_media as write_export_media

STATEMENT = "airseal/export.sigstore.json"
ACTION_BUNDLE = "airseal/actions/p/action.sigstore.json"
NESTED = b"[" * 1000 + b"]" * 1000


@pytest.fixture
def site(agent_cli, agent_state, tmp_path) -> Distributor:
    distributor = new_distributor(tmp_path / "keys")
    assert agent_cli("enroll", "--key", str(distributor.pub), "--name", "Site").code == 0
    return distributor


def write_media(tmp_path: Path, distributor: Distributor, **build) -> tuple[Path, Path]:
    payload = tmp_path / "p.txt"
    payload.write_text("payload")
    dest = tmp_path / "out" / "p.txt"
    action = sign_action(ActionBuild("p", payload, dest=str(dest), **build), distributor)
    return write_export_media(tmp_path / "usb", distributor, [action]), dest


def import_refused(agent_cli, mount: Path, dest: Path, subject: str, check: str) -> str:
    """Import ``mount`` and assert the refusal: exit 1, ``subject`` and ``check`` named, no
    traceback, nothing placed, no distributor's sequence moved."""
    before = json.loads(agent_cli("status", "--json").stdout)["distributors"]
    result = agent_cli("import", str(mount), "--yes")
    assert result.code == exit_codes.REFUSED, result.stderr
    assert f"{subject}: " in result.stderr and f"[{check}]" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr.lower()
    assert not dest.parent.exists()
    assert json.loads(agent_cli("status", "--json").stdout)["distributors"] == before
    return result.stderr


def test_a_deeply_nested_export_bundle_is_refused(agent_cli, site, tmp_path):
    mount, dest = write_media(tmp_path, site)
    (mount / layout.MEDIA_DIR / layout.STATEMENT_NAME).write_bytes(NESTED)
    stderr = import_refused(agent_cli, mount, dest, STATEMENT, "json-depth")
    assert "deeper than 64 levels" in stderr


def test_a_deeply_nested_action_bundle_listed_by_a_signed_export_is_refused(
    agent_cli, site, tmp_path
):
    mount, dest = write_media(tmp_path, site)
    resign_export(mount, site, replace_files={"actions/p/action.sigstore.json": NESTED})
    import_refused(agent_cli, mount, dest, ACTION_BUNDLE, "json-depth")


def test_a_deeply_nested_signed_statement_is_refused(agent_cli, site, tmp_path):
    mount, dest = write_media(tmp_path, site)
    path = mount / layout.MEDIA_DIR / layout.STATEMENT_NAME
    bundle = json.loads(path.read_bytes())
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(NESTED).decode()
    path.write_text(json.dumps(bundle))
    # the signature no longer matches: refused before the payload is parsed, never a crash
    import_refused(agent_cli, mount, dest, STATEMENT, "signature")


def test_a_signed_sequence_beyond_sqlite_integer_is_refused(agent_cli, site, tmp_path):
    mount, dest = write_media(tmp_path, site)
    resign_export(mount, site, edit_predicate=lambda p: p.update(sequence=2**63))
    stderr = import_refused(agent_cli, mount, dest, STATEMENT, "statement")
    assert "sequence: " in stderr and "Value error" not in stderr


def plant_action_bundle(tmp_path: Path, mount: Path, distributor: Distributor, edit) -> None:
    """Replace the action bundle with one signed over ``edit``ed fields (the writer refuses to
    write it), listed by a freshly signed export statement: only the agent's parser stands."""
    payload = tmp_path / "p.txt"
    hostile = sign_action(
        ActionBuild("p", payload, dest=str(tmp_path / "out" / "p.txt"), raw_predicate_edit=edit),
        distributor,
    )
    resign_export(
        mount, distributor, replace_files={"actions/p/action.sigstore.json": hostile.bundle}
    )


def test_a_signed_action_version_beyond_sqlite_integer_is_refused(agent_cli, site, tmp_path):
    mount, dest = write_media(tmp_path, site)
    plant_action_bundle(tmp_path, mount, site, lambda p: p.update(version=2**63))
    stderr = import_refused(agent_cli, mount, dest, ACTION_BUNDLE, "statement")
    assert "version: " in stderr


@pytest.mark.parametrize(
    ("field", "value"),
    [("created", "0001-01-01T00:00:00+23:59"), ("expires", "9999-12-31T23:59:59-23:59")],
)
def test_a_signed_timestamp_outside_the_utc_years_is_refused(
    agent_cli, site, tmp_path, field, value
):
    mount, dest = write_media(tmp_path, site)
    resign_export(mount, site, edit_predicate=lambda p: p.update({field: value}))
    stderr = import_refused(agent_cli, mount, dest, STATEMENT, "statement")
    assert f"{field}: is outside years 1 to 9999 once converted to UTC" in stderr


def test_an_action_timestamp_outside_the_utc_years_is_refused(agent_cli, site, tmp_path):
    mount, dest = write_media(tmp_path, site)
    plant_action_bundle(
        tmp_path, mount, site, lambda p: p.update(validUntil="9999-12-31T23:59:59-23:59")
    )
    stderr = import_refused(agent_cli, mount, dest, ACTION_BUNDLE, "statement")
    assert "validUntil: is outside years 1 to 9999" in stderr
