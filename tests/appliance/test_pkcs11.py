"""The PKCS#11 backend against a real SoftHSM2 token created per test (no mocks).

SoftHSM2 never locks a PIN and only ever raises CKF_USER_PIN_COUNT_LOW, so the "final try" and
"locked" messages are checked on :func:`pin_failure_error` with the token flags a locking token
reports; SoftHSM2 offers every mechanism we use, so "mechanism not offered" is checked on
:func:`require_mechanism` with a token's mechanism set. Everything else runs on the token.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from airseal.appliance.cli.token import token as token_group
from airseal.appliance.errors import (
    AmbiguousKeyLabel,
    AmbiguousToken,
    MechanismNotOffered,
    PinError,
    PinLocked,
    Pkcs11ModuleError,
    TokenError,
    TokenKeyExists,
    TokenKeyMismatch,
    TokenKeyNotFound,
    TokenNotFound,
    WrongPin,
)
from airseal.appliance.signers.pkcs11 import (
    Pkcs11KeyRef,
    Pkcs11Signer,
    RsaPadding,
    TokenInfo,
    find_key,
    generate_key,
    list_tokens,
    pin_failure_error,
    require_mechanism,
)
from airseal.trustroot.bundle import (
    bundle_to_json,
    message_signature_bundle,
    parse_bundle,
    sign_statement,
)
from airseal.trustroot.dsse import Statement, Subject
from airseal.trustroot.errors import InvalidSignature
from airseal.trustroot.keys import load_public_key, spki_pem, verify_digest
from airseal.trustroot.signer import Signer
from airseal.trustroot.verify import verify_blob_bundle, verify_dsse_bundle
from tests.interop.sigstore_js import verify_with_sigstore_js
from tests.realparts.softhsm import USER_PIN, SoftHsm, SoftHsmToken

WRONG_PIN = "Wombat-wrong-pin"
Tokens = tuple[SoftHsm, SoftHsmToken, SoftHsmToken]


class CountingPin:
    """A pin_provider that counts how often the backend asked."""

    def __init__(self, pin: str = USER_PIN) -> None:
        self.pin = pin
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return self.pin


def right_pin() -> str:
    return USER_PIN


def wrong_pin() -> str:
    return WRONG_PIN


def _digest(data: bytes = b"airseal payload") -> bytes:
    return hashlib.sha256(data).digest()


def _all_texts(error: BaseException) -> str:
    """Everything an error could show: str, repr, diagnostics, causes, the formatted traceback."""
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    if hasattr(error, "diagnostics"):
        texts.append(error.diagnostics())
    for linked in (error.__cause__, error.__context__):
        if linked is not None:
            texts += [str(linked), repr(linked)]
    return "\n".join(texts)


def _fresh_handle(hsm: SoftHsm, token: SoftHsmToken) -> int:
    session = hsm.lib().get_token(token_serial=token.serial.encode()).open()
    try:
        return int(session.handle)
    finally:
        session.close()


def _assert_no_session_left(hsm: SoftHsm, token: SoftHsmToken) -> None:
    """No session of this process is open, and a fresh session is not logged in."""
    upto = _fresh_handle(hsm, token)
    assert hsm.open_session_handles(upto) == []
    session = hsm.lib().get_token(token_serial=token.serial.encode()).open()
    try:
        assert hsm.session_state(session.handle) == 0  # CKS_RO_PUBLIC_SESSION: nobody logged in
        assert list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})) == []
    finally:
        session.close()


def _direct_session(hsm: SoftHsm, token: SoftHsmToken) -> Any:
    """A python-pkcs11 session of the test's own, logged in (close it before calling Airseal)."""
    return hsm.lib().get_token(token_serial=token.serial.encode()).open(rw=True, user_pin=USER_PIN)


