"""Yubico's PIV attestation certificates, pinned by SHA-256 (see README.md here)."""
