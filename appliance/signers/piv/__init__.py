"""Signing keys on a YubiKey's PIV application, over yubikey-manager (``yubikit.piv``, ``ykman``).

The equivalent of ``cosign piv-tool``: inspect, reset, set the PIN/PUK/management key, generate a
key (with a self-signed certificate in the slot, as ykman does), attest it, and sign with it through
:class:`PivSigner`, a :class:`airseal.trustroot.signer.Signer`.

**No terminal I/O.** Every function takes a connection factory (:func:`yubikey` selects a real
YubiKey by serial over PC/SC; tests pass a software card) and callbacks: ``pin`` returns the PIN
when the YubiKey needs it, ``notice`` tells the operator to touch the key now.

The modules, by concept: :mod:`.slots` (slot names, policies, :class:`PivKeyRef`), :mod:`.devices`
(discovery, the machine-wide lock, device errors), :mod:`.access` (PIN, PUK, touch, management
key, reset), :mod:`.info`, :mod:`.keys` (generate, read), :mod:`.ed25519_keys` (Ed25519 keys
that sign whole messages: witness cosignatures), :mod:`.attest` (reading an attestation;
:mod:`airseal.appliance.piv_attestation` decides what it proves) and :mod:`.signer`. Importers use
the names below.
"""

from airseal.appliance.piv_attestation import PivAttestation
from airseal.appliance.signers.piv.access import (
    ManagementKeyChange,
    NoticeCallback,
    PinCallback,
    SecretCallback,
    piv_reset,
    set_management_key,
    set_pin,
    set_puk,
    unblock_pin,
)
from airseal.appliance.signers.piv.attest import attestation
from airseal.appliance.signers.piv.devices import (
    LOCK_FILE_ENV,
    LOCK_TIMEOUT_SECONDS,
    SmartCardFactory,
    YubiKeyDevice,
    list_yubikeys,
    yubikey,
)
from airseal.appliance.signers.piv.ed25519_keys import (
    ED25519_FIRMWARE,
    PivEd25519Key,
    ed25519_slot_key,
    sign_ed25519,
)
from airseal.appliance.signers.piv.info import PivInfo, PivSlotInfo, piv_info
from airseal.appliance.signers.piv.keys import (
    CERTIFICATE_DAYS,
    GeneratedPivKey,
    generate_key,
    read_key,
)
from airseal.appliance.signers.piv.signer import PivSigner
from airseal.appliance.signers.piv.slots import (
    ALGORITHMS,
    MANAGEMENT_KEY_ALGORITHMS,
    PIN_POLICIES,
    SIGNING_SLOTS,
    TOUCH_POLICIES,
    PivKeyRef,
    parse_slot,
    slot_name,
)

__all__ = [
    "ALGORITHMS",
    "CERTIFICATE_DAYS",
    "ED25519_FIRMWARE",
    "LOCK_FILE_ENV",
    "LOCK_TIMEOUT_SECONDS",
    "MANAGEMENT_KEY_ALGORITHMS",
    "PIN_POLICIES",
    "SIGNING_SLOTS",
    "TOUCH_POLICIES",
    "GeneratedPivKey",
    "ManagementKeyChange",
    "NoticeCallback",
    "PinCallback",
    "PivAttestation",
    "PivEd25519Key",
    "PivInfo",
    "PivKeyRef",
    "PivSigner",
    "PivSlotInfo",
    "SecretCallback",
    "SmartCardFactory",
    "YubiKeyDevice",
    "attestation",
    "ed25519_slot_key",
    "generate_key",
    "list_yubikeys",
    "parse_slot",
    "piv_info",
    "piv_reset",
    "read_key",
    "set_management_key",
    "set_pin",
    "set_puk",
    "sign_ed25519",
    "slot_name",
    "unblock_pin",
    "yubikey",
]
