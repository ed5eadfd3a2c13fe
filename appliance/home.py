"""The appliance home: where its database, keys and file store live.

``$AIRSEAL_HOME`` if set, else the platform data directory. The home is private to the operator
account (0700); ``airseal init`` creates it and is safe to run again (it only migrates).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from airseal._internal.atomic import write_atomic
from airseal.appliance.errors import HomeError

HOME_ENV = "AIRSEAL_HOME"
CONFIG_NAME = "config.json"
DATABASE_NAME = "airseal.db"


def default_home() -> Path:
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("airseal", appauthor=False))


@dataclass(frozen=True)
class Home:
    """Paths inside one appliance home. Construct with :func:`open_home` or :func:`init_home`."""

    root: Path
    appliance_id: str

    @property
    def database_path(self) -> Path:
        return self.root / DATABASE_NAME

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    @property
    def audit_head_path(self) -> Path:
        return self.root / "audit.head"


def init_home(root: Path | None = None) -> tuple[Home, bool]:
    """Create (or reuse) a home. Returns the home and whether it was newly created."""
    root = Path(root) if root is not None else default_home()
    config_path = root / CONFIG_NAME
    created = not config_path.exists()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(root, 0o700)
    for sub in ("keys", "store"):
        (root / sub).mkdir(exist_ok=True, mode=0o700)
    if created:
        config = {"appliance_id": uuid.uuid4().hex, "format": 1}
        write_atomic(config_path, (json.dumps(config, indent=2) + "\n").encode(), mode=0o600)
    home = open_home(root)
    from airseal.appliance.db import open_database  # the database migrates itself on open

    open_database(home).close()
    return home, created


def open_home(root: Path | None = None) -> Home:
    root = Path(root) if root is not None else default_home()
    config_path = root / CONFIG_NAME
    try:
        config = json.loads(config_path.read_bytes())
        appliance_id = str(config["appliance_id"])
    except FileNotFoundError:
        raise HomeError("no appliance home here", subject=str(root)) from None
    except (ValueError, KeyError, TypeError):
        raise HomeError(
            "config.json is damaged", subject=str(config_path), hint="restore it from backup"
        ) from None
    return Home(root=root, appliance_id=appliance_id)
