"""Signing with a token key: :class:`Pkcs11Signer`.

**Signatures are what cosign and our verifiers expect.** ECDSA signs the SHA-256 digest with
``CKM_ECDSA`` and converts the token's raw ``r||s`` into DER. RSA signs a ``DigestInfo(SHA-256)``
with ``CKM_RSA_PKCS`` (PKCS#1 v1.5, what cosign and :mod:`airseal.trustroot.keys` verify).
RSA-PSS (``CKM_RSA_PKCS_PSS``, MGF1-SHA-256, salt length 32) is available by choice,
``Pkcs11Signer(..., rsa_padding=RsaPadding.PSS)``, for consumers that require PSS: Sigstore
bundles verified by :mod:`trustroot` and cosign must use PKCS#1 v1.5, so PSS is never the default.

**The registered key is the key that signs.** Opening checks that the token still holds *that*
key under the id (a different key is a :class:`~airseal.appliance.errors.TokenKeyMismatch`), and
the first signature is verified with the stored public key before it is handed out.

A signer keeps one session and login across many signatures (an export signs many statements)
and releases them in :meth:`Pkcs11Signer.close`, at the end of its ``with`` block, or when it is
garbage-collected. Keys that demand ``CKA_ALWAYS_AUTHENTICATE`` (e.g. PIV slot 9c behind
libykcs11 or OpenSC) need the PIN again before every signature: the signer asks each time.
"""

from __future__ import annotations

import enum
import weakref
from dataclasses import replace
from typing import Any, Final

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from pkcs11 import Attribute, Mechanism
from pkcs11 import exceptions as p11x
from pkcs11.mechanisms import MGF

from airseal.appliance.errors import TokenError, TokenKeyMismatch
from airseal.appliance.signers.hardware import HardwareSigner, ecdsa_der_from_raw, required_pin
from airseal.appliance.signers.pkcs11.cryptoki import (
    device_error,
    read_attribute,
    require_mechanism,
)
from airseal.appliance.signers.pkcs11.keys import single_private_key, token_public_key
from airseal.appliance.signers.pkcs11.reference import Pkcs11KeyRef
from airseal.appliance.signers.pkcs11.sessions import PinProvider, TokenSession, open_session
from airseal.appliance.signers.pkcs11.tokens import fresh_token_info, pin_failure_error
from airseal.trustroot.errors import InvalidSignature, TrustrootError
from airseal.trustroot.keys import spki_der, verify_digest

# DigestInfo prefix for SHA-256 (RFC 8017 §9.2, note 1): CKM_RSA_PKCS signs DigestInfo || digest.
_SHA256_DIGEST_INFO: Final = bytes.fromhex("3031300d060960864801650304020105000420")
_PSS_SALT_BYTES: Final = 32


class RsaPadding(enum.Enum):
    """How an RSA token key signs. ECDSA keys ignore this."""

    PKCS1V15 = "pkcs1v15"
    """``CKM_RSA_PKCS`` over DigestInfo(SHA-256): what cosign and :mod:`trustroot` verify."""
    PSS = "pss"
    """``CKM_RSA_PKCS_PSS``, SHA-256, MGF1-SHA-256, 32-byte salt; for PSS-only consumers."""


class _SignerState:
    """Everything a signer must release; kept apart so a finaliser can release it."""

    def __init__(self) -> None:
        self.session: TokenSession | None = None
        self.closed = False

    def close(self) -> None:
        self.closed = True
        session, self.session = self.session, None
        if session is not None:
            session.close()


