"""Fuzz every parser that reads media or bundles: no input may end in an internal error.

Issue 13: whatever bytes a stick or a bundle holds, each parser either accepts them or refuses
them with one of our typed errors (:class:`airseal.errors.AirsealError`); anything else (a
``RecursionError``, an ``OverflowError``, a ``KeyError``...) is an internal error, exit 70 for the
user, and fails this run.

Inputs start from real, valid ones: an export written by the real writer (a download, a tar.gz
and a zip action), its action bundles, their statements, an agent's receipt, a blob bundle, the
archives and the log's proofs file (read with its hashes, then the one proof folded), so mutations
reach deep code. Hypothesis draws the mutations: byte edits, splices and
truncations; JSON edits at any depth (hostile values: huge and negative numbers, dates at the
edge of the calendar, deep nesting, wrong types, unknown keys); and edits of a DSSE statement
that are **signed again** with the right key, so the schema behind the signature is reached too.

    .venv/bin/python bench/fuzz_parsers.py [--examples 100000] [--seed N] [--save DIR]

``--examples`` is the total, shared evenly by the targets. Prints the outcome counts per target
(accepted, refused with a typed error, internal error) and the time; exits 1 on any internal error.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from airseal.errors import AirsealError  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_targets import Target, build_targets  # noqa: E402

NORMAL_RECURSION_LIMIT = sys.getrecursionlimit()
"""What the CLIs run under. Hypothesis raises the limit while a test runs (to leave itself
room), which would hide exactly the crashes this harness looks for: parsers run under this one."""


HOSTILE_NUMBERS = [0, -1, 1, 2**31, 2**32, 2**53, 2**53 - 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**30]
HOSTILE_STRINGS = [
    "",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-01-01T00:00:00",
    "1e400",
    "../../etc/passwd",
    "/etc/passwd",
    "C:\\Windows\\x",
    "CON",
    "a\x00b",
    "run\u202ehs.txt",
    "\ud800",
    "x" * 5000,
    "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    "0" * 64,
    "application/vnd.in-toto+json",
    "https://airseal.dev/export/v1",
]
HOSTILE_TOKENS = [
    b"[" * 5000,
    b"{" * 3000,
    b'{"a":' * 200,
    b'"',
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"9" * 400,
    b"1e99999",
    b"-0",
    b"NaN",
    b"Infinity",
    b"\xff\xfe",
    b"\x00",
    b"null",
    b",",
    b"}",
    b"]",
]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(HOSTILE_NUMBERS),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


# -- mutations ---------------------------------------------------------------------------------


def _mutate_bytes(data: st.DataObject, raw: bytes) -> bytes:
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["flip", "insert", "delete", "token", "splice", "cut"]))
        at = data.draw(st.integers(0, len(out)))
        if kind == "flip" and at < len(out):
            out[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "insert":
            out[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del out[at : at + data.draw(st.integers(1, 64))]
        elif kind == "token":
            out[at:at] = data.draw(st.sampled_from(HOSTILE_TOKENS))
        elif kind == "splice" and out:
            start = data.draw(st.integers(0, len(out) - 1))
            out[at:at] = out[start : start + data.draw(st.integers(1, 512))]
        elif kind == "cut":
            del out[at:]
    return bytes(out)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


BOUNDED_FIELDS = frozenset(
    {"sequence", "version", "size", "exitCode", "timeoutSeconds", "created", "expires"}
    | {"validFrom", "validUntil", "started", "finished", "fileMode", "parts", "actions", "files"}
)
"""Fields whose bounds the schema must enforce: edited more often than the rest."""


def _mutate_json(data: st.DataObject, document: Any) -> Any:
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(document)
        kinds = ["replace", "delete", "add", "deepen", "number", "date", "field", "field"]
        kind = data.draw(st.sampled_from(kinds))
        bounded = [p for p in paths if p and p[-1] in BOUNDED_FIELDS]
        path = data.draw(st.sampled_from(bounded if kind == "field" and bounded else paths))
        if kind == "field":
            kind = data.draw(st.sampled_from(["number", "date"]))
        if kind == "replace" or not path:
            value = data.draw(json_values)
        elif kind == "number":
            value = data.draw(st.sampled_from(HOSTILE_NUMBERS))
        elif kind == "date":
            value = data.draw(st.sampled_from(HOSTILE_STRINGS[1:8]))
        elif kind == "deepen":
            value = _get(document, path)
            for _ in range(data.draw(st.sampled_from([1, 10, 60, 70, 500]))):
                value = [value]
        else:
            value = None
        if not path:
            document = value
            continue
        parent = _get(document, path[:-1])
        key = path[-1]
        if kind == "delete":
            del parent[key]
        elif kind == "add" and isinstance(parent, dict):
            parent[data.draw(st.text(max_size=12))] = data.draw(json_values)
        elif kind == "add" and isinstance(parent, list):
            parent.insert(key, data.draw(json_values))
        else:
            parent[key] = value
    return document


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        node = node[key]
    return node


def _dump(document: Any) -> bytes:
    try:
        return json.dumps(document).encode("utf-8", "surrogatepass")
    except RecursionError:
        return b"[" * 5000


def mutate(data: st.DataObject, target: Target) -> bytes:
    seed = data.draw(st.sampled_from(target.seeds))
    how = data.draw(st.sampled_from(["bytes", "json", "statement"] if target.json else ["bytes"]))
    if how == "bytes":
        return _mutate_bytes(data, seed)
    document = json.loads(seed)
    if how == "json" or "dsseEnvelope" not in document:
        return _dump(_mutate_json(data, document))
    # edit the signed statement, then sign it again (or not) so the schema behind it is reached
    payload = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    edited = _dump(_mutate_json(data, payload))
    if target.resign is not None and data.draw(st.booleans()):
        return target.resign(edited)
    document["dsseEnvelope"]["payload"] = base64.b64encode(edited).decode()
    return _dump(document)


# -- the run -----------------------------------------------------------------------------------


def run_target(target: Target, examples: int, seed: int) -> None:
    """Feed ``examples`` inputs to one parser, counting accepted / refused / internal."""

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis_seed(seed)
    @given(st.data())
    def feed(data: st.DataObject) -> None:
        raw = mutate(data, target)
        hypothesis_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(NORMAL_RECURSION_LIMIT)
        try:
            target.parse(raw)
        except AirsealError:
            target.outcomes["refused"] += 1
        except Exception as exc:
            target.outcomes["internal"] += 1
            if len(target.failures) < 20:
                trace = "".join(traceback.format_exception(exc, limit=-3))
                target.failures.append((trace, raw))
        else:
            target.outcomes["accepted"] += 1
        finally:
            sys.setrecursionlimit(hypothesis_limit)

    feed()


def fuzz(examples: int, *, seed: int = 0, save: Path | None = None) -> list[Target]:
    """Build real inputs, then fuzz every target with ``examples`` inputs in total."""
    with tempfile.TemporaryDirectory(prefix="airseal-fuzz-") as tmp:
        targets = build_targets(Path(tmp))
        per_target = max(1, examples // len(targets))
        for index, target in enumerate(targets):
            run_target(target, per_target, seed + index)
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        for target in targets:
            for n, (_trace, raw) in enumerate(target.failures):
                name = target.name.split()[0]
                (save / f"{name}-{n}.bin").write_bytes(raw)
    return targets


def report(targets: list[Target], seconds: float) -> str:
    lines = [f"{'parser':<28}{'inputs':>9}{'accepted':>10}{'refused':>10}{'internal':>10}"]
    for t in targets:
        o = t.outcomes
        lines.append(
            f"{t.name:<28}{o.total():>9}{o['accepted']:>10}{o['refused']:>10}{o['internal']:>10}"
        )
    total = Counter[str]()
    for t in targets:
        total.update(t.outcomes)
    lines.append(
        f"{'total':<28}{total.total():>9}{total['accepted']:>10}{total['refused']:>10}"
        f"{total['internal']:>10}"
    )
    lines.append(f"{seconds:.1f} s, {total.total() / max(seconds, 1e-9):.0f} inputs/s")
    for t in targets:
        for trace, raw in t.failures[:3]:
            lines.append(f"\n{t.name}: internal error on {raw[:120]!r}...\n{trace}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000, help="inputs in total")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, help="write inputs that caused internal errors here")
    args = parser.parse_args(argv)
    started = time.monotonic()
    targets = fuzz(args.examples, seed=args.seed, save=args.save)
    print(report(targets, time.monotonic() - started))
    return 1 if any(t.outcomes["internal"] for t in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