def _make_ec_key(
    hsm: SoftHsm, token: SoftHsmToken, label: str, key_id: bytes,
    private: dict[Attribute, Any] | None = None,
) -> None:
    with _direct_session(hsm, token) as session:
        session.generate_keypair(
            KeyType.EC, store=True, id=key_id, label=label,
            capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
            public_template={Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
            private_template={Attribute.EXTRACTABLE: False, **(private or {})},
        )


@pytest.fixture
def key(two_tokens: Tokens) -> tuple[SoftHsm, SoftHsmToken, Pkcs11KeyRef]:
    hsm, first, _ = two_tokens
    ref = generate_key(hsm.module_path, token=first.label, label="release", pin_provider=right_pin)
    return hsm, first, ref


# --- tokens ----------------------------------------------------------------------------------


def test_list_tokens_reports_both_tokens_and_the_free_slot(two_tokens: Tokens) -> None:
    hsm, first, second = two_tokens
    infos = list_tokens(hsm.module_path)
    ready = {info.label: info for info in infos if info.initialised}
    assert set(ready) == {"airseal-a", "airseal-b"}
    for token in (first, second):
        info = ready[token.label]
        assert info.serial == token.serial
        assert info.slot_id == token.slot_id
        assert (info.manufacturer, info.model) == ("SoftHSM project", "SoftHSM v2")
        assert info.login_required and info.user_pin_initialised
        assert not (info.pin_count_low or info.pin_final_try or info.pin_locked)
        assert info.pin_status == "ok"
        # SoftHSM2 reports no memory figures: None, never a made-up number.
        assert info.free_public_memory is None and info.free_private_memory is None
    assert [info for info in infos if not info.initialised]  # SoftHSM's spare slot is listed


def test_each_of_two_tokens_is_selected_by_label_and_by_serial(two_tokens: Tokens) -> None:
    hsm, first, second = two_tokens
    for token in (first, second):
        for n, selector in enumerate((token.label, token.serial, token.serial.upper())):
            ref = generate_key(
                hsm.module_path, token=selector, label=f"key-{n}", pin_provider=right_pin
            )
            assert (ref.token_label, ref.token_serial) == (token.label, token.serial)
    # Keys land on the selected token only.
    with pytest.raises(TokenKeyNotFound):
        find_key(hsm.module_path, token=second.serial, label="nothing-here", pin_provider=right_pin)
    ref_a = find_key(hsm.module_path, token=first.serial, label="key-0", pin_provider=right_pin)
    ref_b = find_key(hsm.module_path, token=second.serial, label="key-0", pin_provider=right_pin)
    assert ref_a.public_key_pem != ref_b.public_key_pem


def test_one_label_on_two_tokens_is_ambiguous_and_the_serial_still_selects(
    softhsm: SoftHsm,
) -> None:
    one = softhsm.init_token("twin")
    two = softhsm.init_token("twin")
    softhsm.activate()
    with pytest.raises(AmbiguousToken) as caught:
        generate_key(softhsm.module_path, token="twin", label="k", pin_provider=right_pin)
    assert one.serial in str(caught.value) and two.serial in str(caught.value)
    ref = generate_key(softhsm.module_path, token=two.serial, label="k", pin_provider=right_pin)
    assert ref.token_serial == two.serial


def test_missing_token_lists_what_is_present(two_tokens: Tokens) -> None:
    hsm, first, second = two_tokens
    with pytest.raises(TokenNotFound) as caught:
        generate_key(hsm.module_path, token="no-such-token", label="k", pin_provider=right_pin)
    text = caught.value.diagnostics()
    assert "no-such-token" in text
    for token in (first, second):
        assert token.label in text and token.serial in text
    assert "airseal token list" in text


@pytest.mark.parametrize("kind", ["missing", "directory", "text file", "not pkcs11"])
def test_wrong_module_path_is_a_clear_error(kind: str, tmp_path: Path) -> None:
    paths = {
        "missing": tmp_path / "nowhere" / "libpkcs11.so",
        "directory": tmp_path,
        "text file": tmp_path / "notes.so",
        # A genuine shared library that is no PKCS#11 module: python-pkcs11's own extension.
        "not pkcs11": Path(pkcs11._pkcs11.__file__),
    }
    (tmp_path / "notes.so").write_text("not a library\n")
    with pytest.raises(Pkcs11ModuleError) as caught:
        list_tokens(paths[kind])
    assert str(paths[kind]) in str(caught.value)
    assert "softhsm2" in caught.value.diagnostics()  # the hint names the usual modules
    with pytest.raises(Pkcs11ModuleError):
        generate_key(paths[kind], token="airseal-a", label="k", pin_provider=right_pin)


# --- keys ------------------------------------------------------------------------------------


def test_generated_key_is_non_extractable_sign_only_and_on_the_token(key: Any) -> None:
    hsm, token, ref = key
    key_id = bytes.fromhex(ref.key_id)
    assert len(key_id) == 16
    with _direct_session(hsm, token) as session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id)
        public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, id=key_id)
        for attribute, expected in {
            Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False, Attribute.NEVER_EXTRACTABLE: True,
            Attribute.ALWAYS_SENSITIVE: True, Attribute.SIGN: True, Attribute.DECRYPT: False,
            Attribute.UNWRAP: False, Attribute.DERIVE: False, Attribute.LABEL: "release",
        }.items():
            assert private[attribute] == expected, attribute
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            _ = private[Attribute.VALUE]
        assert public[Attribute.TOKEN] is True and public[Attribute.ENCRYPT] is False
        assert public[Attribute.LABEL] == "release"
        point = bytes(public[Attribute.EC_POINT])[2:]  # DER OCTET STRING around the point
    stored = ref.public_key()
    assert isinstance(stored, ec.EllipticCurvePublicKey)
    assert isinstance(stored.curve, ec.SECP256R1)
    raw = stored.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert raw == point


