"""What every hardware-held key shares: the signer base, and opening one from a keystore record.

:class:`HardwareSigner` is the part of :class:`airseal.trustroot.signer.Signer` that does not
depend on the device: the registered public key and its algorithm, messages signed through their
SHA-256 digest (a token or a PIV slot signs digests only), and the ``with`` block that releases the
device on every path. The PKCS#11 and PIV signers add only how their device signs.

The keystore stores only a reference (module, token serial, key id / device serial, slot) and the
public key; the PIN is asked through the operator's :class:`~airseal.appliance.prompts.Prompter`
each time a signer opens (``AIRSEAL_PIN`` answers it in scripts).

This module imports neither python-pkcs11 nor yubikit: the keystore and the front ends import it
freely, and a backend is loaded only when a key of its kind is opened.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Generic, Protocol, Self, TypeVar

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from airseal.appliance.errors import PinError, TokenError
from airseal.appliance.prompts import Prompter, token_pin
from airseal.trustroot.keys import KeyAlgorithm, PublicKey, key_algorithm
from airseal.trustroot.signer import Signer, sign_message_via_digest

RefT = TypeVar("RefT")

NO_PIN_HINT = "set AIRSEAL_PIN or type the PIN when asked"


class HardwareSigner(ABC, Generic[RefT]):
    """A signer whose private key stays on a device, registered by a reference ``RefT``.

    Subclasses sign a SHA-256 digest and release the device in :meth:`close`; the base guarantees
    the public key and algorithm are the registered ones, fixed at construction, and that leaving
    the ``with`` block closes the signer. ``_lock`` serialises use of the device across threads.
    """

    def __init__(self, ref: RefT, public_key: PublicKey) -> None:
        self._ref = ref
        self._public_key = public_key
        self._algorithm = key_algorithm(public_key)
        self._lock = threading.Lock()

    @property
    def ref(self) -> RefT:
        """Where the key lives: what the keystore stored to find it again."""
        return self._ref

    @property
    def public_key(self) -> PublicKey:
        return self._public_key

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self._algorithm

    @abstractmethod
    def sign_digest(self, sha256_digest: bytes) -> bytes:
        """DER ECDSA or PKCS#1 v1.5 signature over a SHA-256 digest, checked against the key."""

    def sign_message(self, message: bytes) -> bytes:
        return sign_message_via_digest(self, message)

    @abstractmethod
    def close(self) -> None:
        """Release the device (session, login, exclusive connection). Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def ecdsa_der_from_raw(raw: bytes, coordinate_bytes: int, *, subject: str) -> bytes:
    """The DER ``ECDSA-Sig-Value`` cosign and our verifiers expect, from a device's raw ``r||s``.

    A raw signature of any other length is refused: it means the device signed with another curve
    or mechanism than the registered key's."""
    n = coordinate_bytes
    if len(raw) != 2 * n:
        raise TokenError(
            f"the token returned a {len(raw)}-byte ECDSA signature, not raw r||s of {2 * n}",
            subject=subject,
        )
    return encode_dss_signature(int.from_bytes(raw[:n], "big"), int.from_bytes(raw[n:], "big"))


def required_pin(pin_provider: Callable[[], str]) -> str:
    """The PIN the provider gives, refused before it reaches a device when it is empty."""
    pin = pin_provider()
    if not isinstance(pin, str) or not pin:
        raise PinError("no PIN was given", hint=NO_PIN_HINT)
    return pin


# --- opening registered keys -----------------------------------------------------------------


class _StoredRef(Protocol):
    def to_record(self) -> Mapping[str, Any]: ...


def keystore_reference(ref: _StoredRef) -> dict[str, Any]:
    """What the keystore keeps of a key reference (the public key has its own column)."""
    record = dict(ref.to_record())
    record.pop("public_key_pem")
    return record


def pkcs11_pin_provider(prompter: Prompter, token: str) -> Callable[[], str]:
    return lambda: token_pin(prompter, f"PIN for token {token}")


@contextmanager
def open_pkcs11_signer(
    reference: dict[str, str], public_key_pem: bytes, prompter: Prompter
) -> Iterator[Signer]:
    from airseal.appliance.signers.pkcs11 import Pkcs11KeyRef, Pkcs11Signer

    ref = Pkcs11KeyRef.from_record({**reference, "public_key_pem": public_key_pem.decode()})
    pins = pkcs11_pin_provider(prompter, ref.token_label or ref.token_serial)
    with Pkcs11Signer(ref, pins) as signer:
        yield signer


def pkcs11_reference(ref: Any) -> dict[str, str]:
    """What the keystore keeps of a :class:`Pkcs11KeyRef`."""
    return keystore_reference(ref)


@contextmanager
def open_piv_signer(
    reference: dict[str, Any], public_key_pem: bytes, prompter: Prompter
) -> Iterator[Signer]:
    from airseal.appliance.signers.piv import PivKeyRef, PivSigner

    ref = PivKeyRef.from_record({**reference, "public_key_pem": public_key_pem.decode()})
    pins = lambda: token_pin(prompter, f"PIN for {ref.describe()}")  # noqa: E731
    with PivSigner(ref, pin=pins, notice=prompter.notice) as signer:
        yield signer


def piv_reference(ref: Any) -> dict[str, Any]:
    """What the keystore keeps of a :class:`PivKeyRef`."""
    return keystore_reference(ref)
