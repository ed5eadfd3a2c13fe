"""Registering and opening hardware-held keys (PKCS#11 tokens, YubiKey PIV) for the keystore.

The keystore stores only a reference (module, token serial, key id / device serial, slot) and the
public key; the PIN is asked through the operator's :class:`~airseal.appliance.prompts.Prompter`
each time
a signer opens (``AIRSEAL_PIN`` answers it in scripts). Signers close their sessions when the
``with`` block ends, on every path.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airseal.appliance.prompts import Prompter, token_pin
from airseal.trustroot.signer import Signer


def pkcs11_pin_provider(prompter: Prompter, token: str) -> Any:
    return lambda: token_pin(prompter, f"PIN for token {token}")


@contextmanager
def open_pkcs11_signer(
    reference: dict[str, str], public_key_pem: bytes, prompter: Prompter
) -> Iterator[Signer]:
    from airseal.appliance.signers.pkcs11 import Pkcs11KeyRef, Pkcs11Signer

    ref = Pkcs11KeyRef.from_record({**reference, "public_key_pem": public_key_pem.decode()})
    signer = Pkcs11Signer(ref, pkcs11_pin_provider(prompter, ref.token_label or ref.token_serial))
    try:
        yield signer
    finally:
        signer.close()


def pkcs11_reference(ref: Any) -> dict[str, str]:
    """What the keystore keeps of a :class:`Pkcs11KeyRef` (the public key has its own column)."""
    record: dict[str, str] = ref.to_record()
    record.pop("public_key_pem")
    return record


@contextmanager
def open_piv_signer(
    reference: dict[str, Any], public_key_pem: bytes, prompter: Prompter
) -> Iterator[Signer]:
    from airseal.appliance.signers.piv import PivKeyRef, PivSigner

    ref = PivKeyRef.from_record({**reference, "public_key_pem": public_key_pem.decode()})
    signer = PivSigner(
        ref, pin=lambda: token_pin(prompter, f"PIN for {ref.describe()}"), notice=prompter.notice
    )
    try:
        yield signer
    finally:
        signer.close()


def piv_reference(ref: Any) -> dict[str, Any]:
    record: dict[str, Any] = ref.to_record()
    record.pop("public_key_pem")
    return record
