"""The agent's state directory: its id, its configuration, its key, its journal, its staging.

```
<state>/                 0700; $AIRSEAL_AGENT_HOME, else the system default
(airseal.agent.platforms)
  config.json            agent id, groups, reboot command, destination and retry policy
                         (edited with `airseal-agent config`)
  agent.key  agent.pub   the receipt-signing key, encrypted in cosign's format
  (airseal.agent.identity)
  journal.db             the SQLite journal (airseal.agent.journal)
  airseal.agent.lock             one state-changing command at a time (airseal.agent.lock)
  staging/               0700; payload copies for check 3, removed after each import
  placements.json        the placement ledger while downloads are placed (airseal.agent.leftovers)
  site/                  site mode's trusted TUF metadata (airseal.agent.site_trust)
```
"""

from __future__ import annotations

import json
import os
import shlex
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from airseal._internal.atomic import read_capped, write_atomic
from airseal.agent import identity
from airseal.agent.destinations import LINK_POLICIES, DestinationPolicy, LinkPolicy, root_problem
from airseal.agent.errors import StateError, UsageError
from airseal.agent.platforms import OperatingSystem, current_os, default_state_dir
from airseal.errors import FileTooLarge

CONFIG_NAME = "config.json"
JOURNAL_NAME = "journal.db"
LOCK_NAME = "airseal.agent.lock"
STAGING_NAME = "staging"
CONFIG_FORMAT = 1
REBOOT_COMMAND_ENV = "AIRSEAL_AGENT_REBOOT_COMMAND"
MAX_CONFIG_BYTES = 64 * 1024
MAX_GROUPS = 64
MAX_DESTINATION_ROOTS = 64
MAX_EXECUTE_RETRIES = 100
DEFAULT_EXECUTE_RETRIES = 0
"""A failed execute is not run again on a re-import unless the administrator says so: it may
have half-installed, and an unattended agent running it on every insertion of the same stick
repeats its side effects without anyone deciding to. A new action version always runs."""


SITE_DIR = "site"
"""Site mode's trusted TUF metadata (airseal.agent.site_trust)."""


def site_dir(state_root: Path) -> Path:
    return Path(state_root) / SITE_DIR


def is_site_enrolled(state_root: Path) -> bool:
    """Whether this agent trusts a site root (answered without importing the TUF client)."""
    return (site_dir(state_root) / "metadata" / "root.json").exists()


def state_dir(env: Mapping[str, str] | None = None, os_name: OperatingSystem | None = None) -> Path:
    """Where the state lives on this machine (see
    :func:`airseal.agent.platforms.default_state_dir`)."""
    return Path(default_state_dir(os_name or current_os(), os.environ if env is None else env))


@dataclass(frozen=True)
class AgentConfig:
    """What an administrator sets on an endpoint. ``reboot_command`` ``None`` = the OS default."""

    agent_id: str
    groups: tuple[str, ...] = ()
    reboot_command: tuple[str, ...] | None = None
    destination: DestinationPolicy = field(default_factory=DestinationPolicy)
    execute_retries: int = DEFAULT_EXECUTE_RETRIES
    """How many times a failed execute action version is run again on re-imports."""

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "format": CONFIG_FORMAT,
            "agentId": self.agent_id,
            "groups": list(self.groups),
            "rebootCommand": list(self.reboot_command) if self.reboot_command else None,
            "destination": {
                "allowedRoots": list(self.destination.allowed_roots),
                "links": self.destination.links,
            },
            "execute": {"retries": self.execute_retries},
        }

    @classmethod
    def from_json_dict(cls, data: Any, *, subject: str) -> AgentConfig:
        from airseal.media.layout import is_identifier

        try:
            if data["format"] != CONFIG_FORMAT:
                raise StateError(f"config format {data['format']!r} is unknown", subject=subject)
            agent_id = data["agentId"]
            groups = tuple(str(g) for g in data.get("groups") or ())
            reboot = data.get("rebootCommand")
            reboot_command = tuple(str(a) for a in reboot) if reboot else None
            destination = data.get("destination") or {}
            roots = tuple(str(r) for r in destination.get("allowedRoots") or ())
            links = destination.get("links", "refuse")
            retries = (data.get("execute") or {}).get("retries", DEFAULT_EXECUTE_RETRIES)
        except (KeyError, TypeError, AttributeError) as exc:
            raise StateError(f"config.json is damaged ({exc})", subject=subject) from None
        if not isinstance(agent_id, str) or not is_identifier(agent_id):
            raise StateError("config.json has no valid agentId", subject=subject)
        if links not in LINK_POLICIES:
            raise StateError(f"destination.links {links!r} is unknown", subject=subject)
        if (
            not isinstance(retries, int)
            or isinstance(retries, bool)
            or not 0 <= retries <= MAX_EXECUTE_RETRIES
        ):
            raise StateError(f"execute.retries {retries!r} is not 0..100", subject=subject)
        policy = DestinationPolicy(roots, cast(LinkPolicy, links))
        return cls(agent_id, groups, reboot_command, policy, retries)


