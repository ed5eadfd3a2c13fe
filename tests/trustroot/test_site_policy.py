"""The distributor policy target: strict parsing of hostile bytes, and the pure trust decision
(which key may sign what, when, and why not)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from airseal.trustroot.site_policy import (
    DistributorPolicy,
    PolicyError,
    new_distributor,
    parse_policy,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _policy() -> tuple[DistributorPolicy, str, str]:
    a = new_distributor(ec.generate_private_key(ec.SECP256R1()).public_key(), name="A",
                        may_sign=["exports", "actions"], valid_from=NOW - timedelta(days=1),
                        valid_until=NOW + timedelta(days=10))
    b = new_distributor(ec.generate_private_key(ec.SECP256R1()).public_key(), name="B",
                        may_sign=["actions"], valid_from=NOW - timedelta(days=1))
    return DistributorPolicy().with_distributor(a).with_distributor(b), a.fingerprint, \
        b.fingerprint


def test_round_trip_and_decisions() -> None:
    policy, a, b = _policy()
    parsed = parse_policy(policy.to_bytes())
    assert parsed == policy
    assert parsed.refusal(a, "exports", NOW) is None
    assert "may not sign exports" in (parsed.refusal(b, "exports", NOW) or "")
    assert "validity ended" in (parsed.refusal(a, "exports", NOW + timedelta(days=11)) or "")
    assert "valid only from" in (parsed.refusal(a, "exports", NOW - timedelta(days=2)) or "")
    assert "not a distributor" in (parsed.refusal("0" * 64, "actions", NOW) or "")
    retired = parse_policy(parsed.retired(a, NOW).to_bytes())
    assert "retired by the site policy" in (retired.refusal(a, "exports", NOW) or "")
    revoked = parse_policy(parsed.revoked(b, NOW, "leaked").to_bytes())
    why = revoked.refusal(b, "actions", NOW) or ""
    assert "revoked" in why and "leaked" in why
    assert [d.name for d in revoked.trusted("actions", NOW)] == ["A"]
    with pytest.raises(PolicyError, match="revoked"):
        revoked.with_distributor(revoked.distributor(b))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda d: d.update(extra=1), "unknown fields"),
        (lambda d: d.update(schemaVersion=2), "schemaVersion"),
        (lambda d: d.update(actionThreshold=0), "actionThreshold"),
        (lambda d: d["distributors"][0].update(fingerprint="ab" * 32), "fingerprint"),
        (lambda d: d["distributors"][0].update(maySign=["everything"]), "maySign"),
        (lambda d: d["distributors"][0].update(validFrom="yesterday"), "validFrom"),
        (lambda d: d["distributors"].append(d["distributors"][0]), "twice"),
    ],
)
def test_hostile_policies_are_refused(edit, words: str) -> None:  # type: ignore[no-untyped-def]
    policy, _, _ = _policy()
    data = json.loads(policy.to_bytes())
    edit(data)
    with pytest.raises(PolicyError, match=words):
        parse_policy(json.dumps(data).encode())


def test_deep_or_huge_policies_are_refused_unparsed() -> None:
    with pytest.raises(PolicyError, match=r"json-depth|nest"):
        parse_policy(b"[" * 5000)
    with pytest.raises(PolicyError, match="over"):
        parse_policy(b" " * (2 * 1024 * 1024))