class Pkcs11Signer(HardwareSigner[Pkcs11KeyRef]):
    """A :class:`airseal.trustroot.signer.Signer` whose private key stays on a PKCS#11 token.

    Opening it selects the token, logs in (asking ``pin_provider`` if needed), finds the key by
    id and checks the token's public key against the reference. One session and one login then
    serve every signature until :meth:`close` (use it as a context manager). :attr:`algorithm` is
    the key's; with ``RsaPadding.PSS`` the signatures are PSS regardless.
    """

    def __init__(
        self,
        ref: Pkcs11KeyRef,
        pin_provider: PinProvider,
        *,
        rsa_padding: RsaPadding = RsaPadding.PKCS1V15,
    ) -> None:
        super().__init__(ref, ref.public_key())
        self._pin_provider = pin_provider
        self._rsa_padding = rsa_padding
        self._verified_once = False
        self._state = _SignerState()
        self._finalizer = weakref.finalize(self, self._state.close)
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        ref = self._ref
        ts = open_session(ref.module_path, ref.token_selector, rw=False)
        self._state.session = ts
        ts.login(self._pin_provider)
        self._key = single_private_key(ts, ref.key_id_bytes)
        on_token = token_public_key(ts, ref.key_id_bytes)
        if on_token is not None and spki_der(on_token) != spki_der(self._public_key):
            raise TokenKeyMismatch(
                f"the key under id {ref.key_id} is not the registered key {ref.key_label!r}",
                subject=ts.subject,
            )
        self._always_authenticate = bool(
            read_attribute(self._key, Attribute.ALWAYS_AUTHENTICATE, False)
        )
        offered = ts.mechanisms()
        purpose = f"signing with key {ref.key_label!r}"
        self._mechanism_param: Any = None
        if isinstance(self._public_key, ec.EllipticCurvePublicKey):
            self._mechanism = Mechanism.ECDSA
            self._coordinate_bytes = (self._public_key.curve.key_size + 7) // 8
        elif self._rsa_padding is RsaPadding.PSS:
            self._mechanism = Mechanism.RSA_PKCS_PSS
            self._mechanism_param = (Mechanism.SHA256, MGF.SHA256, _PSS_SALT_BYTES)
        else:
            self._mechanism = Mechanism.RSA_PKCS
        require_mechanism(offered, self._mechanism, purpose=purpose, subject=ts.subject)

    @property
    def closed(self) -> bool:
        return self._state.closed

    def sign_digest(self, sha256_digest: bytes) -> bytes:
        """DER ECDSA, PKCS#1 v1.5 (or PSS, if chosen) signature over a SHA-256 digest."""
        if len(sha256_digest) != 32:
            raise ValueError("sha256_digest must be 32 bytes")
        with self._lock:
            ts = self._state.session
            if ts is None or self._state.closed:
                raise TokenError("the signer is closed", subject=self._ref.key_label,
                                 hint="open a new signer")
            data = sha256_digest
            if self._mechanism is Mechanism.RSA_PKCS:
                data = _SHA256_DIGEST_INFO + sha256_digest
            try:
                if self._always_authenticate:
                    raw = self._key.sign(data, mechanism=self._mechanism,
                                         mechanism_param=self._mechanism_param,
                                         pin=required_pin(self._pin_provider))
                else:
                    raw = self._key.sign(data, mechanism=self._mechanism,
                                         mechanism_param=self._mechanism_param)
            except (p11x.PinIncorrect, p11x.PinLocked) as exc:
                # A failed per-signature login can leave the operation half open: start afresh.
                after = fresh_token_info(ts.module, ts.token, ts.info)
                if isinstance(exc, p11x.PinLocked):
                    after = replace(after, pin_locked=True)
                error = pin_failure_error(after)
                self._state.close()
                raise error from None
            except p11x.PKCS11Error as exc:
                raise device_error(exc, ts.subject, "signing") from None
            if self._mechanism is Mechanism.ECDSA:
                signature = ecdsa_der_from_raw(raw, self._coordinate_bytes, subject=ts.subject)
            else:
                signature = bytes(raw)
            if not self._verified_once:
                self._check_signature(signature, sha256_digest, ts)
                self._verified_once = True
            return signature

    def _check_signature(self, signature: bytes, digest: bytes, ts: TokenSession) -> None:
        """The first signature must verify with the registered key (covers tokens that expose
        no public key object, and tokens that sign differently than they advertise)."""
        try:
            if self._mechanism is Mechanism.RSA_PKCS_PSS:
                assert isinstance(self._public_key, rsa.RSAPublicKey)
                try:
                    self._public_key.verify(
                        signature, digest,
                        padding.PSS(padding.MGF1(hashes.SHA256()), _PSS_SALT_BYTES),
                        Prehashed(hashes.SHA256()),
                    )
                except _CryptoInvalidSignature:
                    raise InvalidSignature("PSS signature does not verify") from None
            else:
                verify_digest(self._public_key, signature, digest)
        except TrustrootError:
            self._state.close()
            raise TokenKeyMismatch(
                f"the token's signature does not verify with the registered key "
                f"{self._ref.key_label!r} (id {self._ref.key_id}); the signer was closed",
                subject=ts.subject,
            ) from None

    def close(self) -> None:
        """Log out (if this was the last signer on the token) and close the session. Idempotent."""
        self._finalizer()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"<Pkcs11Signer {self._ref.key_label!r} id={self._ref.key_id} "
            f"token={self._ref.token_label!r} serial={self._ref.token_serial!r} {state}>"
        )
