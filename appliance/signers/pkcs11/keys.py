"""Keys on a token: generating, finding by label, and reading the public half by ``CKA_ID``.

**Keys never leave the token.** :func:`generate_key` makes an EC P-256 pair on the token with the
private half ``CKA_SENSITIVE``, not ``CKA_EXTRACTABLE``, sign-only, stored as token objects, and
checks afterwards that the token honoured that template (it destroys the pair if not). Both halves
share a fresh random ``CKA_ID``; keys are always found by that id, never by label, because labels
are not unique on most tokens (SoftHSM2 included). The label is only how an operator names a key
when registering it (:func:`find_key`).
"""

from __future__ import annotations

import os
import secrets
from contextlib import suppress
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11x

from airseal.appliance.errors import (
    AmbiguousKeyLabel,
    TokenError,
    TokenKeyExists,
    TokenKeyNotFound,
)
from airseal.appliance.signers.pkcs11.cryptoki import (
    device_error,
    find_objects,
    read_attribute,
    require_mechanism,
)
from airseal.appliance.signers.pkcs11.reference import Pkcs11KeyRef
from airseal.appliance.signers.pkcs11.sessions import PinProvider, TokenSession, logged_in
from airseal.appliance.signers.pkcs11.tokens import MAX_LISTED
from airseal.trustroot.errors import UnsupportedAlgorithm
from airseal.trustroot.keys import KeyAlgorithm, PublicKey, key_algorithm, spki_pem

MAX_LABEL_CHARS: Final = 64
KEY_ID_BYTES: Final = 16

# DER of the named-curve OIDs, as tokens store them in CKA_EC_PARAMS.
_P256_PARAMS: Final = bytes.fromhex("06082a8648ce3d030107")
_P384_PARAMS: Final = bytes.fromhex("06052b81040022")
_CURVES: Final[dict[bytes, ec.EllipticCurve]] = {
    _P256_PARAMS: ec.SECP256R1(),
    _P384_PARAMS: ec.SECP384R1(),
}


def _check_label(label: str) -> str:
    if not isinstance(label, str) or not label.strip():
        raise TokenKeyNotFound("no key label was given")
    if len(label) > MAX_LABEL_CHARS or not label.isprintable():
        raise TokenError(
            f"a key label is at most {MAX_LABEL_CHARS} printable characters",
            hint="choose a shorter label",
        )
    return label


def _key_id(obj: Any) -> bytes:
    """An object's ``CKA_ID``; empty when the token gives none."""
    return bytes(read_attribute(obj, Attribute.ID, b"") or b"")


def _ids_for_label(ts: TokenSession, label: str) -> list[bytes]:
    """CKA_IDs of private keys with this label, or (for tokens that label only the public half
    or the certificate, as some PIV modules do) of objects with this label that have a private
    key under the same id. Distinct, in token order."""
    ids: list[bytes] = []
    for obj in find_objects(
        ts.session, {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: label}, ts.subject
    ):
        key_id = _key_id(obj)
        if key_id not in ids:
            ids.append(key_id)
    if ids:
        return ids
    for object_class in (ObjectClass.PUBLIC_KEY, ObjectClass.CERTIFICATE):
        for obj in find_objects(
            ts.session, {Attribute.CLASS: object_class, Attribute.LABEL: label}, ts.subject
        ):
            key_id = _key_id(obj)
            if key_id in ids:
                continue
            if find_objects(
                ts.session,
                {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: key_id},
                ts.subject,
            ):
                ids.append(key_id)
    return ids


def _private_key_listing(ts: TokenSession) -> str:
    keys = find_objects(ts.session, {Attribute.CLASS: ObjectClass.PRIVATE_KEY}, ts.subject)
    if not keys:
        return "the token holds no private key"
    items = [
        f"{read_attribute(k, Attribute.LABEL, '')!r} (id {_key_id(k).hex()})"
        for k in keys[:MAX_LISTED]
    ]
    more = f" and {len(keys) - MAX_LISTED} more" if len(keys) > MAX_LISTED else ""
    return "private keys on the token: " + ", ".join(items) + more


def single_private_key(ts: TokenSession, key_id: bytes) -> Any:
    keys = find_objects(
        ts.session, {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: key_id}, ts.subject
    )
    if not keys:
        raise TokenKeyNotFound(
            f"no private key with id {key_id.hex() or '(empty)'}; " + _private_key_listing(ts),
            subject=ts.subject,
            hint="the key was deleted or another token is attached; register the key again",
        )
    if len(keys) > 1:
        raise TokenError(
            f"{len(keys)} private keys share id {key_id.hex() or '(empty)'}",
            subject=ts.subject,
            hint="give each key its own CKA_ID with the token's tool (e.g. pkcs11-tool)",
        )
    return keys[0]


