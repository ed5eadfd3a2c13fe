"""Which logs a bundle's entries are in (:mod:`airseal.trustroot.tlog.bundle_logs`): the one
reading the appliance's export check, the courier's check and the agent share."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from airseal.trustroot.errors import LogProofError
from airseal.trustroot.tlog.bundle_logs import UNKNOWN_LOG, bundle_logs, describe_logs

SITE, OTHER, THIRD = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32


def bundle(*log_ids: Any) -> dict[str, Any]:
    def entry(log_id: Any) -> dict[str, Any]:
        raw = base64.b64encode(log_id).decode() if isinstance(log_id, bytes) else log_id
        return {"logIndex": "0", "logId": {"keyId": raw}}

    return {"verificationMaterial": {"tlogEntries": [entry(i) for i in log_ids]}}


def test_entries_are_counted_by_log() -> None:
    assert bundle_logs(bundle(SITE, OTHER, SITE), SITE).site_entries == 2
    mixed = bundle_logs(bundle(OTHER, SITE, OTHER, THIRD), SITE)
    assert mixed.other_logs == (OTHER, THIRD) and not mixed.only_other_logs
    elsewhere = bundle_logs(bundle(OTHER), SITE)
    assert elsewhere.only_other_logs and not elsewhere.unlogged
    assert bundle_logs({"verificationMaterial": {}}, SITE).unlogged
    assert bundle_logs({}, SITE).unlogged


def test_unreadable_log_ids_are_of_an_unknown_log_never_the_site_one() -> None:
    for bad in ("not base64!", 7, None):
        logs = bundle_logs(bundle(bad), SITE)
        assert logs.only_other_logs and logs.other_logs == (UNKNOWN_LOG,)
    # the courier's check with no site log id known (proofs without entries)
    assert bundle_logs(bundle("***"), b"").other_logs == (UNKNOWN_LOG,)
    with pytest.raises(LogProofError) as refused:
        bundle_logs({"verificationMaterial": {"tlogEntries": {"a": 1}}}, SITE, subject="b.json")
    assert (refused.value.check, refused.value.subject) == ("tlog.entry", "b.json")


def test_described_logs_are_named_and_bounded() -> None:
    assert describe_logs((OTHER,), {OTHER: "https://rekor.example"}) == (
        f"log id {OTHER.hex()[:16]}... (https://rekor.example)")
    many = describe_logs(tuple(bytes([i]) * 32 for i in range(10)))
    assert many.count("log id") == 4 and many.endswith("and 6 more")
    assert describe_logs((UNKNOWN_LOG,)) == "a log with no readable log id"