def test_generate_refuses_a_label_already_on_the_token(key: Any) -> None:
    hsm, token, _ = key
    with pytest.raises(TokenKeyExists) as caught:
        generate_key(hsm.module_path, token=token.label, label="release", pin_provider=right_pin)
    assert "release" in str(caught.value)


def test_find_key_by_label_returns_the_generated_reference(key: Any) -> None:
    hsm, token, ref = key
    found = find_key(hsm.module_path, token=token.serial, label="release", pin_provider=right_pin)
    assert found == ref


def test_label_not_found_lists_the_keys_on_the_token(key: Any) -> None:
    hsm, token, ref = key
    with pytest.raises(TokenKeyNotFound) as caught:
        find_key(hsm.module_path, token=token.label, label="relaese", pin_provider=right_pin)
    text = str(caught.value)
    assert "'relaese'" in text and "'release'" in text and ref.key_id in text


def test_two_keys_with_one_label_are_ambiguous_and_the_id_chooses(key: Any) -> None:
    hsm, token, ref = key
    other_id = bytes.fromhex("a1" * 8)
    _make_ec_key(hsm, token, "release", other_id)  # SoftHSM accepts a duplicate label
    with pytest.raises(AmbiguousKeyLabel) as caught:
        find_key(hsm.module_path, token=token.label, label="release", pin_provider=right_pin)
    assert ref.key_id in str(caught.value) and other_id.hex() in str(caught.value)
    assert "--key-id" in caught.value.diagnostics()
    chosen = find_key(hsm.module_path, token=token.label, label="release",
                      pin_provider=right_pin, key_id=other_id.hex())
    assert chosen.key_id == other_id.hex() and chosen.public_key_pem != ref.public_key_pem
    # Signers keep finding their own key by id, whatever the labels say.
    for each in (ref, chosen):
        with Pkcs11Signer(each, right_pin) as signer:
            verify_digest(each.public_key(), signer.sign_digest(_digest()), _digest())


# --- signing ---------------------------------------------------------------------------------


def test_signer_is_a_trustroot_signer_and_signs_a_digest(key: Any) -> None:
    _, _, ref = key
    with Pkcs11Signer(ref, right_pin) as signer:
        assert isinstance(signer, Signer)
        assert signer.algorithm.label == "ecdsa-p256"
        assert spki_pem(signer.public_key) == ref.public_key_pem
        signature = signer.sign_digest(_digest())
    decode_dss_signature(signature)  # DER, not the token's raw r||s
    verify_digest(ref.public_key(), signature, _digest())
    with pytest.raises(InvalidSignature):
        verify_digest(ref.public_key(), signature, _digest(b"something else"))


