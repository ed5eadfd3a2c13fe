"""Typed errors for everything `trustroot` decides.

Each error names the *subject* (usually a file) and the *check* that failed, and carries a hint
saying what the user can do (the shape of :class:`airseal.errors.AirsealError`, the root of every
Airseal error). CLIs print ``str(error)`` without a traceback and map the class to an exit code in
one place. Messages never contain secrets: callers must not put passwords or PINs into the subject
or the detail.
"""

from __future__ import annotations

from airseal.errors import AirsealError


class TrustrootError(AirsealError):
    """Base of every error raised by this package (the shape is :class:`AirsealError`'s)."""


class VerificationError(TrustrootError):
    """A signature, digest or bundle did not verify. Fail closed: nothing may be used."""

    title = "Verification failed"


class DigestMismatch(VerificationError):
    title = "Digest mismatch"
    check = "sha256"
    hint = "the file was changed or damaged after signing; obtain a fresh copy"


class InvalidSignature(VerificationError):
    title = "Invalid signature"
    check = "signature"
    hint = "the signature does not match this content and key; check the file, signature and key"


class WrongKey(VerificationError):
    title = "Wrong key"
    check = "key"
    hint = "the bundle names a different signing key; verify with the key that signed it"


class MalformedBundle(VerificationError):
    title = "Malformed bundle"
    check = "bundle"
    hint = "the bundle is truncated or not a Sigstore bundle v0.1-v0.3; obtain it again"


class MalformedSignature(VerificationError):
    title = "Malformed signature"
    check = "signature"
    hint = "a detached signature is base64 of a DER signature, as cosign writes it"


class UnsupportedAlgorithm(VerificationError):
    title = "Unsupported algorithm"
    check = "algorithm"
    hint = "supported keys: ECDSA P-256/P-384, RSA >= 2048 bits, Ed25519"


class IdentityMismatch(VerificationError):
    title = "Identity mismatch"
    hint = "the certificate was issued to a different identity or by a different OIDC issuer"


class StatementError(VerificationError):
    title = "Invalid statement"
    check = "statement"
    hint = "the signed statement is not an in-toto v1 Statement of the expected type"


class LogProofError(VerificationError):
    """A transparency-log proof, checkpoint or entry did not verify. Fail closed."""

    title = "Transparency log proof failed"
    check = "tlog"
    hint = "the log entry or its proof was altered or belongs to another log; obtain it again"


class KeyFormatError(TrustrootError):
    """A key file could not be read (not a verification result: nothing was verified)."""

    title = "Unreadable key"
    hint = "keys are PEM: cosign encrypted keys, PKCS#1, PKCS#8, SEC1 or SPKI"


class WrongPassword(KeyFormatError):
    title = "Wrong password"
    hint = "the password did not decrypt the key; set COSIGN_PASSWORD or retype it"


class MirrorRefused(VerificationError):
    """A copy of a TUF repository (the Sigstore trust root) did not verify: nothing was kept."""

    title = "Trust root mirror refused"
    check = "tuf"
    hint = "fetch a fresh copy on a connected machine (`airseal trustroot fetch --to DIR`)"


class PredicateTypeMismatch(VerificationError):
    title = "Predicate type mismatch"
    check = "predicate type"
    hint = "the attestation says something else about the artifact; check --type"
