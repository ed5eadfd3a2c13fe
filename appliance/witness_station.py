"""A witness station: another machine that cosigns the appliance's log checkpoints.

Its home (``$AIRSEAL_WITNESS_HOME``, else ``~/.airseal-witness``) holds ``witness.json`` (its
name, the log it watches: key PEM and origin, and the last checkpoint it cosigned) and
``witness.key``, an Ed25519 private key encrypted under the password (``COSIGN_PASSWORD`` or
asked). ``cosign`` verifies the checkpoint with the log key and origin, proves it consistent with
the last one it cosigned (the request's proof, ``proofs.json`` and ``hashes``, must cover that size:
`airseal log witness-request` writes them), refuses a fork or a shrink naming both checkpoints,
and only then signs a C2SP ``cosignature/v1`` and remembers the new checkpoint (atomically).

Keys: Ed25519, as cosignature/v1 requires: a file key, or a key in a YubiKey PIV slot
(firmware 5.7 or later; generated in an empty slot, or an Ed25519 key already there), recorded
in ``witness.json`` as ``yubikey: {serial, slot}`` and used through
:mod:`airseal.appliance.signers.piv.ed25519_keys`. Its PIN comes from ``AIRSEAL_PIN`` or the
prompter, as for the appliance's YubiKey keys. Every YubiKey step (and its PIN) comes before
anything is written, so a refused PIN leaves the station as it was.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airseal._internal.atomic import read_capped, write_atomic
from airseal.appliance.errors import ApplianceError, UsageError
from airseal.appliance.prompts import Prompter, key_password, piv_management_key, token_pin
from airseal.trustroot.keys import load_public_key, spki_pem
from airseal.trustroot.tlog.checkpoint import MAX_NOTE_BYTES, Checkpoint, check_origin
from airseal.trustroot.tlog.cosignature import WitnessKey, cosign
from airseal.trustroot.tlog.media_proofs import (
    MAX_HASHES_BYTES,
    MAX_PROOFS_BYTES,
    MediaProofs,
)
from airseal.trustroot.tlog.witness_state import advance_checkpoint

if TYPE_CHECKING:
    from airseal.appliance.signers.piv import PivEd25519Key, SmartCardFactory

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
    key: str = "file"
    """Where the private key is: ``file``, or ``YubiKey SERIAL slot SLOT``."""

    def describe(self) -> list[str]:
        lines = [f"Witness {self.name}", f"  vkey    {self.vkey}", f"  key     {self.key}",
                 f"  watches {self.origin}"]
        if self.last is None:
            lines.append("  has cosigned nothing yet")
        else:
            lines.append(f"  last cosigned {self.last.describe()} at {self.last_cosigned}")
        return lines


@dataclass(frozen=True)
class YubiKeyWitnessKey:
    """Where ``init`` puts the witness key on a YubiKey: ``slot``, and ``use_existing`` to take
    the Ed25519 key already there instead of generating one in an empty slot."""

    slot: str = "9c"
    serial: int | None = None
    use_existing: bool = False


class WitnessStation:
    def __init__(self, home: Path, prompter: Prompter, *,
                 open_yubikey: Callable[[int | None], SmartCardFactory] | None = None) -> None:
        self.home = home
        self.prompter = prompter
        self._open_yubikey = open_yubikey

    def _yubikey(self, serial: int | None) -> SmartCardFactory:
        if self._open_yubikey is not None:
            return self._open_yubikey(serial)
        from airseal.appliance.signers.piv import yubikey

        return yubikey(serial)

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

    def init(self, name: str, log_key_file: Path, origin: str, *,
             yubikey: YubiKeyWitnessKey | None = None) -> WitnessStatus:
        """Create the station: an Ed25519 key (under the password, or on a YubiKey), and the log
        it watches."""
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
        state = {"schemaVersion": 1, "name": name, "origin": origin,
                 "logKey": spki_pem(log_key).decode(), "last": None}
        if yubikey is not None:
            on_card = self._yubikey_key(yubikey)
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._write({**state, "publicKey": base64.b64encode(on_card.public_key).decode(),
                         "yubikey": on_card.to_record()})
            return self.status()
        password = key_password(self.prompter, "Password for the witness key", confirm=True)
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.BestAvailableEncryption(password))
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self.home / KEY_NAME, pem, mode=0o600, exclusive=True)
        public = key.public_key().public_bytes_raw()
        self._write({**state, "publicKey": base64.b64encode(public).decode()})
        return self.status()

    def _yubikey_key(self, where: YubiKeyWitnessKey) -> PivEd25519Key:
        from airseal.appliance.signers.piv import ed25519_slot_key

        return ed25519_slot_key(
            self._yubikey(where.serial), slot=where.slot, use_existing=where.use_existing,
            pin=lambda: token_pin(self.prompter, "YubiKey PIV PIN"),
            management_key=lambda: piv_management_key(self.prompter),
            notice=self.prompter.notice, subject="Airseal witness key")

    def _card_key(self, data: dict[str, Any]) -> PivEd25519Key | None:
        record = data.get("yubikey")
        if record is None:
            return None
        from airseal.appliance.signers.piv import PivEd25519Key

        return PivEd25519Key.from_record(record, str(data["publicKey"]))

    def _write(self, data: dict[str, Any]) -> None:
        write_atomic(self.state_path, (json.dumps(data, indent=2) + "\n").encode(), mode=0o600)

    def status(self) -> WitnessStatus:
        data = self._state()
        witness = WitnessKey(data["name"], base64.b64decode(data["publicKey"]))
        last = data.get("last")
        point = None if last is None else Checkpoint(
            data["origin"], int(last["size"]), base64.b64decode(last["rootHash"]))
        card = self._card_key(data)
        return WitnessStatus(witness.name, witness.vkey(), data["origin"], point,
                             None if last is None else str(last["cosigned"]),
                             "file" if card is None else card.describe())

    def cosign(self, request: Path, output: Path, *, now: datetime) -> Checkpoint:
        """Cosign ``request/checkpoint`` if it extends what this witness cosigned before."""
        data = self._state()
        status = self.status()
        note = read_capped(request / "checkpoint", MAX_NOTE_BYTES).decode("utf-8", "replace")
        proofs = MediaProofs.parse(
            read_capped(request / "proofs.json", MAX_PROOFS_BYTES),
            read_capped(request / "hashes", MAX_HASHES_BYTES),
            subject=str(request / "proofs.json"), hashes_subject=str(request / "hashes"))
        previous = status.last
        if previous is not None and previous.size < proofs.tree_size \
                and previous.size not in proofs.earlier_sizes:
            raise WitnessError(
                f"the request carries no consistency proof from size {previous.size}, the "
                "last checkpoint this witness cosigned", subject=str(request / "proofs.json"),
                hint=f"on the appliance: airseal log witness-request --output DIR "
                     f"--from-size {previous.size}")
        log_key = load_public_key(str(data["logKey"]).encode(), subject=str(self.state_path))
        new = advance_checkpoint(previous, note, proofs, key=log_key, name=status.origin,
                                 origin=status.origin)
        if new.size != proofs.tree_size:
            raise WitnessError(f"the proofs are for size {proofs.tree_size}, the checkpoint for "
                               f"{new.size}", subject=str(request / "proofs.json"))
        witness = WitnessKey(status.name, base64.b64decode(data["publicKey"]))
        sign = self._signer(data)
        cosigned = cosign(note, witness, sign, timestamp=int(now.timestamp()))
        data["last"] = {"size": new.size, "rootHash": base64.b64encode(new.root_hash).decode(),
                        "cosigned": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        self._write(data)  # remembered before the cosignature leaves: never cosign a fork later
        write_atomic(output, cosigned.encode())
        return new

    def _signer(self, data: dict[str, Any]) -> Callable[[bytes], bytes]:
        """What signs for this witness: the YubiKey slot (its PIN asked when it signs), or the
        file key opened with its password now."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519

        card = self._card_key(data)
        if card is not None:
            from airseal.appliance.signers.piv import sign_ed25519

            factory = self._yubikey(card.serial)
            return lambda message: sign_ed25519(
                factory, card, message,
                pin=lambda: token_pin(self.prompter, f"PIN for {card.describe()}"),
                notice=self.prompter.notice)
        password = key_password(self.prompter, "Password for the witness key")
        try:
            key = serialization.load_pem_private_key(
                read_capped(self.home / KEY_NAME, 64 * 1024), password)
        except (ValueError, TypeError):
            from airseal.appliance.errors import PasswordError

            raise PasswordError("the password does not open the witness key",
                                subject=str(self.home / KEY_NAME)) from None
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        return key.sign