def _ec_point(raw: bytes, curve: ec.EllipticCurve) -> bytes:
    """The uncompressed point from CKA_EC_POINT: DER OCTET STRING (the standard) or raw."""
    size = 2 * ((curve.key_size + 7) // 8) + 1
    if len(raw) == size and raw[0] == 0x04:
        return raw
    if len(raw) == size + 2 and raw[0] == 0x04 and raw[1] == size and raw[2] == 0x04:
        return raw[2:]
    raise TokenError(
        f"the token returned an EC point of {len(raw)} bytes, not a {curve.name} point"
    )


def _public_key_from_object(obj: Any) -> PublicKey:
    key_type = read_attribute(obj, Attribute.KEY_TYPE)
    if key_type == KeyType.EC:
        params = bytes(obj[Attribute.EC_PARAMS])
        curve = _CURVES.get(params)
        if curve is None:
            raise UnsupportedAlgorithm(f"EC parameters {params.hex()} are not P-256 or P-384")
        point = _ec_point(bytes(obj[Attribute.EC_POINT]), curve)
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    if key_type == KeyType.RSA:
        modulus = int.from_bytes(bytes(obj[Attribute.MODULUS]), "big")
        exponent = int.from_bytes(bytes(obj[Attribute.PUBLIC_EXPONENT]), "big")
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    raise UnsupportedAlgorithm(f"key type {key_type!r} is not ECDSA or RSA")


def token_public_key(ts: TokenSession, key_id: bytes) -> PublicKey | None:
    """The public half under ``key_id``: the public key object, else the certificate's key."""
    try:
        publics = find_objects(
            ts.session, {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.ID: key_id}, ts.subject
        )
        if len(publics) == 1:
            return _public_key_from_object(publics[0])
        certificates = find_objects(
            ts.session, {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: key_id}, ts.subject
        )
        if len(certificates) == 1:
            der = bytes(certificates[0][Attribute.VALUE])
            key = x509.load_der_x509_certificate(der).public_key()
            if isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
                return key
            raise UnsupportedAlgorithm(f"{type(key).__name__} keys are not supported")
    except UnsupportedAlgorithm as exc:
        raise TokenError(
            f"key id {key_id.hex()}: {exc.detail}",
            subject=ts.subject,
            hint="Airseal signs with ECDSA P-256/P-384 or RSA (2048 bits or more) token keys",
        ) from None
    except (p11x.PKCS11Error, ValueError) as exc:
        raise TokenError(
            f"key id {key_id.hex()}: unreadable public key ({type(exc).__name__})",
            subject=ts.subject,
        ) from None
    return None


def _supported(key: PublicKey, ts: TokenSession, what: str) -> KeyAlgorithm:
    try:
        return key_algorithm(key)
    except UnsupportedAlgorithm as exc:
        raise TokenError(
            f"{what}: {exc.detail}",
            subject=ts.subject,
            hint="Airseal signs with ECDSA P-256/P-384 or RSA (2048 bits or more) token keys",
        ) from None


def _ref(ts: TokenSession, key_id: bytes, label: str, public: PublicKey) -> Pkcs11KeyRef:
    return Pkcs11KeyRef(
        module_path=ts.module.path,
        token_label=ts.info.label,
        token_serial=ts.info.serial,
        key_id=key_id.hex(),
        key_label=label,
        public_key_pem=spki_pem(public),
    )


def generate_key(
    module_path: str | os.PathLike[str], *, token: str, label: str, pin_provider: PinProvider
) -> Pkcs11KeyRef:
    """Generate an EC P-256 signing key on the token; the private half never leaves it.

    ``token`` is the token's label or serial. A key with the same label already on the token is
    refused (:class:`TokenKeyExists`): labels are how operators name keys, and a duplicate would
    make :func:`find_key` ambiguous.
    """
    _check_label(label)
    with logged_in(module_path, token, pin_provider, rw=True) as ts:
        if ts.info.write_protected:
            raise TokenError("the token is write-protected", subject=ts.subject)
        offered = ts.mechanisms()
        require_mechanism(offered, Mechanism.EC_KEY_PAIR_GEN, purpose="generating an EC key",
                          subject=ts.subject)
        require_mechanism(offered, Mechanism.ECDSA, purpose="signing with ECDSA",
                          subject=ts.subject)
        existing = _ids_for_label(ts, label) or [
            _key_id(obj)
            for obj in find_objects(
                ts.session, {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.LABEL: label},
                ts.subject,
            )
        ]
        if existing:
            raise TokenKeyExists(
                f"a key labelled {label!r} is already on the token (id "
                + ", ".join(i.hex() or "(empty)" for i in existing) + ")",
                subject=ts.subject,
            )
        key_id = _fresh_key_id(ts)
        try:
            public, private = ts.session.generate_keypair(
                KeyType.EC,
                store=True,
                id=key_id,
                label=label,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template={
                    Attribute.EC_PARAMS: _P256_PARAMS,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: False,
                    Attribute.VERIFY: True,
                    Attribute.ENCRYPT: False,
                    Attribute.WRAP: False,
                    Attribute.DERIVE: False,
                },
                private_template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                    Attribute.DECRYPT: False,
                    Attribute.UNWRAP: False,
                    Attribute.DERIVE: False,
                },
            )
        except (p11x.TemplateInconsistent, p11x.TemplateIncomplete,
                p11x.AttributeValueInvalid, p11x.AttributeTypeInvalid) as exc:
            raise TokenError(
                f"the token refused the key template ({type(exc).__name__})",
                subject=ts.subject,
                hint="some tokens fix key ids to slots (YubiKey PIV): generate with "
                "`airseal piv generate-key`, then register the key by label",
            ) from None
        except p11x.PKCS11Error as exc:
            raise device_error(exc, ts.subject, "generating the key") from None
        try:
            _check_generated(ts, private, public)
            public_key = _public_key_from_object(public)
        except BaseException:
            for obj in (private, public):
                with suppress(p11x.PKCS11Error):
                    obj.destroy()
            raise
        return _ref(ts, key_id, label, public_key)


