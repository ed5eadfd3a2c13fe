"""The data the front ends build and read: inputs (``ActionSpec``, ``VendorSignature``), records
and reports the :class:`~airseal.appliance.service.Appliance` returns, and the errors they name.

Each name loads its defining module on first use (PEP 562), so a command that only lists keys
does not load the statement models that an action needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airseal.appliance.actions import ActionNotFound, ActionRecord, ActionSpec
    from airseal.appliance.audit import ChainProblem, ChainReport
    from airseal.appliance.audit_entries import AuditEntry
    from airseal.appliance.blobs import BlobSignature
    from airseal.appliance.dashboard import DashboardSummary
    from airseal.appliance.enrolment import (
        AgentAlreadyEnrolled,
        AgentNotEnrolled,
        EnrolledAgent,
        Enrolment,
        ReceiptIdentity,
    )
    from airseal.appliance.export import ExportRecord, ExportSummary
    from airseal.appliance.intake import FileNotInStore, IntakeRefused, StoredFile, VendorSignature
    from airseal.appliance.keystore import GENERATORS, KeyRecord
    from airseal.appliance.mounts import MediaMount, SpaceCheck
    from airseal.appliance.piv_attestation import TrustAnchors, VerifiedAttestation, common_name
    from airseal.appliance.prompts import Prompter, token_pin
    from airseal.appliance.receipts import ReceiptImportReport, ReceiptListing
    from airseal.appliance.settings import SETTINGS
    from airseal.appliance.site import AwaitingApproval
    from airseal.media.layout import FAT32_MAX_FILE_SIZE

KEY_ALGORITHMS = ("ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-3072", "rsa-4096")
"""What ``key generate --algorithm`` accepts: the keys of ``GENERATORS``, spelled out so that a
command line can offer them without loading the key store (a test keeps the two equal)."""

_HOME = {
    "ActionNotFound": "airseal.appliance.actions",
    "ActionRecord": "airseal.appliance.actions",
    "ActionSpec": "airseal.appliance.actions",
    "ChainProblem": "airseal.appliance.audit",
    "ChainReport": "airseal.appliance.audit",
    "AuditEntry": "airseal.appliance.audit_entries",
    "BlobSignature": "airseal.appliance.blobs",
    "DashboardSummary": "airseal.appliance.dashboard",
    "AgentAlreadyEnrolled": "airseal.appliance.enrolment",
    "AgentNotEnrolled": "airseal.appliance.enrolment",
    "EnrolledAgent": "airseal.appliance.enrolment",
    "Enrolment": "airseal.appliance.enrolment",
    "ReceiptIdentity": "airseal.appliance.enrolment",
    "ExportRecord": "airseal.appliance.export",
    "ExportSummary": "airseal.appliance.export",
    "FileNotInStore": "airseal.appliance.intake",
    "IntakeRefused": "airseal.appliance.intake",
    "StoredFile": "airseal.appliance.intake",
    "VendorSignature": "airseal.appliance.intake",
    "GENERATORS": "airseal.appliance.keystore",
    "KeyRecord": "airseal.appliance.keystore",
    "MediaMount": "airseal.appliance.mounts",
    "SpaceCheck": "airseal.appliance.mounts",
    "TrustAnchors": "airseal.appliance.piv_attestation",
    "VerifiedAttestation": "airseal.appliance.piv_attestation",
    "common_name": "airseal.appliance.piv_attestation",
    "Prompter": "airseal.appliance.prompts",
    "token_pin": "airseal.appliance.prompts",
    "ReceiptImportReport": "airseal.appliance.receipts",
    "ReceiptListing": "airseal.appliance.receipts",
    "SETTINGS": "airseal.appliance.settings",
    "AwaitingApproval": "airseal.appliance.site",
    "FAT32_MAX_FILE_SIZE": "airseal.media.layout",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "FAT32_MAX_FILE_SIZE",
    "GENERATORS",
    "KEY_ALGORITHMS",
    "SETTINGS",
    "ActionNotFound",
    "ActionRecord",
    "ActionSpec",
    "AgentAlreadyEnrolled",
    "AgentNotEnrolled",
    "AuditEntry",
    "AwaitingApproval",
    "BlobSignature",
    "ChainProblem",
    "ChainReport",
    "DashboardSummary",
    "EnrolledAgent",
    "Enrolment",
    "ExportRecord",
    "ExportSummary",
    "FileNotInStore",
    "IntakeRefused",
    "KeyRecord",
    "MediaMount",
    "Prompter",
    "ReceiptIdentity",
    "ReceiptImportReport",
    "ReceiptListing",
    "SpaceCheck",
    "StoredFile",
    "TrustAnchors",
    "VendorSignature",
    "VerifiedAttestation",
    "common_name",
    "token_pin",
]
