"""Who may have signed a keyless bundle: cosign's four identity flags as one policy.

``--certificate-identity`` / ``--certificate-identity-regexp`` name the signer (a certificate
SAN: e-mail, URI or Sigstore other name) and ``--certificate-oidc-issuer`` /
``--certificate-oidc-issuer-regexp`` the OIDC issuer that vouched for it (Fulcio extension
1.3.6.1.4.1.57264.1.8, or the older .1.1). Exactly one of each pair is required: an empty policy
would accept anyone, so it is refused (fail closed).

Regular expressions match the way cosign matches them: cosign compiles the pattern with Go's
``regexp`` and calls ``MatchString``, which finds the pattern *anywhere* in the value (it is not
anchored). Python's :func:`re.search` has the same semantics, so ``github\\.com/acme/`` accepts
``https://github.com/acme/x`` and also ``https://evil.example/github.com/acme/``; write
``^...$`` to pin the whole value, as cosign's documentation advises. Go's RE2 syntax and
Python's agree on everything an identity pattern needs (classes, anchors, alternation,
repetition); a pattern Python cannot compile is a usage error naming the flag.

Hand-written rather than sigstore-python's ``Identity`` policy because that one has no regexp
form; it reads the certificate with ``cryptography`` only, and plugs into sigstore's ``Verifier``
(which calls :meth:`CertificatePolicy.verify` after the chain, SCT and log checks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat import asn1
from sigstore.errors import VerificationError as SigstoreVerificationError

from airseal.errors import UsageError

_OIDC_ISSUER_OID: Final = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_OIDC_ISSUER_V2_OID: Final = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_SIGSTORE_OTHERNAME_OID: Final = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
MAX_PATTERN_CHARS: Final = 1024

__all__ = ["CertificatePolicy", "PolicyRejected", "certificate_identities", "certificate_issuer"]


class PolicyRejected(SigstoreVerificationError):
    """The certificate is genuine but names another signer or issuer (raised inside sigstore's
    ``Verifier``, which turns it into its own failure; callers map it to IdentityMismatch)."""


def certificate_identities(cert: x509.Certificate) -> list[str]:
    """Every identity a Fulcio certificate names: e-mail and URI SANs, Sigstore other names."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = list(san.get_values_for_type(x509.RFC822Name))
    names += san.get_values_for_type(x509.UniformResourceIdentifier)
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == _SIGSTORE_OTHERNAME_OID:
            try:
                names.append(asn1.decode_der(str, other.value))
            except ValueError:
                names.append(other.value.decode("utf-8", "replace"))
    return sorted(names)


def certificate_issuer(cert: x509.Certificate) -> str | None:
    """The OIDC issuer a Fulcio certificate records (the v2 DER extension first)."""
    for oid in (_OIDC_ISSUER_V2_OID, _OIDC_ISSUER_OID):
        try:
            value = cert.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            continue
        if not isinstance(value, x509.UnrecognizedExtension):
            continue
        try:
            if oid == _OIDC_ISSUER_OID:
                return value.value.decode("utf-8")
            return asn1.decode_der(str, value.value)
        except (ValueError, UnicodeDecodeError):
            continue
    return None


def _compile(pattern: str, flag: str) -> re.Pattern[str]:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise UsageError(f"{flag}: the pattern is longer than {MAX_PATTERN_CHARS} characters")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(
            f"{flag} {pattern!r} is not a valid regular expression ({exc})",
            hint="use Go/RE2-style syntax, e.g. '^https://github\\.com/acme/.*@refs/tags/v'",
        ) from None


@dataclass(frozen=True)
class CertificatePolicy:
    """One identity rule and one issuer rule, each exact or a regular expression."""

    identity: str | None = None
    identity_regexp: str | None = None
    issuer: str | None = None
    issuer_regexp: str | None = None

    def __post_init__(self) -> None:
        if (self.identity is None) == (self.identity_regexp is None):
            raise UsageError(
                "give exactly one of --certificate-identity or --certificate-identity-regexp",
                hint="a keyless signature is trusted for a signer, so the signer must be named",
            )
        if (self.issuer is None) == (self.issuer_regexp is None):
            raise UsageError(
                "give exactly one of --certificate-oidc-issuer or "
                "--certificate-oidc-issuer-regexp",
                hint="e.g. --certificate-oidc-issuer https://token.actions.githubusercontent.com",
            )
        for value, flag in (
            (self.identity, "--certificate-identity"),
            (self.issuer, "--certificate-oidc-issuer"),
        ):
            if value is not None and not value:
                raise UsageError(f"{flag} is empty")
        if self.identity_regexp is not None:
            _compile(self.identity_regexp, "--certificate-identity-regexp")
        if self.issuer_regexp is not None:
            _compile(self.issuer_regexp, "--certificate-oidc-issuer-regexp")

    @classmethod
    def from_options(
        cls,
        identity: str | None,
        issuer: str | None,
        identity_regexp: str | None = None,
        issuer_regexp: str | None = None,
    ) -> CertificatePolicy | None:
        """The policy the four flags describe, or ``None`` when none was given."""
        if all(v is None for v in (identity, issuer, identity_regexp, issuer_regexp)):
            return None
        return cls(identity, identity_regexp, issuer, issuer_regexp)

    def describe(self) -> str:
        who = (
            repr(self.identity)
            if self.identity is not None
            else f"matching /{self.identity_regexp}/"
        )
        where = repr(self.issuer) if self.issuer is not None else f"matching /{self.issuer_regexp}/"
        return f"identity {who} from issuer {where}"

    def matches_identity(self, names: list[str]) -> str | None:
        """The certificate identity the policy accepts, or ``None``."""
        if self.identity is not None:
            return self.identity if self.identity in names else None
        assert self.identity_regexp is not None
        pattern = re.compile(self.identity_regexp)
        return next((name for name in names if pattern.search(name)), None)

    def matches_issuer(self, issuer: str | None) -> bool:
        if issuer is None:
            return False
        if self.issuer is not None:
            return issuer == self.issuer
        assert self.issuer_regexp is not None
        return re.search(self.issuer_regexp, issuer) is not None

    def verify(self, cert: x509.Certificate) -> None:
        """sigstore's ``VerificationPolicy`` protocol: raise unless the certificate matches."""
        names = certificate_identities(cert)
        issuer = certificate_issuer(cert)
        if self.matches_identity(names) is None or not self.matches_issuer(issuer):
            raise PolicyRejected(
                f"expected {self.describe()}; the certificate names {names} from issuer {issuer!r}"
            )

    def accepted(self, cert: x509.Certificate) -> tuple[str, str]:
        """The (identity, issuer) pair that matched; call only after :meth:`verify` passed."""
        identity = self.matches_identity(certificate_identities(cert))
        issuer = certificate_issuer(cert)
        assert identity is not None and issuer is not None
        return identity, issuer