def test_blob_signed_on_the_token_verifies_as_a_bundle(key: Any) -> None:
    _, _, ref = key
    blob = os.urandom(100_000)
    digest = hashlib.sha256(blob).digest()
    with Pkcs11Signer(ref, right_pin) as signer:
        bundle = message_signature_bundle(signer.public_key, digest, signer.sign_digest(digest))
    parsed = parse_bundle(bundle_to_json(bundle))
    verified = verify_blob_bundle(ref.public_key(), parsed, digest, message=blob)
    assert verified.sha256 == digest.hex()


def _statement(digest: bytes) -> Statement:
    return Statement(
        subject=(Subject(name="installer.bin", digest={"sha256": digest.hex()}),),
        predicate_type="https://airseal.example/action/v1",
        predicate={"name": "(Install)Agent", "option": "execute"},
    )


def test_dsse_statement_signed_on_the_token_verifies(key: Any) -> None:
    _, _, ref = key
    statement = _statement(_digest())
    with Pkcs11Signer(ref, right_pin) as signer:
        bundle = sign_statement(signer, statement)
    verified = verify_dsse_bundle(ref.public_key(), parse_bundle(bundle_to_json(bundle)))
    assert verified == statement


def test_bundles_signed_on_the_token_verify_with_sigstore_js(key: Any, tmp_path: Path) -> None:
    _, _, ref = key
    artifact = tmp_path / "installer.bin"
    artifact.write_bytes(os.urandom(50_000))
    digest = hashlib.sha256(artifact.read_bytes()).digest()
    key_pem = tmp_path / "cosign.pub"
    key_pem.write_bytes(ref.public_key_pem)
    with Pkcs11Signer(ref, right_pin) as signer:
        signature = signer.sign_digest(digest)
        blob_bundle = message_signature_bundle(signer.public_key, digest, signature)
        dsse_bundle = sign_statement(signer, _statement(digest))
    blob_path = tmp_path / "installer.bin.sigstore.json"
    blob_path.write_bytes(bundle_to_json(blob_bundle))
    dsse_path = tmp_path / "action.sigstore.json"
    dsse_path.write_bytes(bundle_to_json(dsse_bundle))
    assert verify_with_sigstore_js(blob_path, key_pem, artifact).ok
    assert verify_with_sigstore_js(dsse_path, key_pem, artifact).ok
    artifact.write_bytes(b"tampered")
    assert not verify_with_sigstore_js(blob_path, key_pem, artifact).ok


def test_one_session_and_one_pin_serve_many_signatures(key: Any) -> None:
    hsm, token, ref = key
    pin = CountingPin()
    with Pkcs11Signer(ref, pin) as signer:
        for n in range(200):
            digest = _digest(b"%d" % n)
            verify_digest(ref.public_key(), signer.sign_digest(digest), digest)
        upto = _fresh_handle(hsm, token)
        assert len(hsm.open_session_handles(upto)) == 1
    assert pin.calls == 1
    assert signer.closed
    _assert_no_session_left(hsm, token)


def test_signers_on_one_token_share_its_login(key: Any) -> None:
    hsm, token, ref = key
    first_pin, second_pin = CountingPin(), CountingPin()
    first = Pkcs11Signer(ref, first_pin)
    second = Pkcs11Signer(ref, second_pin)
    assert (first_pin.calls, second_pin.calls) == (1, 0)  # the token is already unlocked
    first.close()
    verify_digest(ref.public_key(), second.sign_digest(_digest()), _digest())  # still logged in
    second.close()
    _assert_no_session_left(hsm, token)


def test_closed_signer_refuses_to_sign(key: Any) -> None:
    _, _, ref = key
    signer = Pkcs11Signer(ref, right_pin)
    signer.close()
    signer.close()  # idempotent
    with pytest.raises(TokenError, match="closed"):
        signer.sign_digest(_digest())
    with pytest.raises(ValueError, match="32 bytes"), Pkcs11Signer(ref, right_pin) as open_one:
        open_one.sign_digest(b"short")


