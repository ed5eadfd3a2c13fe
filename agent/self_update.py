"""Update the installed agent from an offline kit carried on the media, with rollback.

The kit (built by ``scripts/kit``) lies in a folder on the stick. The update:

1. copies the kit into a private folder under the install prefix (the stick can change under us)
   and checks that copy: MANIFEST.sha256 must carry a valid signature by a distributor this agent
   enrolled for actions (what runs on the endpoint), every file must match its sha256, and no
   file, symlink or special file may be there that the manifest does not list;
2. runs the kit's own installer (``install --agent-only --no-switch``: it checks the kit again,
   with OpenSSL, and builds a new release venv beside the current one with
   ``pip --no-index --require-hashes``);
3. keeps a copy of the journal and config (a newer agent may migrate the journal), runs the new
   agent's ``--version`` and ``selfcheck`` against the real state, switches ``PREFIX/current`` to
   the new release (one atomic rename) and runs ``selfcheck`` again through it;
4. if any of that fails, switches back, restores the journal and config, removes the new release
   and says why. The agent's keys are never written: both agents only read them.

The layout is the kit installer's: ``PREFIX/releases/<version>-<manifest id>/`` venvs and the
``PREFIX/current`` symlink that ``/usr/local/bin/airseal-agent`` goes through. Hand-written
because it is glue between our kit format, our trust store and the installer; pip does the
installing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from airseal._internal.atomic import read_capped
from airseal.agent.errors import AgentError
from airseal.agent.journal import DistributorRecord
from airseal.trustroot.errors import VerificationError

MANIFEST = "MANIFEST.sha256"
SIGNATURE = "MANIFEST.sha256.sig"
UNSIGNED = frozenset({MANIFEST, SIGNATURE, "MANIFEST.sha256.sigstore.json"})
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_KIT_JSON_BYTES = 64 * 1024
LINE = re.compile(r"^([0-9a-f]{64})  ([A-Za-z0-9@._+-][A-Za-z0-9@._+/-]*)$")
SELFCHECK_TIMEOUT = 300
INSTALL_TIMEOUT = 1800


class KitRefused(VerificationError):
    title = "Kit refused"
    check = "kit"
    hint = "do not install it: ask the distributor for the kit again (scripts/kit --key)"


class SelfUpdateFailed(AgentError):
    title = "Self-update failed"
    check = "self-update"
    hint = "the previous agent is still installed and current; send this message to the distributor"


@dataclass(frozen=True)
class UpdateResult:
    previous: str | None
    """The release ``current`` pointed to before (None: there was none)."""
    installed: str
    version: str
    signed_by: str
    """The enrolled distributor whose key signed the kit's manifest."""

    def to_json(self) -> dict[str, object]:
        return {"schemaVersion": 1, "previous": self.previous, "installed": self.installed,
                "version": self.version, "signedBy": self.signed_by}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def copy_kit(kit: Path, dest: Path) -> None:
    """Copy regular files and folders only; a symlink or special file refuses the kit."""
    if not kit.is_dir():
        raise KitRefused("not a folder", subject=str(kit), check="kit-folder")
    for dirpath, dirnames, filenames in os.walk(kit):
        here = Path(dirpath)
        (dest / here.relative_to(kit)).mkdir(parents=True, exist_ok=True)
        for name in [*dirnames, *filenames]:
            path = here / name
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                raise KitRefused("a symlink or special file", subject=str(path),
                                 check="kit-files")
        for name in filenames:
            shutil.copyfile(here / name, dest / here.relative_to(kit) / name)


def verify_kit(kit: Path, distributors: Sequence[DistributorRecord]) -> DistributorRecord:
    """Check the (private copy of the) kit; return the distributor whose key signed it."""
    from airseal.trustroot.keys import load_public_key
    from airseal.trustroot.verify import verify_detached_signature

    manifest_path, signature_path = kit / MANIFEST, kit / SIGNATURE
    try:
        manifest = read_capped(manifest_path, MAX_MANIFEST_BYTES)
        signature = read_capped(signature_path, 64 * 1024)
    except FileNotFoundError as exc:
        raise KitRefused("missing: the kit is not signed", subject=exc.filename,
                         check="signature") from None
    digest = hashlib.sha256(manifest).digest()
    signer = None
    for distributor in distributors:
        if "actions" not in distributor.may_sign:
            continue
        key = load_public_key(distributor.public_key_pem.encode(), subject=distributor.name)
        try:
            verify_detached_signature(key, signature, digest, message=manifest,
                                      subject=str(manifest_path))
        except VerificationError:
            continue
        signer = distributor
        break
    if signer is None:
        raise KitRefused(
            "no distributor enrolled for actions on this agent signed it",
            subject=str(manifest_path),
            check="signature",
            hint="the kit was altered or comes from another site: do not install it; "
            "check `airseal-agent distributors` and ask for a kit signed with an enrolled key",
        )
    listed: dict[str, str] = {}
    for number, line in enumerate(manifest.decode("utf-8", "replace").splitlines(), 1):
        match = LINE.match(line)
        if not match or ".." in match[2].split("/") or match[2] in UNSIGNED:
            raise KitRefused(f"line {number} is malformed or names a path outside the kit",
                             subject=str(manifest_path), check="manifest")
        listed[match[2]] = match[1]
    present = {p.relative_to(kit).as_posix() for p in kit.rglob("*") if p.is_file()} - UNSIGNED
    for extra in sorted(present - set(listed)):
        raise KitRefused("not listed in MANIFEST.sha256", subject=str(kit / extra),
                         check="manifest")
    for name, expected in sorted(listed.items()):
        path = kit / name
        if not path.is_file():
            raise KitRefused("listed in MANIFEST.sha256 but missing", subject=str(path),
                             check="manifest")
        actual = _sha256(path)
        if actual != expected:
            raise KitRefused(f"sha256 {actual} does not match MANIFEST.sha256 ({expected})",
                             subject=str(path), check="digest")
    return signer


