"""A software PIV card that answers the APDUs yubikit's ``PivSession`` (and libykpiv/OpenSC) send.

It stands in for a YubiKey in tests, at two depths: directly as a yubikit
``SmartCardConnection`` (:class:`SoftPivConnection`), and behind the real PC/SC stack through
vsmartcard's vpcd (:mod:`tests.realparts.vpcd`), which feeds it raw command APDUs via
:meth:`SoftPivCard.transmit`.

What it reproduces (see ../shared/interop/yubico/PIV-APDUS.md):
- SELECT of the PIV and Management applications, GET VERSION / GET SERIAL, GET METADATA (the card
  reports firmware 5.7.x so yubikit enables metadata, serial and attestation);
- PIN and PUK with retry counters (63Cx, 6983 when blocked), CHANGE REFERENCE, RESET RETRY, and
  RESET only when both are blocked (else 6985);
- management key mutual authentication, TDES and AES, with optional touch, and SET MANAGEMENT KEY;
- key generation (EC P-256/P-384, RSA-2048, and Ed25519 as firmware 5.7+ has it: algorithm
  0xE0, public key in tag 0x86, the whole message signed; refused below 5.7) with PIN policy
  (9c defaults to ALWAYS: a VERIFY must come right before every private-key operation, else
  6982; 9a defaults to ONCE) and touch policy
  (a ``touch`` callback decides whether the operator touched; a denied touch answers 6985; CACHED
  lasts 15 s on the injected clock);
- GET DATA / PUT DATA objects, the PIN-protected PRINTED object (where ykman keeps a protected
  management key), the discovery object;
- ATTEST: a certificate for a *generated* key, signed by the card's F9 attestation key, carrying
  Yubico's extensions (1.3.6.1.4.1.41482.3.3 firmware, .7 serial, .8 PIN/touch policy, .9 form
  factor). The F9 key and its issuing CA are a TEST CA made by :class:`TestAttestationCA`, never
  Yubico's;
- command chaining (CLA 0x10), short and extended APDUs, and 61xx + GET RESPONSE for long replies.

It is a test double, not a secure element: keys live in Python memory.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID
from yubikit.core import TRANSPORT, Tlv
from yubikit.core.smartcard import SmartCardConnection

# Status words
SW_OK = 0x9000
SW_WRONG_LENGTH = 0x6700
SW_SECURITY_NOT_SATISFIED = 0x6982
SW_AUTH_BLOCKED = 0x6983
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_INCORRECT_DATA = 0x6A80
SW_FILE_NOT_FOUND = 0x6A82
SW_INCORRECT_P1P2 = 0x6A86
SW_REFERENCE_NOT_FOUND = 0x6A88
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00

AID_PIV = bytes.fromhex("a000000308")
AID_MANAGEMENT = bytes.fromhex("a000000527471117")

# The ATR a YubiKey 5 NFC presents over USB: ykman reads byte 1 (0xFD) as "USB transport", and
# OpenSC's PIV driver recognises it as a YubiKey.
YUBIKEY5_ATR = bytes.fromhex("3bfd1300008131fe158073c021c057597562694b657940")

DEFAULT_PIN = "123456"
DEFAULT_PUK = "12345678"
DEFAULT_MANAGEMENT_KEY = bytes.fromhex("010203040506070801020304050607080102030405060708")

MGMT_TDES, MGMT_AES128, MGMT_AES192, MGMT_AES256 = 0x03, 0x08, 0x0A, 0x0C
_MGMT_KEY_LEN = {MGMT_TDES: 24, MGMT_AES128: 16, MGMT_AES192: 24, MGMT_AES256: 32}

ALG_RSA2048, ALG_ECCP256, ALG_ECCP384, ALG_ED25519 = 0x07, 0x11, 0x14, 0xE0
SlotKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

PIN_POLICY_DEFAULT, PIN_POLICY_NEVER, PIN_POLICY_ONCE, PIN_POLICY_ALWAYS = 0, 1, 2, 3
TOUCH_DEFAULT, TOUCH_NEVER, TOUCH_ALWAYS, TOUCH_CACHED = 0, 1, 2, 3
TOUCH_CACHE_SECONDS = 15.0

SLOT_AUTHENTICATION, SLOT_SIGNATURE, SLOT_KEY_MANAGEMENT, SLOT_CARD_AUTH = 0x9A, 0x9C, 0x9D, 0x9E
SLOT_ATTESTATION = 0xF9
SLOT_MANAGEMENT_KEY = 0x9B
_KEY_SLOTS = {0x9A, 0x9C, 0x9D, 0x9E, *range(0x82, 0x96), SLOT_ATTESTATION}
_OBJECT_FOR_SLOT = {
    0x9A: 0x5FC105,
    0x9C: 0x5FC10A,
    0x9D: 0x5FC10B,
    0x9E: 0x5FC101,
    **{0x82 + i: 0x5FC10D + i for i in range(20)},
    SLOT_ATTESTATION: 0x5FFF01,
}
OBJECT_PRINTED = 0x5FC109  # PIN-protected: ykman stores a "protected" management key here
OBJECT_DISCOVERY = 0x7E
DISCOVERY = bytes.fromhex("7e124f0ba0000003080000100001005f2f024000")

YUBICO_OID = "1.3.6.1.4.1.41482.3"
OID_FIRMWARE = x509.ObjectIdentifier(f"{YUBICO_OID}.3")
OID_SERIAL = x509.ObjectIdentifier(f"{YUBICO_OID}.7")
OID_POLICY = x509.ObjectIdentifier(f"{YUBICO_OID}.8")
OID_FORM_FACTOR = x509.ObjectIdentifier(f"{YUBICO_OID}.9")

FORM_FACTOR_USB_A_KEYCHAIN = 0x01
CAPABILITY_PIV = 0x0010
CAPABILITY_OTP = 0x0001
CAPABILITY_U2F = 0x0002
CAPABILITY_FIDO2 = 0x0200
CAPABILITY_OATH = 0x0020
CAPABILITY_OPENPGP = 0x0008


class ApduStatus(Exception):
    def __init__(self, sw: int) -> None:
        super().__init__(f"SW {sw:04X}")
        self.sw = sw


@dataclass
class TestAttestationCA:
    """A two-level TEST attestation PKI: a root CA and the card's F9 attestation key/certificate.

    Shaped like Yubico's legacy chain (F9 directly under a root); never Yubico's keys.
    """

    __test__ = False  # not a pytest test class

    root_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    root_cert: x509.Certificate
    f9_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    f9_cert: x509.Certificate

    @classmethod
    def generate(
        cls,
        *,
        name: str = "Airseal TEST PIV Root CA",
        rsa_keys: bool = False,
        firmware: tuple[int, int, int] = (5, 7, 4),
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> TestAttestationCA:
        def new_key() -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
            if rsa_keys:
                return rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return ec.generate_private_key(ec.SECP256R1())

        start = not_before or dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        end = not_after or dt.datetime(2099, 12, 31, tzinfo=dt.UTC)
        root_key = new_key()
        root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        root_cert = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .sign(root_key, hashes.SHA256())
        )
        f9_key = new_key()
        f9_cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Airseal TEST PIV Attestation")])
            )
            .issuer_name(root_name)
            .public_key(f9_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.UnrecognizedExtension(OID_FIRMWARE, bytes(firmware)), False)
            .sign(root_key, hashes.SHA256())
        )
        return cls(root_key, root_cert, f9_key, f9_cert)


@dataclass
class _Slot:
    key: SlotKey
    algorithm: int
    pin_policy: int
    touch_policy: int
    generated: bool


@dataclass
class _Counter:
    value: str
    total: int = 3
    remaining: int = 3
    is_default: bool = True

    @property
    def blocked(self) -> bool:
        return self.remaining == 0

    def check(self, candidate: str) -> None:
        """Check a PIN/PUK, counting failures. Raises the status word a YubiKey answers."""
        if self.blocked:
            raise ApduStatus(SW_AUTH_BLOCKED)
        if candidate != self.value:
            self.remaining -= 1
            raise ApduStatus(0x63C0 | self.remaining)
        self.remaining = self.total


@dataclass
class _Session:
    """Security state that a power cycle (a PC/SC disconnect) clears."""

    selected: bytes = b""
    pin_verified: bool = False
    verified_just_now: bool = False  # VERIFY was the previous command (PIN policy ALWAYS)
    mgmt_authenticated: bool = False
    witness: bytes | None = None
    chain: bytes = b""
    chain_header: bytes = b""
    pending_reply: bytes = b""


def _pin_from_block(block: bytes) -> str:
    if len(block) != 8:
        raise ApduStatus(SW_WRONG_LENGTH)
    return block.rstrip(b"\xff").decode("utf-8", errors="replace")


def _parse_apdu(apdu: bytes) -> tuple[int, int, int, int, bytes]:
    """Split a short or extended command APDU into CLA, INS, P1, P2 and data (Le is ignored)."""
    if len(apdu) < 4:
        raise ApduStatus(SW_WRONG_LENGTH)
    cla, ins, p1, p2 = apdu[:4]
    body = apdu[4:]
    if len(body) <= 1:
        return cla, ins, p1, p2, b""
    if body[0] != 0:
        lc = body[0]
        if len(body) not in (1 + lc, 2 + lc):
            raise ApduStatus(SW_WRONG_LENGTH)
        return cla, ins, p1, p2, body[1 : 1 + lc]
    if len(body) == 3:  # extended Le only
        return cla, ins, p1, p2, b""
    lc = int.from_bytes(body[1:3], "big")
    if len(body) not in (3 + lc, 5 + lc):
        raise ApduStatus(SW_WRONG_LENGTH)
    return cla, ins, p1, p2, body[3 : 3 + lc]


class SoftPivCard:
    """The card's state and its APDU interpreter. Thread-safe: one command at a time."""

    RESPONSE_CHUNK = 256

    def __init__(
        self,
        attestation_ca: TestAttestationCA,
        *,
        serial: int = 20_500_001,
        version: tuple[int, int, int] = (5, 7, 4),
        form_factor: int = FORM_FACTOR_USB_A_KEYCHAIN,
        touch: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.serial = serial
        self.version = version
        self.form_factor = form_factor
        self.attestation_ca = attestation_ca
        self.touch: Callable[[], bool] = touch or (lambda: True)
        self.clock = clock
        self.touches_requested = 0
        self.signatures = 0
        self.chained_blocks = 0
        self.get_responses = 0
        self.apdu_log: list[tuple[int, int, int, int]] = []
        self._lock = threading.RLock()
        self._factory_reset()
        self.session = _Session()

    # ---- state ----------------------------------------------------------------------------

    def _factory_reset(self) -> None:
        self.pin = _Counter(DEFAULT_PIN)
        self.puk = _Counter(DEFAULT_PUK)
        self.mgmt_key_type = MGMT_AES192 if self.version >= (5, 7, 0) else MGMT_TDES
        self.mgmt_key = DEFAULT_MANAGEMENT_KEY
        self.mgmt_key_default = True
        self.mgmt_touch = False
        self.slots: dict[int, _Slot] = {}
        self.objects: dict[int, bytes] = {}
        self._last_touch: float | None = None
        ca = self.attestation_ca
        self.slots[SLOT_ATTESTATION] = _Slot(
            ca.f9_key,
            ALG_ECCP256 if isinstance(ca.f9_key, ec.EllipticCurvePrivateKey) else ALG_RSA2048,
            PIN_POLICY_NEVER,
            TOUCH_NEVER,
            generated=False,
        )
        f9_der = ca.f9_cert.public_bytes(serialization.Encoding.DER)
        self.objects[_OBJECT_FOR_SLOT[SLOT_ATTESTATION]] = (
            Tlv(0x70, f9_der) + Tlv(0x71, b"\0") + Tlv(0xFE)
        )

    def power_off(self) -> None:
        """What a PC/SC disconnect (card reset/unpower) does: security state is lost."""
        with self._lock:
            self.session = _Session()

    # ---- transport --------------------------------------------------------------------------

    def transmit(self, apdu: bytes) -> bytes:
        """One command APDU in, one response APDU (data || SW1 SW2) out."""
        with self._lock:
            try:
                data, sw = self._transmit(apdu)
            except ApduStatus as status:
                data, sw = b"", status.sw
            return data + sw.to_bytes(2, "big")

    def _transmit(self, apdu: bytes) -> tuple[bytes, int]:
        cla, ins, p1, p2, data = _parse_apdu(apdu)
        session = self.session
        if ins == 0xC0 and cla & 0x10 == 0:  # GET RESPONSE
            self.get_responses += 1
            return self._reply(session.pending_reply)
        session.pending_reply = b""
        if cla & ~0x10 != 0:
            raise ApduStatus(SW_CLA_NOT_SUPPORTED)
        header = bytes((ins, p1, p2))
        if cla & 0x10:  # command chaining: collect, answer 9000, process at the last block
            if session.chain and session.chain_header != header:
                session.chain = b""
            session.chain_header = header
            session.chain += data
            self.chained_blocks += 1
            return b"", SW_OK
        if session.chain:
            if session.chain_header == header:
                data = session.chain + data
            session.chain = b""
        self.apdu_log.append((cla, ins, p1, p2))
        just_verified = session.verified_just_now
        session.verified_just_now = False
        reply = self._dispatch(ins, p1, p2, data, just_verified)
        return self._reply(reply)

    def _reply(self, reply: bytes) -> tuple[bytes, int]:
        if len(reply) <= self.RESPONSE_CHUNK:
            return reply, SW_OK
        head, rest = reply[: self.RESPONSE_CHUNK], reply[self.RESPONSE_CHUNK :]
        self.session.pending_reply = rest
        return head, 0x6100 | (len(rest) if len(rest) < 256 else 0)

    # ---- commands ---------------------------------------------------------------------------

    def _dispatch(self, ins: int, p1: int, p2: int, data: bytes, just_verified: bool) -> bytes:
        if ins == 0xA4:
            return self._select(p1, data)
        if self.session.selected == AID_MANAGEMENT:
            if ins == 0x1D:
                return self._device_info()
            raise ApduStatus(SW_INS_NOT_SUPPORTED)
        if self.session.selected != AID_PIV:
            raise ApduStatus(SW_INS_NOT_SUPPORTED)
        handlers: dict[int, Callable[[], bytes]] = {
            0xFD: lambda: bytes(self.version),
            0xF8: lambda: self.serial.to_bytes(4, "big"),
            0xF7: lambda: self._metadata(p2),
            0x20: lambda: self._verify(p2, data),
            0x24: lambda: self._change_reference(p2, data),
            0x2C: lambda: self._reset_retry(p2, data),
            0xFB: self._reset,
            0x87: lambda: self._authenticate(p1, p2, data, just_verified),
            0x47: lambda: self._generate(p2, data),
            0xCB: lambda: self._get_data(data),
            0xDB: lambda: self._put_data(data),
            0xF9: lambda: self._attest(p1),
            0xFF: lambda: self._set_management_key(p1, p2, data),
            0xFA: lambda: self._set_pin_retries(p1, p2),
        }
        handler = handlers.get(ins)
        if handler is None:
            raise ApduStatus(SW_INS_NOT_SUPPORTED)
        return handler()

    def _select(self, p1: int, aid: bytes) -> bytes:
        if p1 != 0x04:
            raise ApduStatus(SW_INCORRECT_P1P2)
        previous = self.session.selected
        if aid.startswith(AID_PIV):
            selected = AID_PIV
            reply: bytes = Tlv(
                0x61, Tlv(0x4F, bytes.fromhex("000010000100")) + Tlv(0x79, Tlv(0x4F, AID_PIV))
            )
        elif aid.startswith(AID_MANAGEMENT):
            selected = AID_MANAGEMENT
            reply = ".".join(str(v) for v in self.version).encode()
        else:
            raise ApduStatus(SW_FILE_NOT_FOUND)
        if previous != selected:
            self.session = _Session(selected=selected)
        return reply

    def _device_info(self) -> bytes:
        capabilities = (
            CAPABILITY_OTP
            | CAPABILITY_U2F
            | CAPABILITY_FIDO2
            | CAPABILITY_OATH
            | CAPABILITY_OPENPGP
            | CAPABILITY_PIV
        )
        body = (
            Tlv(0x01, capabilities.to_bytes(2, "big"))
            + Tlv(0x02, self.serial.to_bytes(4, "big"))
            + Tlv(0x03, capabilities.to_bytes(2, "big"))
            + Tlv(0x04, bytes([self.form_factor]))
            + Tlv(0x05, bytes(self.version))
            + Tlv(0x0A, b"\0")
        )
        return bytes([len(body)]) + body

    def _metadata(self, p2: int) -> bytes:
        if p2 in (0x80, 0x81):
            counter = self.pin if p2 == 0x80 else self.puk
            return (
                Tlv(0x01, b"\xff")
                + Tlv(0x02, bytes([0, 0]))
                + Tlv(0x05, b"\x01" if counter.is_default else b"\x00")
                + Tlv(0x06, bytes([counter.total, counter.remaining]))
            )
        if p2 == SLOT_MANAGEMENT_KEY:
            return (
                Tlv(0x01, bytes([self.mgmt_key_type]))
                + Tlv(0x02, bytes([0, TOUCH_ALWAYS if self.mgmt_touch else TOUCH_NEVER]))
                + Tlv(0x05, b"\x01" if self.mgmt_key_default else b"\x00")
            )
        slot = self.slots.get(p2)
        if slot is None:
            raise ApduStatus(SW_REFERENCE_NOT_FOUND)
        return (
            Tlv(0x01, bytes([slot.algorithm]))
            + Tlv(0x02, bytes([slot.pin_policy, slot.touch_policy]))
            + Tlv(0x03, b"\x01" if slot.generated else b"\x02")
            + Tlv(0x04, self._public_key_tlv(slot.key))
        )

    @staticmethod
    def _public_key_tlv(key: SlotKey) -> bytes:
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return Tlv(0x86, key.public_key().public_bytes_raw())
        if isinstance(key, rsa.RSAPrivateKey):
            numbers = key.public_key().public_numbers()
            n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
            e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
            return Tlv(0x81, n) + Tlv(0x82, e)
        point = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return Tlv(0x86, point)

    # PIN and PUK

    def _verify(self, p2: int, data: bytes) -> bytes:
        if p2 != 0x80:
            raise ApduStatus(SW_REFERENCE_NOT_FOUND)
        if not data:  # a query: 9000 when verified, else the tries left
            if self.pin.blocked:
                raise ApduStatus(SW_AUTH_BLOCKED)
            if self.session.pin_verified:
                return b""
            raise ApduStatus(0x63C0 | self.pin.remaining)
        try:
            self.pin.check(_pin_from_block(data))
        except ApduStatus:
            self.session.pin_verified = False
            raise
        self.session.pin_verified = True
        self.session.verified_just_now = True
        return b""

    def _change_reference(self, p2: int, data: bytes) -> bytes:
        if p2 not in (0x80, 0x81) or len(data) != 16:
            raise ApduStatus(SW_INCORRECT_DATA if len(data) != 16 else SW_REFERENCE_NOT_FOUND)
        counter = self.pin if p2 == 0x80 else self.puk
        counter.check(_pin_from_block(data[:8]))
        new = _pin_from_block(data[8:])
        if len(new) < 6:
            raise ApduStatus(SW_INCORRECT_DATA)
        counter.value, counter.is_default = new, False
        return b""

    def _reset_retry(self, p2: int, data: bytes) -> bytes:
        if p2 != 0x80 or len(data) != 16:
            raise ApduStatus(SW_INCORRECT_DATA)
        self.puk.check(_pin_from_block(data[:8]))
        new = _pin_from_block(data[8:])
        if len(new) < 6:
            raise ApduStatus(SW_INCORRECT_DATA)
        self.pin.value, self.pin.is_default = new, False
        self.pin.remaining = self.pin.total
        return b""

    def _reset(self) -> bytes:
        if not (self.pin.blocked and self.puk.blocked):
            raise ApduStatus(SW_CONDITIONS_NOT_SATISFIED)
        self._factory_reset()
        self.session = _Session(selected=AID_PIV)
        return b""

    def _set_pin_retries(self, pin_tries: int, puk_tries: int) -> bytes:
        if not (self.session.mgmt_authenticated and self.session.pin_verified):
            raise ApduStatus(SW_SECURITY_NOT_SATISFIED)
        if not (1 <= pin_tries <= 255 and 1 <= puk_tries <= 255):
            raise ApduStatus(SW_INCORRECT_P1P2)
        self.pin = _Counter(DEFAULT_PIN, pin_tries, pin_tries)
        self.puk = _Counter(DEFAULT_PUK, puk_tries, puk_tries)
        return b""

    # touch

    def _require_touch(self, policy: int) -> None:
        if policy in (TOUCH_DEFAULT, TOUCH_NEVER):
            return
        now = self.clock()
        if (
            policy == TOUCH_CACHED
            and self._last_touch is not None
            and now - self._last_touch < TOUCH_CACHE_SECONDS
        ):
            return
        self.touches_requested += 1
        if not self.touch():
            raise ApduStatus(SW_CONDITIONS_NOT_SATISFIED)
        self._last_touch = now

    # management key

    def _cipher(self) -> Cipher[modes.ECB]:
        if self.mgmt_key_type == MGMT_TDES:
            return Cipher(TripleDES(self.mgmt_key), modes.ECB())  # noqa: S305  (PIV's protocol)
        return Cipher(algorithms.AES(self.mgmt_key), modes.ECB())  # noqa: S305

    def _authenticate(self, p1: int, p2: int, data: bytes, just_verified: bool) -> bytes:
        if p2 == SLOT_MANAGEMENT_KEY:
            return self._mutual_auth(p1, data)
        return self._use_key(p1, p2, data, just_verified)

    def _mutual_auth(self, p1: int, data: bytes) -> bytes:
        if p1 != self.mgmt_key_type:
            raise ApduStatus(SW_INCORRECT_P1P2)
        try:
            inner = Tlv.parse_dict(Tlv.unpack(0x7C, data))
        except ValueError:
            raise ApduStatus(SW_INCORRECT_DATA) from None
        block = 8 if self.mgmt_key_type == MGMT_TDES else 16
        session = self.session
        if 0x80 in inner and not inner[0x80] and 0x81 not in inner:
            session.mgmt_authenticated = False
            self._require_touch(TOUCH_ALWAYS if self.mgmt_touch else TOUCH_NEVER)
            session.witness = os.urandom(block)
            encryptor = self._cipher().encryptor()
            return Tlv(0x7C, Tlv(0x80, encryptor.update(session.witness) + encryptor.finalize()))
        if 0x80 in inner and 0x81 in inner:
            witness, session.witness = session.witness, None
            if witness is None or inner[0x80] != witness or len(inner[0x81]) != block:
                session.mgmt_authenticated = False
                raise ApduStatus(SW_SECURITY_NOT_SATISFIED)
            encryptor = self._cipher().encryptor()
            session.mgmt_authenticated = True
            return Tlv(0x7C, Tlv(0x82, encryptor.update(inner[0x81]) + encryptor.finalize()))
        raise ApduStatus(SW_INCORRECT_DATA)

    def _require_mgmt(self) -> None:
        if not self.session.mgmt_authenticated:
            raise ApduStatus(SW_SECURITY_NOT_SATISFIED)

    def _set_management_key(self, p1: int, p2: int, data: bytes) -> bytes:
        self._require_mgmt()
        if p1 != 0xFF or p2 not in (0xFE, 0xFF) or len(data) < 3:
            raise ApduStatus(SW_INCORRECT_P1P2)
        key_type, slot, length = data[0], data[1], data[2]
        key = data[3:]
        if (
            slot != SLOT_MANAGEMENT_KEY
            or _MGMT_KEY_LEN.get(key_type) != length
            or len(key) != length
        ):
            raise ApduStatus(SW_INCORRECT_DATA)
        self.mgmt_key_type, self.mgmt_key, self.mgmt_touch = key_type, key, p2 == 0xFE
        self.mgmt_key_default = key == DEFAULT_MANAGEMENT_KEY
        return b""

    # keys

    def _generate(self, slot_id: int, data: bytes) -> bytes:
        self._require_mgmt()
        if slot_id not in _KEY_SLOTS or slot_id == SLOT_ATTESTATION:
            raise ApduStatus(SW_INCORRECT_P1P2)
        try:
            params = Tlv.parse_dict(Tlv.unpack(0xAC, data))
        except ValueError:
            raise ApduStatus(SW_INCORRECT_DATA) from None
        algorithm = params.get(0x80, b"\0")[0]
        key: SlotKey
        if algorithm == ALG_ED25519 and self.version >= (5, 7, 0):
            key = ed25519.Ed25519PrivateKey.generate()
        elif algorithm == ALG_ECCP256:
            key = ec.generate_private_key(ec.SECP256R1())
        elif algorithm == ALG_ECCP384:
            key = ec.generate_private_key(ec.SECP384R1())
        elif algorithm == ALG_RSA2048:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            raise ApduStatus(SW_INCORRECT_P1P2)
        pin_policy = params.get(0xAA, b"\0")[0]
        touch_policy = params.get(0xAB, b"\0")[0]
        if pin_policy == PIN_POLICY_DEFAULT:
            pin_policy = {SLOT_SIGNATURE: PIN_POLICY_ALWAYS, SLOT_CARD_AUTH: PIN_POLICY_NEVER}.get(
                slot_id, PIN_POLICY_ONCE
            )
        if touch_policy == TOUCH_DEFAULT:
            touch_policy = TOUCH_NEVER
        if pin_policy not in (1, 2, 3) or touch_policy not in (1, 2, 3):
            raise ApduStatus(SW_INCORRECT_DATA)
        self.slots[slot_id] = _Slot(key, algorithm, pin_policy, touch_policy, generated=True)
        return Tlv(0x7F49, self._public_key_tlv(key))

    def _use_key(self, algorithm: int, slot_id: int, data: bytes, just_verified: bool) -> bytes:
        slot = self.slots.get(slot_id)
        if slot is None or slot_id == SLOT_ATTESTATION or slot.algorithm != algorithm:
            raise ApduStatus(SW_INCORRECT_DATA)
        try:
            inner = Tlv.parse_dict(Tlv.unpack(0x7C, data))
        except ValueError:
            raise ApduStatus(SW_INCORRECT_DATA) from None
        if 0x81 not in inner:  # ECDH (0x85) and the rest are not needed by the tests
            raise ApduStatus(SW_INCORRECT_DATA)
        if slot.pin_policy == PIN_POLICY_ALWAYS and not just_verified:
            raise ApduStatus(SW_SECURITY_NOT_SATISFIED)
        if slot.pin_policy == PIN_POLICY_ONCE and not self.session.pin_verified:
            raise ApduStatus(SW_SECURITY_NOT_SATISFIED)
        self._require_touch(slot.touch_policy)
        message = inner[0x81]
        key = slot.key
        if isinstance(key, ed25519.Ed25519PrivateKey):  # PureEdDSA over the whole message
            signature = key.sign(message)
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            size = (key.curve.key_size + 7) // 8
            if not 0 < len(message) <= size:
                raise ApduStatus(SW_INCORRECT_DATA)
            # A shorter input is the same integer left-padded (yubikit sends a SHA-256 digest
            # unpadded to P-384 keys).
            message = message.rjust(size, b"\0")
            digest = hashes.SHA256() if size == 32 else hashes.SHA384()
            signature = key.sign(message, ec.ECDSA(Prehashed(digest)))
        else:
            numbers = key.private_numbers()
            n = numbers.public_numbers.n
            size = (n.bit_length() + 7) // 8
            if len(message) != size or int.from_bytes(message, "big") >= n:
                raise ApduStatus(SW_INCORRECT_DATA)
            signature = pow(int.from_bytes(message, "big"), numbers.d, n).to_bytes(size, "big")
        self.signatures += 1
        return Tlv(0x7C, Tlv(0x82, signature))

    def _attest(self, slot_id: int) -> bytes:
        slot = self.slots.get(slot_id)
        if slot is None or slot_id == SLOT_ATTESTATION:
            raise ApduStatus(SW_REFERENCE_NOT_FOUND)
        if not slot.generated:
            raise ApduStatus(SW_INCORRECT_DATA)
        f9 = self.attestation_ca.f9_cert
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(
                            NameOID.COMMON_NAME, f"YubiKey PIV Attestation {slot_id:02x}"
                        )
                    ]
                )
            )
            .issuer_name(f9.subject)
            .public_key(slot.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(f9.not_valid_before_utc)
            .not_valid_after(f9.not_valid_after_utc)
            .add_extension(x509.UnrecognizedExtension(OID_FIRMWARE, bytes(self.version)), False)
            .add_extension(x509.UnrecognizedExtension(OID_SERIAL, _der_integer(self.serial)), False)
            .add_extension(
                x509.UnrecognizedExtension(OID_POLICY, bytes([slot.pin_policy, slot.touch_policy])),
                False,
            )
            .add_extension(
                x509.UnrecognizedExtension(OID_FORM_FACTOR, bytes([self.form_factor])), False
            )
            .sign(self.attestation_ca.f9_key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.DER)

    # data objects

    @staticmethod
    def _object_id(data: bytes) -> tuple[int, bytes]:
        try:
            tlvs = Tlv.parse_list(data)
        except ValueError:
            raise ApduStatus(SW_INCORRECT_DATA) from None
        if not tlvs or tlvs[0].tag != 0x5C or not 1 <= len(tlvs[0].value) <= 3:
            raise ApduStatus(SW_INCORRECT_DATA)
        rest = b"".join(bytes(t) for t in tlvs[1:])
        return int.from_bytes(tlvs[0].value, "big"), rest

    def _get_data(self, data: bytes) -> bytes:
        object_id, _ = self._object_id(data)
        if object_id == OBJECT_DISCOVERY:
            return DISCOVERY
        if object_id == OBJECT_PRINTED and not self.session.pin_verified:
            raise ApduStatus(SW_SECURITY_NOT_SATISFIED)
        value = self.objects.get(object_id)
        if value is None:
            raise ApduStatus(SW_FILE_NOT_FOUND)
        return Tlv(0x53, value)

    def _put_data(self, data: bytes) -> bytes:
        self._require_mgmt()
        object_id, rest = self._object_id(data)
        try:
            value = Tlv.unpack(0x53, rest)
        except ValueError:
            raise ApduStatus(SW_INCORRECT_DATA) from None
        if value:
            self.objects[object_id] = value
        else:
            self.objects.pop(object_id, None)
        return b""


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return bytes([0x02, len(body)]) + body


@dataclass
class SoftPivConnection(SmartCardConnection):
    """A yubikit ``SmartCardConnection`` onto a :class:`SoftPivCard` (transport USB).

    Closing it powers the card off, as a PC/SC disconnect does: PIN and management-key
    authentication do not survive from one connection to the next.
    """

    card: SoftPivCard
    closed: bool = field(default=False, init=False)

    @property
    def transport(self) -> TRANSPORT:
        return TRANSPORT.USB

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        if self.closed:
            raise OSError("connection closed")
        reply = self.card.transmit(bytes(apdu))
        return reply[:-2], int.from_bytes(reply[-2:], "big")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.card.power_off()
