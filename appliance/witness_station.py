"""A witness station: another machine that cosigns the appliance's log checkpoints.

Its home (``$AIRSEAL_WITNESS_HOME``, else ``~/.airseal-witness``) holds ``witness.json`` (its
name, the log it watches: key PEM and origin, and the last checkpoint it cosigned) and
``witness.key``, an Ed25519 private key encrypted under the password (``COSIGN_PASSWORD`` or
asked). ``cosign`` verifies the checkpoint with the log key and origin, proves it consistent with
the last one it cosigned (a proof from that size must be in the request's ``proofs.json``:
`airseal log witness-request` writes them), refuses a fork or a shrink naming both checkpoints,
and only then signs a C2SP ``cosignature/v1`` and remembers the new checkpoint (atomically).

Keys: Ed25519 file keys, as cosignature/v1 requires. A YubiKey's PIV applet signs Ed25519 only
from firmware 5.7, and our PIV and PKCS#11 signers do ECDSA/RSA digests, so hardware witness
keys are not supported yet.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airseal._internal.atomic import read_capped, write_atomic
from airseal.appliance.errors import ApplianceError, UsageError
from airseal.appliance.prompts import Prompter, key_password
from airseal.trustroot.keys import load_public_key, spki_pem
from airseal.trustroot.tlog.checkpoint import MAX_NOTE_BYTES, Checkpoint, check_origin
from airseal.trustroot.tlog.cosignature import WitnessKey, cosign
from airseal.trustroot.tlog.media_proofs import MAX_PROOFS_BYTES, MediaProofs
from airseal.trustroot.tlog.witness_state import advance_checkpoint

HOME_ENV = "AIRSEAL_WITNESS_HOME"
STATE_NAME = "witness.json"
KEY_NAME = "witness.key"


class WitnessError(ApplianceError):
    title = "Witness"
    check = "witness"


def witness_home(explicit: Path | None = None) -> Path:
    if explicit is not None:
        return explicit
    env = os.environ.get(HOME_ENV)
    return Path(env) if env else Path.home() / ".airseal-witness"


@dataclass(frozen=True)
class WitnessStatus:
    name: str
    vkey: str
    origin: str
    last: Checkpoint | None
    last_cosigned: str | None

    def describe(self) -> list[str]:
        lines = [f"Witness {self.name}", f"  vkey    {self.vkey}", f"  watches {self.origin}"]
        if self.last is None:
            lines.append("  has cosigned nothing yet")
        else:
            lines.append(f"  last cosigned {self.last.describe()} at {self.last_cosigned}")
        return lines


class WitnessStation:
    def __init__(self, home: Path, prompter: Prompter) -> None:
        self.home = home
        self.prompter = prompter

    @property
    def state_path(self) -> Path:
        return self.home / STATE_NAME

    def _state(self) -> dict[str, Any]:
        if not self.state_path.is_file():
            raise WitnessError("this machine is not a witness station yet", subject=str(self.home),
                               hint="run `airseal witness init --name NAME --log-key log.pub "
                                    "--log-origin HOST` first")
        data: dict[str, Any] = json.loads(read_capped(self.state_path, 256 * 1024))
        return data

    def init(self, name: str, log_key_file: Path, origin: str) -> WitnessStatus:
        """Create the station: an Ed25519 key under the password, and the log it watches."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519

        if self.state_path.exists():
            raise WitnessError("this witness station already exists", subject=str(self.home),
                               hint="`airseal witness status` shows it")
        try:
            check_origin(origin)
            WitnessKey(name, b"\0" * 32)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        from airseal.trustroot.keys import MAX_KEY_PEM_BYTES

        subject = str(log_key_file)
        log_key = load_public_key(read_capped(log_key_file, MAX_KEY_PEM_BYTES), subject=subject)
        password = key_password(self.prompter, "Password for the witness key", confirm=True)
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.BestAvailableEncryption(password))
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self.home / KEY_NAME, pem, mode=0o600, exclusive=True)
        public = key.public_key().public_bytes_raw()
        self._write({"schemaVersion": 1, "name": name,
                     "publicKey": base64.b64encode(public).decode(), "origin": origin,
                     "logKey": spki_pem(log_key).decode(), "last": None})
        return self.status()

    def _write(self, data: dict[str, Any]) -> None:
        write_atomic(self.state_path, (json.dumps(data, indent=2) + "\n").encode(), mode=0o600)

    def status(self) -> WitnessStatus:
        data = self._state()
        witness = WitnessKey(data["name"], base64.b64decode(data["publicKey"]))
        last = data.get("last")
        point = None if last is None else Checkpoint(
            data["origin"], int(last["size"]), base64.b64decode(last["rootHash"]))
        return WitnessStatus(witness.name, witness.vkey(), data["origin"], point,
                             None if last is None else str(last["cosigned"]))

    def cosign(self, request: Path, output: Path, *, now: datetime) -> Checkpoint:
        """Cosign ``request/checkpoint`` if it extends what this witness cosigned before."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519

        data = self._state()
        status = self.status()
        note = read_capped(request / "checkpoint", MAX_NOTE_BYTES).decode("utf-8", "replace")
        proofs = MediaProofs.parse(read_capped(request / "proofs.json", MAX_PROOFS_BYTES),
                                   subject=str(request / "proofs.json"))
        previous = status.last
        path: tuple[bytes, ...] = ()
        if previous is not None and previous.size < proofs.tree_size:
            found = proofs.consistency.get(previous.size)
            if found is None:
                raise WitnessError(
                    f"the request carries no consistency proof from size {previous.size}, the "
                    "last checkpoint this witness cosigned", subject=str(request / "proofs.json"),
                    hint=f"on the appliance: airseal log witness-request --output DIR "
                         f"--from-size {previous.size}")
            path = found
        log_key = load_public_key(str(data["logKey"]).encode(), subject=str(self.state_path))
        new = advance_checkpoint(previous, note, path, key=log_key, name=status.origin,
                                 origin=status.origin)
        if new.size != proofs.tree_size:
            raise WitnessError(f"the proofs are for size {proofs.tree_size}, the checkpoint for "
                               f"{new.size}", subject=str(request / "proofs.json"))
        password = key_password(self.prompter, "Password for the witness key")
        try:
            key = serialization.load_pem_private_key(
                read_capped(self.home / KEY_NAME, 64 * 1024), password)
        except (ValueError, TypeError):
            from airseal.appliance.errors import PasswordError

            raise PasswordError("the password does not open the witness key",
                                subject=str(self.home / KEY_NAME)) from None
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        witness = WitnessKey(status.name, base64.b64decode(data["publicKey"]))
        cosigned = cosign(note, witness, key.sign, timestamp=int(now.timestamp()))
        data["last"] = {"size": new.size, "rootHash": base64.b64encode(new.root_hash).decode(),
                        "cosigned": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        self._write(data)  # remembered before the cosignature leaves: never cosign a fork later
        write_atomic(output, cosigned.encode())
        return new
