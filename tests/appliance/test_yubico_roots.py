"""The Yubico PIV attestation certificates we ship: exactly the pinned ones, chaining as documented.

The expected fingerprints are the table of ../shared/interop/yubico/README.md, written out here
independently of the constants in :mod:`airseal.appliance.piv_attestation`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import replace
from importlib import resources

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airseal.appliance.errors import AttestationInvalid
from airseal.appliance.piv_attestation import (
    YUBICO_CERTIFICATES,
    common_name,
    load_pinned,
    verify_attestation,
    yubico_trust_anchors,
)

EXPECTED = {
    "yubico-piv-root-ca-263751-2016.pem": (
        "Yubico PIV Root CA Serial 263751",
        "7E996A28E3055223733C9AEC897900EDA9B746E3E15D419556AC6A1179879A50",
    ),
    "yubico-piv-root-ca-263751-2018.pem": (
        "Yubico PIV Root CA Serial 263751",
        "63ECE914E54DD87915F34033C85AF4C0696BA1512F8ADD66CED738331207B546",
    ),
    "yubico-attestation-root-1.pem": (
        "Yubico Attestation Root 1",
        "62760C6A6EF91679F454C8902B80FD009825B3F25DA90F1FBACE2EC6586CD5A8",
    ),
    "yubico-attestation-intermediate-a-1.pem": (
        "Yubico Attestation Intermediate A 1",
        "4698A1D3389C3EC60016C216250F1D0439922832D65142327436376DC2942B55",
    ),
    "yubico-attestation-intermediate-b-1.pem": (
        "Yubico Attestation Intermediate B 1",
        "D4CC3F456FDAF4E7812A21AAB1DFE9D8E27D24E2FD2D6F21C9940109F0DAA754",
    ),
    "yubico-piv-attestation-a-1.pem": (
        "Yubico PIV Attestation A 1",
        "6DE693F05376F5D8CA29069261E1C8626C75D503BD2EDBFD75354CAD1F722870",
    ),
    "yubico-piv-attestation-b-1.pem": (
        "Yubico PIV Attestation B 1",
        "2D55B7998F4E42569D6D8FA382B6DC77D1DACF07358B19701163892922B17052",
    ),
    "yubico-piv-attestation-b2-1.pem": (
        "Yubico PIV Attestation B2 1",
        "0C90B7D184A36EDF50A35F9BE935F0C5689BFDCFE5BDD073366CAFB49061A440",
    ),
}

# issued-by relations as Yubico documents them (child -> issuer file)
ISSUERS = {
    "yubico-piv-root-ca-263751-2016.pem": "yubico-piv-root-ca-263751-2016.pem",
    "yubico-piv-root-ca-263751-2018.pem": "yubico-piv-root-ca-263751-2018.pem",
    "yubico-attestation-root-1.pem": "yubico-attestation-root-1.pem",
    "yubico-attestation-intermediate-a-1.pem": "yubico-attestation-root-1.pem",
    "yubico-attestation-intermediate-b-1.pem": "yubico-attestation-root-1.pem",
    "yubico-piv-attestation-a-1.pem": "yubico-attestation-intermediate-a-1.pem",
    "yubico-piv-attestation-b-1.pem": "yubico-attestation-intermediate-b-1.pem",
    "yubico-piv-attestation-b2-1.pem": "yubico-attestation-intermediate-b-1.pem",
}

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def _load(name: str) -> x509.Certificate:
    data = resources.files("airseal.appliance.data.yubico").joinpath(name).read_bytes()
    return x509.load_pem_x509_certificate(data)


def _der_sha256(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def test_exactly_the_documented_certificates_ship() -> None:
    shipped = {
        entry.name
        for entry in resources.files("airseal.appliance.data.yubico").iterdir()
        if entry.name.endswith(".pem")
    }
    assert shipped == set(EXPECTED)
    assert {p.file for p in YUBICO_CERTIFICATES} == set(EXPECTED)
    readme = resources.files("airseal.appliance.data.yubico").joinpath("README.md").read_text()
    for name in EXPECTED:
        assert name in readme


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fingerprint_and_subject_match_the_table(name: str) -> None:
    subject, sha256 = EXPECTED[name]
    certificate = _load(name)
    assert _der_sha256(certificate) == sha256.lower()
    assert common_name(certificate.subject) == subject
    pinned = next(p for p in YUBICO_CERTIFICATES if p.file == name)
    assert (pinned.common_name, pinned.sha256) == (subject, sha256.lower())


@pytest.mark.parametrize("name", sorted(ISSUERS))
def test_certificates_chain_as_documented(name: str) -> None:
    certificate, issuer = _load(name), _load(ISSUERS[name])
    assert certificate.issuer == issuer.subject
    certificate.verify_directly_issued_by(issuer)
    assert certificate.not_valid_before_utc <= NOW <= certificate.not_valid_after_utc
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca


def test_both_issues_of_the_legacy_root_share_one_key() -> None:
    old, new = (_load(f"yubico-piv-root-ca-263751-{year}.pem") for year in (2016, 2018))
    assert old.public_key() == new.public_key()
    assert old.serial_number == new.serial_number == 263751
    assert _der_sha256(old) != _der_sha256(new)
    path_lengths = [
        c.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
        for c in (old, new)
    ]
    assert path_lengths == [0, 1]  # the 2018 re-issue: only the path length changed
    old.verify_directly_issued_by(new)  # same key: either issue verifies what the other signed


def test_trust_anchors_hold_three_roots_and_five_intermediates() -> None:
    anchors = yubico_trust_anchors()
    assert sorted(common_name(c.subject) for c in anchors.roots) == [
        "Yubico Attestation Root 1",
        "Yubico PIV Root CA Serial 263751",
        "Yubico PIV Root CA Serial 263751",
    ]
    assert len(anchors.intermediates) == 5
    assert all(_der_sha256(c) in {p.sha256 for p in YUBICO_CERTIFICATES} for c in anchors.roots)


def test_a_certificate_that_does_not_match_its_pin_fails_closed() -> None:
    pinned = YUBICO_CERTIFICATES[0]
    with pytest.raises(AttestationInvalid, match="pinned"):
        load_pinned(replace(pinned, sha256="00" * 32))


def test_a_forged_device_certificate_naming_yubicos_issuer_is_rejected() -> None:
    """An F9 certificate that claims Yubico's PIV intermediate but is signed by another key."""

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    forger = ec.generate_private_key(ec.SECP256R1())
    device_key = ec.generate_private_key(ec.SECP256R1())
    device = (
        x509.CertificateBuilder()
        .subject_name(name("Yubico PIV Attestation"))
        .issuer_name(name("Yubico PIV Attestation B 1"))
        .public_key(device_key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2090, 1, 1, tzinfo=dt.UTC))
        .sign(forger, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("YubiKey PIV Attestation 9c"))
        .issuer_name(device.subject)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(2)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2090, 1, 1, tzinfo=dt.UTC))
        .sign(device_key, hashes.SHA256())
    )
    with pytest.raises(AttestationInvalid, match="does not chain to Yubico PIV attestation roots"):
        verify_attestation(leaf, device, now=NOW)
