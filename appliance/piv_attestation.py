"""YubiKey PIV attestation: prove that a slot's key was generated on a genuine YubiKey.

A YubiKey attests a key it generated with a certificate for that key (``ATTEST``), signed by the
device's attestation key in slot F9, whose certificate chains to Yubico's PKI. Two generations
(see ``appliance/data/yubico/README.md``):

- firmware before 5.7.4: F9 -> ``Yubico PIV Root CA Serial 263751`` (two issues of that root with
  one key; both are anchors);
- firmware 5.7.4 and later: F9 -> ``Yubico PIV Attestation {A,B,B2} 1`` -> ``Yubico Attestation
  Intermediate {A,B} 1`` -> ``Yubico Attestation Root 1`` (the intermediates ship with us).

Pure logic: it takes certificates and trust anchors and returns what was proven or raises
:class:`airseal.appliance.errors.AttestationInvalid`. Production uses :func:`yubico_trust_anchors`
(the
shipped certificates, each pinned by SHA-256); tests pass their own test CA.

What is checked: every signature from the attestation certificate up to an anchor, names chaining,
every validity window at ``now``, and optionally that the attested key and serial are the expected
ones. What is deliberately not checked: basic constraints and path lengths (Yubico's pre-2018 root
says ``pathlen:0`` above an F9 intermediate, and early F9 certificates carry no CA flag; both are
genuine), and revocation (Yubico publishes none for attestation).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass
from importlib import resources

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from yubikit.management import FORM_FACTOR

from airseal.appliance.errors import AttestationInvalid

YUBICO_ARC = "1.3.6.1.4.1.41482.3"
OID_FIRMWARE = x509.ObjectIdentifier(f"{YUBICO_ARC}.3")
OID_SERIAL = x509.ObjectIdentifier(f"{YUBICO_ARC}.7")
OID_POLICY = x509.ObjectIdentifier(f"{YUBICO_ARC}.8")
OID_FORM_FACTOR = x509.ObjectIdentifier(f"{YUBICO_ARC}.9")

MAX_CERTIFICATE_BYTES = 16 * 1024
MAX_CHAIN_LENGTH = 6

PIN_POLICIES = {1: "never", 2: "once", 3: "always", 4: "match-once", 5: "match-always"}
TOUCH_POLICIES = {1: "never", 2: "always", 3: "cached"}


@dataclass(frozen=True)
class PinnedCertificate:
    """One shipped Yubico certificate: its file, what it is, and the SHA-256 of its DER."""

    file: str
    common_name: str
    role: str  # "root" or "intermediate"
    sha256: str


YUBICO_CERTIFICATES: tuple[PinnedCertificate, ...] = (
    PinnedCertificate(
        "yubico-piv-root-ca-263751-2016.pem",
        "Yubico PIV Root CA Serial 263751",
        "root",
        "7e996a28e3055223733c9aec897900eda9b746e3e15d419556ac6a1179879a50",
    ),
    PinnedCertificate(
        "yubico-piv-root-ca-263751-2018.pem",
        "Yubico PIV Root CA Serial 263751",
        "root",
        "63ece914e54dd87915f34033c85af4c0696ba1512f8add66ced738331207b546",
    ),
    PinnedCertificate(
        "yubico-attestation-root-1.pem",
        "Yubico Attestation Root 1",
        "root",
        "62760c6a6ef91679f454c8902b80fd009825b3f25da90f1fbace2ec6586cd5a8",
    ),
    PinnedCertificate(
        "yubico-attestation-intermediate-a-1.pem",
        "Yubico Attestation Intermediate A 1",
        "intermediate",
        "4698a1d3389c3ec60016c216250f1d0439922832d65142327436376dc2942b55",
    ),
    PinnedCertificate(
        "yubico-attestation-intermediate-b-1.pem",
        "Yubico Attestation Intermediate B 1",
        "intermediate",
        "d4cc3f456fdaf4e7812a21aab1dfe9d8e27d24e2fd2d6f21c9940109f0daa754",
    ),
    PinnedCertificate(
        "yubico-piv-attestation-a-1.pem",
        "Yubico PIV Attestation A 1",
        "intermediate",
        "6de693f05376f5d8ca29069261e1c8626c75d503bd2edbfd75354cad1f722870",
    ),
    PinnedCertificate(
        "yubico-piv-attestation-b-1.pem",
        "Yubico PIV Attestation B 1",
        "intermediate",
        "2d55b7998f4e42569d6d8fa382b6dc77d1dacf07358b19701163892922b17052",
    ),
    PinnedCertificate(
        "yubico-piv-attestation-b2-1.pem",
        "Yubico PIV Attestation B2 1",
        "intermediate",
        "0c90b7d184a36edf50a35f9be935f0c5689bfdcfe5bdd073366cafb49061a440",
    ),
)

_GENERATION_BY_ROOT = {
    "7e996a28e3055223733c9aec897900eda9b746e3e15d419556ac6a1179879a50": (
        "Yubico PIV Root CA Serial 263751 (pre-2018 issue; firmware before 5.7.4)"
    ),
    "63ece914e54dd87915f34033c85af4c0696ba1512f8add66ced738331207b546": (
        "Yubico PIV Root CA Serial 263751 (firmware before 5.7.4)"
    ),
    "62760c6a6ef91679f454c8902b80fd009825b3f25da90f1fbace2ec6586cd5a8": (
        "Yubico Attestation Root 1 (firmware 5.7.4 and later)"
    ),
}


def certificate_sha256(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


@dataclass(frozen=True)
class TrustAnchors:
    """Roots an attestation must reach, and intermediates that may be used on the way.

    Intermediates are never trusted by themselves: a chain must end at one of ``roots``.
    """

    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    name: str = "custom trust anchors"

    def __post_init__(self) -> None:
        if not self.roots:
            raise ValueError("trust anchors need at least one root (an empty set trusts nothing)")


def load_pinned(pinned: PinnedCertificate) -> x509.Certificate:
    """Read one shipped certificate and check its pinned fingerprint (fail closed)."""
    data = resources.files("airseal.appliance.data.yubico").joinpath(pinned.file).read_bytes()
    certificate = x509.load_pem_x509_certificate(data)
    actual = certificate_sha256(certificate)
    if actual != pinned.sha256:
        raise AttestationInvalid(
            f"shipped certificate has SHA-256 {actual}, pinned {pinned.sha256}",
            subject=pinned.file,
            hint="the installation was modified; reinstall Airseal from a verified package",
        )
    return certificate


@functools.cache
def yubico_trust_anchors() -> TrustAnchors:
    """Yubico's PIV attestation roots (both generations) and intermediates, as shipped."""
    roots = tuple(load_pinned(p) for p in YUBICO_CERTIFICATES if p.role == "root")
    intermediates = tuple(load_pinned(p) for p in YUBICO_CERTIFICATES if p.role == "intermediate")
    return TrustAnchors(roots, intermediates, name="Yubico PIV attestation roots")