def test_rsa_key_signs_pkcs1v15_by_default_and_pss_on_request(two_tokens: Tokens) -> None:
    hsm, token, _ = two_tokens
    with _direct_session(hsm, token) as session:
        session.generate_keypair(
            KeyType.RSA, 2048, store=True, id=b"\x52\x53\x41", label="rsa-release",
            capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
            private_template={Attribute.EXTRACTABLE: False},
        )
    ref = find_key(hsm.module_path, token=token.label, label="rsa-release", pin_provider=right_pin)
    public = ref.public_key()
    with Pkcs11Signer(ref, right_pin) as signer:
        assert signer.algorithm.label == "rsa-2048"
        signature = signer.sign_digest(_digest())
        bundle = sign_statement(signer, _statement(_digest()))
    verify_digest(public, signature, _digest())
    verify_dsse_bundle(public, bundle)
    with Pkcs11Signer(ref, right_pin, rsa_padding=RsaPadding.PSS) as signer:
        pss = signer.sign_digest(_digest())
    public.verify(  # type: ignore[union-attr, call-arg]
        pss, _digest(), padding.PSS(padding.MGF1(hashes.SHA256()), 32), Prehashed(hashes.SHA256())
    )
    with pytest.raises(InvalidSignature):
        verify_digest(public, pss, _digest())  # PSS is not what cosign-style verifiers accept


def test_always_authenticate_key_asks_for_the_pin_at_every_signature(two_tokens: Tokens) -> None:
    hsm, token, _ = two_tokens
    _make_ec_key(hsm, token, "piv-style", b"\x02", {Attribute.ALWAYS_AUTHENTICATE: True})
    ref = find_key(hsm.module_path, token=token.label, label="piv-style", pin_provider=right_pin)
    pin = CountingPin()
    with Pkcs11Signer(ref, pin) as signer:
        for n in range(3):
            digest = _digest(b"%d" % n)
            verify_digest(ref.public_key(), signer.sign_digest(digest), digest)
    assert pin.calls == 1 + 3  # the login, then one context-specific login per signature
    answers = iter([USER_PIN, WRONG_PIN])
    signer = Pkcs11Signer(ref, lambda: next(answers))
    with pytest.raises(WrongPin) as caught:
        signer.sign_digest(_digest())
    assert signer.closed  # a failed per-signature login ends the signer
    assert WRONG_PIN not in _all_texts(caught.value)
    _assert_no_session_left(hsm, token)


# --- a different key behind the registered id ------------------------------------------------


def test_a_replaced_key_behind_the_same_id_is_refused(key: Any) -> None:
    hsm, token, ref = key
    key_id = bytes.fromhex(ref.key_id)
    with _direct_session(hsm, token) as session:
        for obj in list(session.get_objects({Attribute.ID: key_id})):
            obj.destroy()
    _make_ec_key(hsm, token, "release", key_id)
    with pytest.raises(TokenKeyMismatch) as caught:
        Pkcs11Signer(ref, right_pin)
    assert ref.key_id in str(caught.value)
    _assert_no_session_left(hsm, token)


def test_a_replaced_key_without_public_object_is_caught_at_the_first_signature(key: Any) -> None:
    hsm, token, ref = key
    key_id = bytes.fromhex(ref.key_id)
    with _direct_session(hsm, token) as session:
        for obj in list(session.get_objects({Attribute.ID: key_id})):
            obj.destroy()
    _make_ec_key(hsm, token, "release", key_id)
    with _direct_session(hsm, token) as session:
        session.get_key(object_class=ObjectClass.PUBLIC_KEY, id=key_id).destroy()
    signer = Pkcs11Signer(ref, right_pin)  # nothing on the token to compare with yet
    with pytest.raises(TokenKeyMismatch):
        signer.sign_digest(_digest())
    assert signer.closed
    _assert_no_session_left(hsm, token)


