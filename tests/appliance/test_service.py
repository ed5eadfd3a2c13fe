"""The service layer both front ends call: opened once, typed results, injected clock/hardware."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from airseal.appliance.errors import UsageError
from airseal.appliance.service import (
    TOKEN_COLUMNS,
    Appliance,
    ApplianceOptions,
    MediaCheck,
    NoPrompter,
    TokenTable,
)
from airseal.appliance.service.records import ActionSpec, VendorSignature

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FixedPrompter:
    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        return "pw-for-tests"

    def notice(self, message: str) -> None:
        pass


def test_init_says_what_it_did_in_words_and_json(tmp_path):
    with Appliance(tmp_path / "home") as appliance:
        first = appliance.init()
        again = appliance.init()
    assert first.created and not again.created
    assert first.describe() == [
        f"Created {tmp_path / 'home'} (appliance {first.appliance_id}, schema {first.schema})"
    ]
    assert again.describe()[0].startswith("Already initialised: ")
    assert again.to_json() == {
        "home": str(tmp_path / "home"), "created": False,
        "appliance_id": first.appliance_id, "schema": first.schema,
    }


def test_the_database_opens_on_first_use_and_closes_with_the_block(tmp_path):
    Appliance(tmp_path / "home").init()
    with Appliance(tmp_path / "home") as appliance:
        assert appliance._db is None  # nothing opened yet
        assert appliance.list_keys() == []
        db = appliance.db
    assert appliance._db is None
    with pytest.raises(Exception, match="closed"):
        db.execute("SELECT 1")


def test_the_injected_clock_dates_actions(tmp_path):
    root = tmp_path / "home"
    options = ApplianceOptions(clock=lambda: NOW)
    payload = tmp_path / "tool.sh"
    payload.write_bytes(b"#!/bin/sh\necho hi\n")
    with Appliance(root, FixedPrompter(), options) as appliance:
        appliance.init()
        appliance.generate_file_key("ops")
        appliance.add_file(payload, VendorSignature())
        spec = ActionSpec(name="(Install)Tool", os="linux", mode="execute", file=str(payload))
        record = appliance.create_action(spec, "ops")
        edited = appliance.edit_action(record.id, ActionSpec(run_as="root"), None)
    assert record.created == NOW.isoformat()
    assert edited.predicate.execute is not None and edited.predicate.execute.run_as == "root"
    assert edited.predicate.payload == record.predicate.payload


def test_work_that_needs_a_secret_fails_without_a_prompter(tmp_path):
    with Appliance(tmp_path / "home") as appliance:
        appliance.init()
        with pytest.raises(UsageError):
            appliance.generate_file_key("ops")
    assert isinstance(Appliance().prompter, NoPrompter)


def test_the_courier_check_describes_damaged_media(tmp_path):
    (tmp_path / "airseal").mkdir()
    check = Appliance(options=ApplianceOptions(clock=lambda: NOW)).check_media(tmp_path)
    assert isinstance(check, MediaCheck) and not check.ok
    lines = check.describe()
    assert lines[0] == f"Media {check.report.status.upper()}: {tmp_path}"
    assert lines[-1] == "  do not carry this media: export again at the appliance"
    assert check.to_json() == check.report.to_json_dict()


def test_an_empty_token_table_says_so():
    table = TokenTable("/lib/none.so", ())
    assert table.describe() == ["No token is present in /lib/none.so."]
    assert table.rows() == [] and table.to_json() == []
    assert len(TOKEN_COLUMNS) == 8


def test_the_service_loads_no_signing_stack_until_a_method_needs_it():
    probe = (
        "import sys\n"
        "from airseal.appliance.service import Appliance\n"
        "from airseal.appliance.service import records\n"
        "records.KeyRecord\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pkcs11', 'yubikit', 'ykman', 'sigstore', 'sigstore_models', 'textual'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_injected_yubikeys_replace_pcsc(tmp_path: Path):
    seen: list[int | None] = []

    def factory(serial: int | None):
        seen.append(serial)
        return lambda: None

    options = ApplianceOptions(yubikey_factory=factory, yubikey_lister=lambda: ["fake"])
    appliance = Appliance(tmp_path, options=options)
    assert appliance.yubikeys() == ["fake"]
    appliance.yubikey(12345)
    assert seen == [12345]
