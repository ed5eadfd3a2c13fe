"""The nesting bound every parser of media or bundle JSON applies before decoding."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from airseal.trustroot.bundle import bundle_to_json, parse_bundle, sign_statement
from airseal.trustroot.dsse import Statement, Subject
from airseal.trustroot.errors import MalformedBundle, StatementError
from airseal.trustroot.signer import PrivateKeySigner
from airseal.trustroot.untrusted_json import (
    MAX_JSON_DEPTH,
    check_json_depth,
    load_json,
    nesting_depth,
)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('["[[[[", "]]]]"]', 1),  # brackets inside strings do not count
        (r'["\"[[[[", "\\", [[]]]', 3),  # escaped quotes and backslashes end no string early
        ("]]]][[", 2),  # stray closers do not lower the count below zero
        ('"[[[[', 4),  # an unterminated string is read as structure: refuse rather than miss
    ],
)
def test_nesting_depth(text, depth):
    assert nesting_depth(text) == depth


def test_the_bound_itself_is_accepted_and_one_more_refused():
    assert load_json(nested(MAX_JSON_DEPTH), subject="f", error=MalformedBundle) is not None
    with pytest.raises(MalformedBundle) as refused:
        load_json(nested(MAX_JSON_DEPTH + 1), subject="f", error=MalformedBundle)
    assert refused.value.check == "json-depth" and refused.value.subject == "f"
    assert str(refused.value).startswith("f: malformed bundle [json-depth]: ")


def test_the_counting_stops_early_on_huge_input():
    assert nesting_depth("[" * 10_000_000, stop_above=64) == 65


def test_only_utf8_is_json_here():
    # json.loads would guess UTF-16 from the first bytes: a re-encoded bundle keeps its
    # signature and then breaks whatever stores it as UTF-8
    text = json.dumps(["\u2200", [[["x"]]]])
    assert check_json_depth(text.encode(), subject="f", error=MalformedBundle) == text
    for data in (text.encode("utf-16"), text.encode("utf-32"), b"\xff\xd8\xff" + b"\x00" * 7):
        with pytest.raises(MalformedBundle, match=r"\[json\]: is not valid JSON: not UTF-8"):
            check_json_depth(data, subject="f", error=MalformedBundle)
    with pytest.raises(MalformedBundle, match=r"\[json\]"):
        load_json(b"\xef\xbb\xbf" + text.encode(), subject="f", error=MalformedBundle)


def test_the_deepest_real_bundle_is_far_below_the_bound():
    signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    statement = Statement(
        subject=(Subject(name="x", digest={"sha256": "a" * 64}),),
        predicateType="https://airseal.dev/action/v1",
        predicate={"conditions": {"ifExists": ["/a"]}, "payload": {"name": "x"}},
    )
    data = bundle_to_json(sign_statement(signer, statement))
    assert nesting_depth(data.decode()) <= 8
    assert nesting_depth(statement.to_payload().decode()) <= 8
    assert parse_bundle(data).dsse_envelope is not None


def test_statements_refuse_deep_payloads_before_decoding():
    with pytest.raises(StatementError) as refused:
        Statement.from_payload(nested(1000).encode(), subject="s")
    assert refused.value.check == "json-depth"


def test_real_third_party_documents_nest_well_below_the_bound():
    """Sigstore's own bundle (keyless, with a log entry), its TUF root and trusted root (as
    sigstore-python ships them), and cosign's encrypted keys."""
    from importlib.resources import files

    fixtures = Path(__file__).parents[1] / "fixtures"
    store = files("sigstore._store").joinpath("https%3A%2F%2Ftuf-repo-cdn.sigstore.dev")
    documents = [
        (fixtures / "keyless" / "new_bundle.txt.sigstore.json").read_text(),
        store.joinpath("trusted_root.json").read_text(),
        store.joinpath("root.json").read_text(),
    ]
    for key in sorted((fixtures / "cosign").glob("*.key")):
        body = "".join(key.read_text().splitlines()[1:-1])
        documents.append(base64.b64decode(body).decode())
    for document in documents:
        assert nesting_depth(document) < 32
        check_json_depth(document, subject="fixture", error=MalformedBundle)