def test_a_reference_to_a_deleted_key_says_so(key: Any) -> None:
    hsm, token, ref = key
    with pytest.raises(TokenKeyNotFound):
        Pkcs11Signer(replace(ref, key_id="00" * 16), right_pin)
    _assert_no_session_left(hsm, token)


# --- PINs ------------------------------------------------------------------------------------


def test_wrong_pin_says_what_the_token_reports_and_never_shows_a_pin(key: Any) -> None:
    hsm, token, ref = key
    attempts: list[Callable[[], object]] = [
        lambda: Pkcs11Signer(ref, wrong_pin),
        lambda: find_key(hsm.module_path, token=token.label, label="release",
                         pin_provider=wrong_pin),
        lambda: generate_key(hsm.module_path, token=token.label, label="other",
                             pin_provider=wrong_pin),
    ]
    for attempt in attempts:
        with pytest.raises(WrongPin) as caught:
            attempt()
        error = caught.value
        assert isinstance(error, PinError) and isinstance(error, TokenError)
        assert "rejected the PIN" in str(error)
        # SoftHSM raises CKF_USER_PIN_COUNT_LOW after a wrong PIN, and the message passes it on.
        assert "few tries remain" in str(error)
        assert token.label in str(error) and token.serial in str(error)
        text = _all_texts(error)
        assert WRONG_PIN not in text and USER_PIN not in text
    state = next(i for i in list_tokens(hsm.module_path) if i.serial == token.serial)
    assert state.pin_count_low and state.pin_status == "tries low"
    _assert_no_session_left(hsm, token)
    with Pkcs11Signer(ref, right_pin) as signer:  # the right PIN still works afterwards
        signer.sign_digest(_digest())


def test_pin_failure_messages_for_final_try_and_lock() -> None:
    base = TokenInfo(
        slot_id=7, slot_description="reader", label="yubikey", serial="12345678",
        manufacturer="Yubico", model="YubiKey", initialised=True, user_pin_initialised=True,
        login_required=True, protected_authentication_path=False, write_protected=False,
        pin_count_low=False, pin_final_try=False, pin_locked=False, pin_to_be_changed=False,
    )
    unknown = pin_failure_error(base)
    assert isinstance(unknown, WrongPin) and "does not say how many tries" in str(unknown)
    final = pin_failure_error(replace(base, pin_count_low=True, pin_final_try=True))
    assert isinstance(final, WrongPin) and "one try remains" in str(final)
    locked = pin_failure_error(replace(base, pin_locked=True))
    assert isinstance(locked, PinLocked) and "locked" in str(locked)
    assert "PUK" in locked.diagnostics()
    assert replace(base, pin_locked=True).pin_status == "locked"


def test_an_empty_pin_is_refused_without_trying_the_token(key: Any) -> None:
    hsm, token, ref = key
    with pytest.raises(PinError, match="no PIN"):
        Pkcs11Signer(ref, lambda: "")
    state = next(i for i in list_tokens(hsm.module_path) if i.serial == token.serial)
    assert not state.pin_count_low  # nothing was sent to the token
    _assert_no_session_left(hsm, token)


# --- sessions close on every path ------------------------------------------------------------


class Cancelled(Exception):
    pass


def _cancelled_prompt() -> str:
    raise Cancelled


def _sign_then_fail(ref: Pkcs11KeyRef) -> None:
    with Pkcs11Signer(ref, right_pin) as signer:
        signer.sign_digest(_digest())
        raise RuntimeError("boom")


def test_sessions_are_closed_on_every_path(key: Any) -> None:
    hsm, token, ref = key
    for _ in range(40):
        with Pkcs11Signer(ref, right_pin) as signer:
            signer.sign_digest(_digest())
        with pytest.raises(WrongPin):
            Pkcs11Signer(ref, wrong_pin)
        with pytest.raises(Cancelled):
            Pkcs11Signer(ref, _cancelled_prompt)
        with pytest.raises(RuntimeError, match="boom"):
            _sign_then_fail(ref)
        with pytest.raises(ValueError, match="32 bytes"), Pkcs11Signer(ref, right_pin) as signer:
            signer.sign_digest(b"not a digest")
        with pytest.raises(TokenKeyNotFound):
            find_key(hsm.module_path, token=token.label, label="absent", pin_provider=right_pin)
        with pytest.raises(TokenKeyExists):
            generate_key(hsm.module_path, token=token.label, label="release",
                         pin_provider=right_pin)
    _assert_no_session_left(hsm, token)