@dataclass(frozen=True)
class AgentState:
    """An initialised state directory. Construct with :func:`open_state` or :func:`init_state`."""

    root: Path
    config: AgentConfig
    env: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def agent_id(self) -> str:
        return self.config.agent_id

    @property
    def journal_path(self) -> Path:
        return self.root / JOURNAL_NAME

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_NAME

    @property
    def staging_dir(self) -> Path:
        return self.root / STAGING_NAME

    @property
    def key_path(self) -> Path:
        return self.root / identity.KEY_NAME

    def reboot_command(self, os_name: OperatingSystem) -> tuple[str, ...]:
        """``$AIRSEAL_AGENT_REBOOT_COMMAND`` (shell-quoted), else config, else the OS default."""
        from airseal.agent.platforms import default_reboot_command

        override = self.env.get(REBOOT_COMMAND_ENV)
        if override:
            return tuple(shlex.split(override))
        return self.config.reboot_command or default_reboot_command(os_name)


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name != "nt":
        os.chmod(path, 0o700)


def init_state(
    root: Path,
    password: identity.PasswordSupplier,
    *,
    env: Mapping[str, str] | None = None,
    groups: tuple[str, ...] = (),
) -> tuple[AgentState, bool]:
    """Create (or reuse) the state directory; returns the state and whether it was created.

    ``password`` is only called when a new agent key has to be encrypted.
    """
    env = os.environ if env is None else env
    config_path = root / CONFIG_NAME
    created = not config_path.exists()
    _private_dir(root)
    _private_dir(root / STAGING_NAME)
    if created:
        config = AgentConfig(agent_id=uuid.uuid4().hex, groups=_check_groups(groups))
        if not (root / identity.KEY_NAME).exists():
            identity.create_agent_key(root, password())
        write_atomic(
            config_path, (json.dumps(config.to_json_dict(), indent=2) + "\n").encode(), mode=0o600
        )
    elif not (root / identity.KEY_NAME).exists():
        identity.create_agent_key(root, password())
    state = open_state(root, env=env)
    from airseal.agent.journal import Journal

    Journal.open(state.journal_path).close()
    return state, created


def open_state(root: Path, *, env: Mapping[str, str] | None = None) -> AgentState:
    path = root / CONFIG_NAME
    try:
        data = json.loads(read_capped(path, MAX_CONFIG_BYTES))
    except FileNotFoundError:
        raise StateError("the agent is not initialised here", subject=str(root)) from None
    except (OSError, ValueError, FileTooLarge) as exc:
        raise StateError(f"cannot read config.json ({exc})", subject=str(path)) from None
    config = AgentConfig.from_json_dict(data, subject=str(path))
    return AgentState(root, config, os.environ if env is None else env)


def _check_groups(groups: tuple[str, ...]) -> tuple[str, ...]:
    if len(groups) > MAX_GROUPS:
        raise UsageError(f"at most {MAX_GROUPS} groups")
    for group in groups:
        if not group or any(c in group for c in ":/\x00") or len(group) > 256:
            raise UsageError(f"{group!r} is not a group name")
    return tuple(dict.fromkeys(groups))


def _check_roots(roots: tuple[str, ...]) -> tuple[str, ...]:
    if len(roots) > MAX_DESTINATION_ROOTS:
        raise UsageError(f"at most {MAX_DESTINATION_ROOTS} destination roots")
    os_name = current_os()
    for root in roots:
        problem = root_problem(root, os_name)
        if problem is not None:
            raise UsageError(f"destination root {root!r} {problem}")
    return tuple(dict.fromkeys(roots))


def update_config(
    state: AgentState,
    *,
    groups: tuple[str, ...] | None = None,
    reboot_command: tuple[str, ...] | None = None,
    clear_reboot_command: bool = False,
    destination_roots: tuple[str, ...] | None = None,
    destination_links: str | None = None,
    execute_retries: int | None = None,
) -> AgentState:
    """Change the configuration atomically; returns the state with the new configuration.

    ``destination_roots`` ``()`` removes every root (any absolute destination again).
    """
    config = state.config
    if destination_roots is not None:
        config = replace(
            config,
            destination=replace(config.destination, allowed_roots=_check_roots(destination_roots)),
        )
    if destination_links is not None:
        if destination_links not in LINK_POLICIES:
            raise UsageError(f"destination links must be one of {', '.join(LINK_POLICIES)}")
        config = replace(
            config,
            destination=replace(config.destination, links=cast(LinkPolicy, destination_links)),
        )
    if execute_retries is not None:
        if not 0 <= execute_retries <= MAX_EXECUTE_RETRIES:
            raise UsageError(f"execute retries must be 0..{MAX_EXECUTE_RETRIES}")
        config = replace(config, execute_retries=execute_retries)
    if groups is not None:
        config = replace(config, groups=_check_groups(groups))
    if clear_reboot_command:
        config = replace(config, reboot_command=None)
    elif reboot_command is not None:
        if not reboot_command:
            raise UsageError("the reboot command is empty")
        config = replace(config, reboot_command=reboot_command)
    write_atomic(
        state.root / CONFIG_NAME,
        (json.dumps(config.to_json_dict(), indent=2) + "\n").encode(),
        mode=0o600,
    )
    return replace(state, config=config)