@dataclass(frozen=True)
class AttestedKey:
    """What a YubiKey attestation certificate states about a key (from Yubico's extensions)."""

    slot: str | None
    public_key_pem: str
    serial: int | None
    firmware: str | None
    pin_policy: str | None
    touch_policy: str | None
    form_factor: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "slot": self.slot,
            "serial": self.serial,
            "firmware": self.firmware,
            "pin_policy": self.pin_policy,
            "touch_policy": self.touch_policy,
            "form_factor": self.form_factor,
            "public_key_pem": self.public_key_pem,
        }


@dataclass(frozen=True)
class VerifiedAttestation:
    """An attestation that chained to a trust anchor: ``chain`` runs from the attestation
    certificate through F9 and any intermediates to the root."""

    key: AttestedKey
    chain: tuple[x509.Certificate, ...]
    root: str

    def chain_pem(self) -> str:
        return "".join(
            c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in self.chain
        )


def _extension_value(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        extension = certificate.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None
    value = extension.value
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


def _serial(raw: bytes) -> int | None:
    # YubiKey 5 writes a DER INTEGER; earlier firmware wrote the bare big-endian bytes.
    if len(raw) >= 3 and raw[0] == 0x02 and raw[1] == len(raw) - 2:
        return int.from_bytes(raw[2:], "big")
    return int.from_bytes(raw, "big") if 0 < len(raw) <= 8 else None


def _form_factor(raw: bytes) -> str:
    code = raw[0]
    text = str(FORM_FACTOR.from_code(code))
    flags = [label for bit, label in ((0x80, "FIPS"), (0x40, "Security Key")) if code & bit]
    return f"{text} ({', '.join(flags)})" if flags else text


def parse_attestation(certificate: x509.Certificate) -> AttestedKey:
    """Read the attested key and Yubico's extensions (unverified: see verify_attestation)."""
    subject = common_name(certificate.subject)
    prefix = "YubiKey PIV Attestation "
    slot = subject[len(prefix) :].lower() if subject.startswith(prefix) else None
    firmware = _extension_value(certificate, OID_FIRMWARE)
    serial = _extension_value(certificate, OID_SERIAL)
    policy = _extension_value(certificate, OID_POLICY)
    form_factor = _extension_value(certificate, OID_FORM_FACTOR)
    return AttestedKey(
        slot=slot,
        public_key_pem=certificate.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii"),
        serial=_serial(serial) if serial else None,
        firmware=".".join(str(b) for b in firmware) if firmware and len(firmware) == 3 else None,
        pin_policy=PIN_POLICIES.get(policy[0], f"unknown ({policy[0]})") if policy else None,
        touch_policy=(
            TOUCH_POLICIES.get(policy[1], f"unknown ({policy[1]})")
            if policy and len(policy) > 1
            else None
        ),
        form_factor=_form_factor(form_factor) if form_factor else None,
    )


def load_certificate(data: bytes | x509.Certificate, *, what: str) -> x509.Certificate:
    """A certificate from DER or PEM bytes (bounded), or as given."""
    if isinstance(data, x509.Certificate):
        return data
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise AttestationInvalid(f"{what} is over {MAX_CERTIFICATE_BYTES} bytes", subject=what)
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise AttestationInvalid(
            f"{what} is not an X.509 certificate ({exc})", subject=what
        ) from None


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    if child.issuer != issuer.subject:
        return False
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _check_validity(certificate: x509.Certificate, now: dt.datetime) -> None:
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise AttestationInvalid(
            f"{common_name(certificate.subject)} is valid from "
            f"{certificate.not_valid_before_utc:%Y-%m-%d} to "
            f"{certificate.not_valid_after_utc:%Y-%m-%d}, not at {now:%Y-%m-%d}",
            subject="attestation chain",
        )


def _build_chain(
    leaf: x509.Certificate, device: x509.Certificate, anchors: TrustAnchors
) -> list[x509.Certificate]:
    """leaf, F9, intermediates..., root: each signed by the next, ending at one of the roots."""
    chain = [leaf, device]
    while len(chain) <= MAX_CHAIN_LENGTH:
        current = chain[-1]
        root = next((r for r in anchors.roots if _issued_by(current, r)), None)
        if root is not None:
            return [*chain, root]
        issuer = next(
            (c for c in anchors.intermediates if c not in chain and _issued_by(current, c)), None
        )
        if issuer is None:
            raise AttestationInvalid(
                f"{common_name(current.subject)} (issued by {common_name(current.issuer)}) "
                f"does not chain to {anchors.name}: "
                + ", ".join(sorted({common_name(r.subject) for r in anchors.roots})),
                subject="attestation chain",
            )
        chain.append(issuer)
    raise AttestationInvalid("the chain is too long", subject="attestation chain")


def verify_attestation(
    attestation: bytes | x509.Certificate,
    device_certificate: bytes | x509.Certificate,
    *,
    now: dt.datetime,
    anchors: TrustAnchors | None = None,
    expected_public_key_pem: str | None = None,
    expected_serial: int | None = None,
) -> VerifiedAttestation:
    """Verify a slot's attestation certificate and the device's F9 certificate to ``anchors``
    (default: Yubico's shipped roots). Returns what was proven, or raises
    :class:`AttestationInvalid` naming the first link that failed."""
    anchors = anchors or yubico_trust_anchors()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    leaf = load_certificate(attestation, what="attestation certificate")
    device = load_certificate(device_certificate, what="attestation key certificate (slot F9)")
    if not _issued_by(leaf, device):
        raise AttestationInvalid(
            f"{common_name(leaf.subject)} is not signed by the YubiKey's attestation key "
            f"({common_name(device.subject)}, slot F9)",
            subject="attestation chain",
        )
    chain = _build_chain(leaf, device, anchors)
    for certificate in chain:
        _check_validity(certificate, now)
    key = parse_attestation(leaf)
    if expected_public_key_pem is not None and _spki(key.public_key_pem) != _spki(
        expected_public_key_pem
    ):
        raise AttestationInvalid(
            "the attested key is not the key in the slot (was the key replaced or imported?)",
            subject="attestation certificate",
        )
    if expected_serial is not None and key.serial != expected_serial:
        raise AttestationInvalid(
            f"the attestation names YubiKey serial {key.serial}, expected {expected_serial}",
            subject="attestation certificate",
        )
    root = chain[-1]
    fingerprint = certificate_sha256(root)
    label = _GENERATION_BY_ROOT.get(fingerprint, f"{common_name(root.subject)} ({anchors.name})")
    return VerifiedAttestation(key, tuple(chain), label)


def _spki(pem: str) -> bytes:
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True)
class PivAttestation:
    """A slot's attestation certificate and the device's attestation (F9) certificate."""

    slot: str
    serial: int | None
    attestation: x509.Certificate
    device_certificate: x509.Certificate
    slot_public_key_pem: str

    def verify(
        self, *, now: dt.datetime, anchors: TrustAnchors | None = None
    ) -> VerifiedAttestation:
        """Chain to ``anchors`` (default: Yubico's shipped roots) and check it is this key."""
        return verify_attestation(
            self.attestation,
            self.device_certificate,
            now=now,
            anchors=anchors,
            expected_public_key_pem=self.slot_public_key_pem,
            expected_serial=self.serial,
        )

    def chain_pem(self) -> str:
        return "".join(
            c.public_bytes(serialization.Encoding.PEM).decode("ascii")
            for c in (self.attestation, self.device_certificate)
        )