def test_a_forgotten_signer_is_closed_when_collected(key: Any) -> None:
    hsm, token, ref = key
    signer = Pkcs11Signer(ref, right_pin)
    signer.sign_digest(_digest())
    del signer
    gc.collect()
    _assert_no_session_left(hsm, token)


# --- the reference, the CLI, mechanisms ------------------------------------------------------


def test_the_reference_round_trips_and_holds_no_secret(key: Any) -> None:
    _, _, ref = key
    record = ref.to_record()
    assert Pkcs11KeyRef.from_record(json.loads(json.dumps(record))) == ref
    assert USER_PIN not in json.dumps(record) and USER_PIN not in repr(ref)
    load_public_key(ref.public_key_pem)
    with pytest.raises(ValueError, match="hex"):
        replace(ref, key_id="XYZ")
    with pytest.raises(ValueError, match="absolute"):
        replace(ref, module_path="relative/libsofthsm2.so")


def test_cli_token_list_prints_a_table_and_json(two_tokens: Tokens) -> None:
    hsm, first, second = two_tokens
    runner = CliRunner()
    as_json = runner.invoke(token_group, ["list", "--module", hsm.module_path, "--json"])
    assert as_json.exit_code == 0, as_json.output
    listed = {
        entry["label"]: entry
        for entry in json.loads(as_json.output)["items"]
        if entry["initialised"]
    }
    assert listed["airseal-a"]["serial"] == first.serial
    assert listed["airseal-b"]["serial"] == second.serial
    table = runner.invoke(token_group, ["list", "--module", hsm.module_path])
    assert table.exit_code == 0, table.output
    for token in (first, second):
        assert token.label in table.output and token.serial in table.output
    via_env = runner.invoke(token_group, ["list"], env={"AIRSEAL_PKCS11_MODULE": hsm.module_path})
    assert via_env.exit_code == 0 and first.serial in via_env.output
    missing = runner.invoke(token_group, ["list", "--module", "/nonexistent/libp11.so"])
    assert isinstance(missing.exception, Pkcs11ModuleError)


def test_mechanism_not_offered_names_what_the_token_offers(two_tokens: Tokens) -> None:
    hsm, token, _ = two_tokens
    offered = hsm.lib().get_token(token_serial=token.serial.encode()).slot.get_mechanisms()
    require_mechanism(offered, Mechanism.ECDSA, purpose="signing", subject="softhsm")
    rsa_only = {Mechanism.RSA_PKCS, Mechanism.RSA_PKCS_KEY_PAIR_GEN, Mechanism.SHA256}
    with pytest.raises(MechanismNotOffered) as caught:
        require_mechanism(rsa_only, Mechanism.ECDSA, purpose="signing with key 'release'",
                          subject="token 'hsm'")
    assert "CKM_ECDSA" in str(caught.value) and "RSA_PKCS" in str(caught.value)
    assert isinstance(caught.value, TokenError)


def test_a_module_unloaded_elsewhere_is_loaded_again(two_tokens: Tokens) -> None:
    hsm, _, _ = two_tokens
    assert len(list_tokens(hsm.module_path)) == 3
    pkcs11.unload(os.path.realpath(hsm.module_path))  # e.g. another component's cleanup
    assert len(list_tokens(hsm.module_path)) == 3


def test_an_all_zero_serial_names_no_token():
    """OpenSC gives every PIV card without a CHUID the serial 00000000: selecting by it would be
    ambiguous as soon as two are attached, so it is treated as absent (the label selects)."""
    from airseal.appliance.signers.pkcs11.tokens import _meaningful_serial

    assert _meaningful_serial("00000000") == ""
    assert _meaningful_serial("") == ""
    assert _meaningful_serial("0a1b2c3d") == "0a1b2c3d"
