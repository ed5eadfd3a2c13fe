"""The agent's own receipt-signing key, and where its password comes from.

The key is ECDSA P-256, stored only encrypted, in cosign's format (PEM ``ENCRYPTED SIGSTORE
PRIVATE KEY``: scrypt + NaCl secretbox, :mod:`airseal.trustroot.cosign_keys`); it is decrypted in
memory
when a receipt is signed and never written unencrypted.

An unattended agent cannot be asked for a password, so it is looked up in this order:

1. the systemd credential ``airseal-agent-key``: the file
   ``$CREDENTIALS_DIRECTORY/airseal-agent-key`` that systemd provides to the service. With
   ``LoadCredentialEncrypted=`` the credential is stored encrypted (and TPM2-sealed when the
   machine has a TPM) and decrypted by systemd only for the service; see
   ``docs/endpoint-guide.md``;
2. the environment variable ``AIRSEAL_AGENT_KEY_PASSWORD`` (for other service managers: launchd,
   Windows services; keep it out of shell history);
3. a hidden prompt on the terminal, when there is one.

Empty passwords are refused: a key under an empty password is a key stored in the clear.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from airseal._internal.atomic import read_capped, write_atomic
from airseal.agent.errors import KeyPasswordError, StateError
from airseal.errors import FileTooLarge

CREDENTIAL_NAME = "airseal-agent-key"
CREDENTIALS_DIRECTORY_ENV = "CREDENTIALS_DIRECTORY"
PASSWORD_ENV = "AIRSEAL_AGENT_KEY_PASSWORD"  # noqa: S105  (the variable's name)
MAX_PASSWORD_BYTES = 4096
KEY_NAME = "agent.key"
PUBLIC_KEY_NAME = "agent.pub"
AGENT_KEY_SCRYPT_N = 65536

if TYPE_CHECKING:
    from airseal.trustroot.keys import PublicKey
    from airseal.trustroot.signer import PrivateKeySigner

PasswordPrompt = Callable[[str, bool], str]
"""Asks for a secret on a terminal: ``(prompt, confirm) -> password``."""
PasswordSupplier = Callable[[], bytes]
"""Returns the agent key password when (and only when) it is needed."""


def key_password(
    env: Mapping[str, str],
    prompt: PasswordPrompt | None,
    *,
    purpose: str,
    confirm: bool = False,
) -> bytes:
    """The agent key password from the credential, the environment, or ``prompt`` (in order)."""
    credentials = env.get(CREDENTIALS_DIRECTORY_ENV)
    if credentials:
        path = Path(credentials) / CREDENTIAL_NAME
        if path.exists():
            try:
                value = read_capped(path, MAX_PASSWORD_BYTES)
            except (OSError, FileTooLarge) as exc:
                raise KeyPasswordError(
                    f"cannot read the credential: {exc}", subject=str(path)
                ) from None
            return _non_empty(value.rstrip(b"\r\n"), str(path))
    from_env = env.get(PASSWORD_ENV)
    if from_env is not None:
        return _non_empty(from_env.encode("utf-8"), PASSWORD_ENV)
    if prompt is None:
        raise KeyPasswordError(
            f"{purpose}: no systemd credential, no {PASSWORD_ENV}, and no terminal to ask on"
        )
    return _non_empty(prompt(purpose, confirm).encode("utf-8"), "the prompt")


def password_is_unattended(env: Mapping[str, str]) -> bool:
    """Whether :func:`key_password` answers from the credential or the environment, asking
    nobody (an unattended import may then decrypt the key while it checks the media)."""
    credentials = env.get(CREDENTIALS_DIRECTORY_ENV)
    if credentials and (Path(credentials) / CREDENTIAL_NAME).exists():
        return True
    return env.get(PASSWORD_ENV) is not None


def _non_empty(value: bytes, source: str) -> bytes:
    if not value:
        raise KeyPasswordError(
            "an empty password would leave the agent key unprotected", subject=source
        )
    return value


def create_agent_key(state_dir: Path, password: bytes) -> str:
    """Generate the agent key, store it encrypted (0600) with its public key; return the
    fingerprint. Refuses to replace an existing key."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from airseal.trustroot.cosign_keys import encrypt_cosign_key
    from airseal.trustroot.keys import fingerprint, spki_pem

    key = ec.generate_private_key(ec.SECP256R1())
    encrypted = encrypt_cosign_key(key, password, n=AGENT_KEY_SCRYPT_N)
    write_atomic(state_dir / KEY_NAME, encrypted, mode=0o600, exclusive=True)
    write_atomic(state_dir / PUBLIC_KEY_NAME, spki_pem(key.public_key()), mode=0o644)
    return fingerprint(key.public_key())


def load_public_key(state_dir: Path) -> PublicKey:
    """The agent's public key (what receipts carry and the appliance pins)."""
    from airseal.trustroot.keys import load_public_key as parse

    path = state_dir / PUBLIC_KEY_NAME
    try:
        return parse(read_capped(path, 64 * 1024), subject=str(path))
    except FileNotFoundError:
        raise StateError("the agent has no key", subject=str(path)) from None


def load_signer(state_dir: Path, password: bytes) -> PrivateKeySigner:
    """A :class:`airseal.trustroot.signer.Signer` over the decrypted agent key (in memory only)."""
    from airseal.trustroot.cosign_keys import load_private_key
    from airseal.trustroot.keys import fingerprint
    from airseal.trustroot.signer import PrivateKeySigner

    path = state_dir / KEY_NAME
    try:
        pem = read_capped(path, 64 * 1024)
    except FileNotFoundError:
        raise StateError("the agent has no key", subject=str(path)) from None
    from airseal.trustroot.errors import WrongPassword

    try:
        key = load_private_key(pem, password, subject=str(path))
    except WrongPassword as error:
        # trustroot's hint names the appliance's COSIGN_PASSWORD; the agent reads its own
        raise WrongPassword(
            error.detail,
            subject=str(path),
            hint=f"the password did not decrypt the agent key; set {PASSWORD_ENV} (or the "
            "systemd credential airseal-agent-key) to the password given at "
            "`airseal-agent init`, or retype it",
        ) from None
    if fingerprint(key.public_key()) != fingerprint(load_public_key(state_dir)):
        raise StateError(
            "agent.key and agent.pub hold different keys",
            subject=str(path),
            hint="restore both files from backup, or re-initialise the agent",
        )
    return PrivateKeySigner(key)


def key_is_private(path: Path) -> bool:
    """True when nobody but the owner can read the key file (POSIX)."""
    if os.name == "nt":
        return True
    return (path.stat().st_mode & 0o077) == 0
