"""Our keys as TUF sees them: securesystemslib public keys and a ``Signer`` over our signers.

python-tuf signs metadata through securesystemslib's :class:`securesystemslib.signer.Signer`.
Its own HSM signer needs PyKCS11 and its PIV support needs other stacks; ours are python-pkcs11
and yubikit behind :class:`airseal.trustroot.signer.Signer`, so :class:`TufSigner` adapts one to
the other (a dozen lines) instead of bringing a second token stack. Schemes follow what our
backends produce: ECDSA P-256 over SHA-256 (``ecdsa-sha2-nistp256``, DER signatures), RSA
PKCS#1 v1.5 over SHA-256 (``rsa-pkcs1v15-sha256``) and Ed25519. P-384 keys are refused: our
signers hash with SHA-256, while TUF's ``ecdsa-sha2-nistp384`` expects SHA-384.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from securesystemslib.signer import Key, Signature, SSlibKey
from securesystemslib.signer import Signer as SslibSigner

from airseal.trustroot.errors import UnsupportedAlgorithm
from airseal.trustroot.keys import PublicKey
from airseal.trustroot.signer import Signer


def tuf_key(public_key: PublicKey) -> SSlibKey:
    """The securesystemslib key for one of ours, with the scheme our signers produce."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1):
            raise UnsupportedAlgorithm(
                f"a {public_key.curve.name} key cannot sign TUF metadata here",
                hint="use an ECDSA P-256, RSA or Ed25519 key for site roles",
            )
        return SSlibKey.from_crypto(public_key, scheme="ecdsa-sha2-nistp256")
    if isinstance(public_key, rsa.RSAPublicKey):
        return SSlibKey.from_crypto(public_key, scheme="rsa-pkcs1v15-sha256")
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return SSlibKey.from_crypto(public_key, scheme="ed25519")
    raise UnsupportedAlgorithm("this key type cannot sign TUF metadata")


class TufSigner(SslibSigner):
    """A securesystemslib signer over one of our signers (file key, PKCS#11 token, PIV slot)."""

    def __init__(self, signer: Signer) -> None:
        self._signer = signer
        self._key = tuf_key(signer.public_key)

    @property
    def public_key(self) -> Key:
        return self._key

    def sign(self, payload: bytes) -> Signature:
        return Signature(self._key.keyid, self._signer.sign_message(payload).hex())

    @classmethod
    def from_priv_key_uri(
        cls, priv_key_uri: str, public_key: Key, secrets_handler: Any = None
    ) -> TufSigner:
        raise NotImplementedError("airseal opens signers through its keystore, not URIs")