def _kit_version(kit: Path) -> str:
    try:
        info = json.loads(read_capped(kit / "kit.json", MAX_KIT_JSON_BYTES))
        version = info["version"]
        sets = info["sets"]
    except (OSError, ValueError, KeyError, TypeError):
        raise KitRefused("kit.json is missing or malformed", subject=str(kit / "kit.json"),
                         check="kit-json") from None
    if not isinstance(version, str) or not re.fullmatch(r"[A-Za-z0-9.+!_-]{1,64}", version):
        raise KitRefused("kit.json: bad version", subject=str(kit / "kit.json"), check="kit-json")
    if "agent" not in sets:
        raise KitRefused("the kit has no agent set", subject=str(kit / "kit.json"),
                         check="kit-json")
    return version


def _switch(prefix: Path, target: str) -> None:
    temporary = prefix / f".current.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    os.replace(temporary, prefix / "current")


def _snapshot(state_root: Path, journal: Path, into: Path) -> None:
    into.mkdir()
    config = state_root / "config.json"
    if config.exists():
        shutil.copy2(config, into / "config.json")
    if journal.exists():
        source = sqlite3.connect(journal)
        target = sqlite3.connect(into / "journal.db")
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()


def _restore(state_root: Path, journal: Path, snapshot: Path) -> None:
    if (snapshot / "config.json").exists():
        shutil.copy2(snapshot / "config.json", state_root / "config.json")
    if (snapshot / "journal.db").exists():
        source = sqlite3.connect(snapshot / "journal.db")
        target = sqlite3.connect(journal)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()


def _check(argv: list[str], env: Mapping[str, str], what: str) -> str:
    try:
        done = subprocess.run(argv, env=dict(env), capture_output=True, text=True,
                              timeout=SELFCHECK_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{what}: {exc}"
    if done.returncode != 0:
        said = [line.strip() for line in (done.stderr or done.stdout).strip().splitlines()]
        return f"{what} exited {done.returncode}: {' | '.join(said)[-600:]}"
    return ""


def self_update(
    kit: Path,
    *,
    prefix: Path,
    state_root: Path,
    journal_path: Path,
    distributors: Sequence[DistributorRecord],
    env: Mapping[str, str],
    python: str | None = None,
) -> UpdateResult:
    """Install the agent from ``kit`` under ``prefix``, switch to it if it passes its self-check,
    else leave the previous install current and the state as it was."""
    if not (prefix / "releases").is_dir():
        raise SelfUpdateFailed(
            "no kit installation here (no releases/ folder)", subject=str(prefix),
            hint="install the agent from the kit first (install --agent-only), or pass --prefix",
        )
    current = prefix / "current"
    previous = os.readlink(current) if current.is_symlink() else None
    work = Path(tempfile.mkdtemp(prefix=".self-update.", dir=prefix))
    try:
        staged = work / "kit"
        copy_kit(kit, staged)
        signer = verify_kit(staged, distributors)
        version = _kit_version(staged)
        (work / "distributor.pub").write_text(signer.public_key_pem)
        release_name = f"{version}-{_sha256(staged / MANIFEST)[:12]}"
        if previous == f"releases/{release_name}":
            raise SelfUpdateFailed(f"release {release_name} is already the current one",
                                   subject=str(current), hint="nothing to do")
        interpreter = python or getattr(sys, "_base_executable", None) or "python3"
        install = subprocess.run(
            ["/bin/sh", str(staged / "install"), "--agent-only", "--no-switch",
             "--key", str(work / "distributor.pub"), "--prefix", str(prefix),
             "--python", interpreter],
            env={"PATH": env.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
                 "TMPDIR": str(work)},
            capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False,
        )
        release = prefix / "releases" / release_name
        if install.returncode != 0 or not (release / "bin" / "airseal-agent").exists():
            shutil.rmtree(release, ignore_errors=True)
            tail = " | ".join((install.stderr or install.stdout).strip().splitlines()[-3:])
            raise SelfUpdateFailed(f"the kit's installer failed ({install.returncode}): {tail}",
                                   subject=str(kit))
        child_env = {**env, "AIRSEAL_AGENT_HOME": str(state_root)}
        _snapshot(state_root, journal_path, work / "state")
        problem = _check([str(release / "bin" / "airseal-agent"), "--version"], child_env,
                         "airseal-agent --version")
        problem = problem or _check([str(release / "bin" / "airseal-agent"), "selfcheck"],
                                    child_env, "airseal-agent selfcheck")
        switched = False
        if not problem:
            _switch(prefix, f"releases/{release_name}")
            switched = True
            problem = _check([str(current / "bin" / "airseal-agent"), "selfcheck"], child_env,
                             "airseal-agent selfcheck (through current)")
        if problem:
            if switched:
                if previous is not None:
                    _switch(prefix, previous)
                else:
                    current.unlink()
            _restore(state_root, journal_path, work / "state")
            shutil.rmtree(release, ignore_errors=True)
            raise SelfUpdateFailed(
                f"the new agent {version} failed its self-check ({problem}); rolled back to "
                f"{previous or 'nothing'}, state restored", subject=str(kit),
            )
        return UpdateResult(previous, f"releases/{release_name}", version, signer.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
