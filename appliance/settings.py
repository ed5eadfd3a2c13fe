"""Site policy settings kept in the appliance database.

Settings are few and named; unknown names are refused so a typo cannot silently leave a policy
off. Changes are audited.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from airseal.appliance import audit
from airseal.appliance.errors import UsageError
from airseal.appliance.home import Home


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    choices: tuple[str, ...] | None
    description: str


SETTINGS = {
    s.name: s
    for s in (
        Setting(
            "intake.require-signature",
            "false",
            ("true", "false"),
            "refuse files added without a verified vendor signature",
        ),
        Setting(
            "export.valid-days",
            "14",
            None,
            "days an export stays valid on endpoints (stale media is refused)",
        ),
        Setting("action.valid-days", "365", None, "default validity window of a new action"),
        Setting("site.root-days", "365", None, "days a new site root version stays valid"),
        Setting("site.targets-days", "180", None,
                "days a new site targets (distributor policy) version stays valid"),
        Setting("site.timestamp-days", "30", None,
                "days the site timestamp re-signed at each export stays valid on endpoints"),
        Setting(
            "export.parity-percent",
            "10",
            None,
            "PAR2 repair data written with each export, as a percentage of its size (0: none; "
            "needs Debian's par2); `airseal media repair` uses it",
        ),
        Setting(
            "verify.require-tlog",
            "false",
            ("true", "false"),
            "key-based bundles must carry a transparency-log entry verified against "
            "--trusted-root (verify-blob, verify-blob-attestation)",
        ),
    )
}


PERCENT_SETTINGS = frozenset({"export.parity-percent"})


def _setting(name: str) -> Setting:
    if name not in SETTINGS:
        raise UsageError(f"unknown setting {name!r}", hint=f"settings: {', '.join(SETTINGS)}")
    return SETTINGS[name]


def get(db: sqlite_utils.Database, name: str) -> str:
    setting = _setting(name)
    row = db.execute("SELECT value FROM settings WHERE name = ?", [name]).fetchone()
    return str(row[0]) if row else setting.default


def get_flag(db: sqlite_utils.Database, name: str) -> bool:
    return get(db, name) == "true"


def get_int(db: sqlite_utils.Database, name: str) -> int:
    return int(get(db, name))


def set_value(home: Home, db: sqlite_utils.Database, name: str, value: str) -> None:
    setting = _setting(name)
    if setting.choices is not None and value not in setting.choices:
        raise UsageError(f"{name} must be one of {', '.join(setting.choices)}")
    if name in PERCENT_SETTINGS:
        if not value.isdigit() or not 0 <= int(value) <= 100:
            raise UsageError(f"{name} must be a whole number from 0 to 100")
    elif setting.choices is None and (not value.isdigit() or not 1 <= int(value) <= 3650):
        raise UsageError(f"{name} must be a whole number of days between 1 and 3650")
    db.execute("INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)", [name, value])
    audit.record(home, db, "setting.set", name, {"value": value})
