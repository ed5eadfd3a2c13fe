"""Signing keys held on any PKCS#11 token: SoftHSM2, YubiKey (libykcs11), OpenSC cards, vendor HSMs.

What this package guarantees:

- **Keys never leave the token** (:mod:`.keys`): generated keys are sensitive, non-extractable and
  sign-only, checked after generation; keys are found by ``CKA_ID``, never by label.
- **The database holds a reference, not a secret** (:mod:`.reference`): :class:`Pkcs11KeyRef`
  names the module, the token (label and serial), the key id and label, and the public key.
- **Signatures are what cosign and our verifiers expect** (:mod:`.signer`): DER ECDSA, PKCS#1
  v1.5, or PSS by explicit choice; the registered key is checked before and after signing.
- **PINs are asked for late and never kept** (:mod:`.sessions`): a rejected PIN says what the
  token tells about the remaining tries (:mod:`.tokens`); a blocked PIN says it is locked.
- **Sessions are closed on every path** (:mod:`.sessions`, :mod:`.modules`): logins are shared
  per token within the process and ended when their last holder closes.

The layers, bottom up: :mod:`.cryptoki` (the Cryptoki calls python-pkcs11 lacks, error mapping),
:mod:`.modules` (loaded libraries), :mod:`.tokens` (discovery), :mod:`.sessions` (login),
:mod:`.keys` (key objects), :mod:`.signer`. Importers use the names below.
"""

from airseal.appliance.signers.pkcs11.cryptoki import require_mechanism
from airseal.appliance.signers.pkcs11.keys import find_key, generate_key
from airseal.appliance.signers.pkcs11.reference import Pkcs11KeyRef
from airseal.appliance.signers.pkcs11.sessions import PinProvider
from airseal.appliance.signers.pkcs11.signer import Pkcs11Signer, RsaPadding
from airseal.appliance.signers.pkcs11.tokens import TokenInfo, list_tokens, pin_failure_error

__all__ = [
    "PinProvider",
    "Pkcs11KeyRef",
    "Pkcs11Signer",
    "RsaPadding",
    "TokenInfo",
    "find_key",
    "generate_key",
    "list_tokens",
    "pin_failure_error",
    "require_mechanism",
]