def _fresh_key_id(ts: TokenSession) -> bytes:
    for _ in range(8):
        key_id = secrets.token_bytes(KEY_ID_BYTES)
        if not find_objects(ts.session, {Attribute.ID: key_id}, ts.subject):
            return key_id
    raise TokenError("could not find an unused key id", subject=ts.subject)


def _check_generated(ts: TokenSession, private: Any, public: Any) -> None:
    """Refuse a key the token did not make as asked (a token may ignore template attributes)."""
    expected = {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.SIGN: True,
    }
    for attribute, value in expected.items():
        actual = read_attribute(private, attribute)
        if actual is not None and bool(actual) != value:
            raise TokenError(
                f"the token created the private key with {attribute.name}={actual}; "
                "the key was deleted",
                subject=ts.subject,
                hint="this token cannot hold a non-extractable signing key; use another token",
            )
    if read_attribute(public, Attribute.TOKEN) is False:
        raise TokenError("the token did not store the public key; the key was deleted",
                         subject=ts.subject)


def find_key(
    module_path: str | os.PathLike[str],
    *,
    token: str,
    label: str,
    pin_provider: PinProvider,
    key_id: str | None = None,
) -> Pkcs11KeyRef:
    """Register a key that is already on the token, found by its label.

    Several keys with one label is :class:`AmbiguousKeyLabel`, listing their ids: pass one of
    them as ``key_id`` (hex) to choose. No such label is :class:`TokenKeyNotFound`, listing the
    private keys the token holds.
    """
    _check_label(label)
    wanted_id: bytes | None = None
    if key_id is not None:
        try:
            wanted_id = bytes.fromhex(key_id)
        except ValueError:
            raise TokenKeyNotFound(f"key id {key_id!r} is not hex") from None
    with logged_in(module_path, token, pin_provider, rw=False) as ts:
        ids = _ids_for_label(ts, label)
        if wanted_id is not None:
            ids = [i for i in ids if i == wanted_id]
        if not ids:
            which = f" with id {wanted_id.hex()}" if wanted_id is not None else ""
            raise TokenKeyNotFound(
                f"no private key labelled {label!r}{which}; " + _private_key_listing(ts),
                subject=ts.subject,
            )
        if len(ids) > 1:
            raise AmbiguousKeyLabel(
                f"{len(ids)} keys are labelled {label!r}, with ids "
                + ", ".join(i.hex() or "(empty)" for i in ids),
                subject=ts.subject,
            )
        chosen = ids[0]
        private = single_private_key(ts, chosen)
        if read_attribute(private, Attribute.SIGN) is False:
            raise TokenError(f"key {label!r} (id {chosen.hex()}) is not allowed to sign",
                             subject=ts.subject)
        public = token_public_key(ts, chosen)
        if public is None:
            raise TokenKeyNotFound(
                f"key {label!r} (id {chosen.hex()}) has no public key or certificate on the token",
                subject=ts.subject,
                hint="store the public key or a certificate under the same CKA_ID, then retry",
            )
        _supported(public, ts, f"key {label!r}")
        return _ref(ts, chosen, label, public)


