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
    from airseal.appliance.export import ExportSummary
    from airseal.appliance.intake import FileNotInStore, IntakeRefused, StoredFile, VendorSignature
    from airseal.appliance.keystore import GENERATORS, KeyRecord
    from airseal.appliance.mounts import MediaMount, SpaceCheck
    from airseal.appliance.piv_attestation import TrustAnchors, VerifiedAttestation, common_name
    from airseal.appliance.prompts import Prompter, token_pin
    from airseal.appliance.receipts import ReceiptImportReport, ReceiptListing
    from airseal.appliance.settings import SETTINGS

_HOME = {
    "ActionNotFound": "actions",
    "ActionRecord": "actions",
    "ActionSpec": "actions",
    "ChainProblem": "audit",
    "ChainReport": "audit",
    "AuditEntry": "audit_entries",
    "BlobSignature": "blobs",
    "DashboardSummary": "dashboard",
    "ExportSummary": "export",
    "FileNotInStore": "intake",
    "IntakeRefused": "intake",
    "StoredFile": "intake",
    "VendorSignature": "intake",
    "GENERATORS": "keystore",
    "KeyRecord": "keystore",
    "MediaMount": "mounts",
    "SpaceCheck": "mounts",
    "TrustAnchors": "piv_attestation",
    "VerifiedAttestation": "piv_attestation",
    "common_name": "piv_attestation",
    "Prompter": "prompts",
    "token_pin": "prompts",
    "ReceiptImportReport": "receipts",
    "ReceiptListing": "receipts",
    "SETTINGS": "settings",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"airseal.appliance.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "GENERATORS",
    "SETTINGS",
    "ActionNotFound",
    "ActionRecord",
    "ActionSpec",
    "AuditEntry",
    "BlobSignature",
    "ChainProblem",
    "ChainReport",
    "DashboardSummary",
    "ExportSummary",
    "FileNotInStore",
    "IntakeRefused",
    "KeyRecord",
    "MediaMount",
    "Prompter",
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
