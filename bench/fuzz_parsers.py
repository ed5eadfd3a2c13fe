"""Fuzz every parser that reads media or bundles: no input may end in an internal error.

Issue 13: whatever bytes a stick or a bundle holds, each parser either accepts them or refuses
them with one of our typed errors (:class:`airseal.errors.AirsealError`); anything else (a
``RecursionError``, an ``OverflowError``, a ``KeyError``...) is an internal error, exit 70 for the
user, and fails this run.

Inputs start from real, valid ones: an export written by the real writer (a download, a tar.gz
and a zip action), its action bundles, their statements, an agent's receipt, a blob bundle and the
archives, so mutations reach deep code. Hypothesis draws the mutations: byte edits, splices and
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
import hashlib
import io
import json
import sys
import tarfile
import tempfile
import time
import traceback
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from airseal.errors import AirsealError  # noqa: E402

NORMAL_RECURSION_LIMIT = sys.getrecursionlimit()
"""What the CLIs run under. Hypothesis raises the limit while a test runs (to leave itself
room), which would hide exactly the crashes this harness looks for: parsers run under this one."""

Parser = Callable[[bytes], object]
Resigner = Callable[[bytes], bytes]
"""Signs a statement payload again: (payload) -> bundle bytes."""

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


# -- seeds: real, valid inputs -------------------------------------------------------------------


@dataclass
class Target:
    """One parser, the valid inputs it starts from, and how to re-sign an edited statement."""

    name: str
    parse: Parser
    seeds: list[bytes]
    resign: Resigner | None = None
    json: bool = True
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, bytes]] = field(default_factory=list)


def _payload(bundle: bytes) -> bytes:
    return base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"])


def _claimed_action_id(bundle: bytes) -> str | None:
    """The id an action bundle's statement claims, if it can be read at all (harness only)."""
    try:
        return str(json.loads(_payload(bundle))["predicate"]["id"])
    except Exception:
        return None


def build_targets(base: Path) -> list[Target]:
    """Write a real export (and a receipt, a blob bundle, archives) under ``base``; one target
    per parser that reads media or bundles."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from airseal.agent.archive import ArchiveLimits, check_members, read_members
    from airseal.agent.trust import PinnedKeyTrust, TrustedKey
    from airseal.agent.verification import verify_action_bundle, verify_export_bundle
    from airseal.appliance.db import open_database
    from airseal.appliance.home import init_home
    from airseal.appliance.receipts import import_receipts
    from airseal.media import layout
    from airseal.media.check import read_statement_unverified
    from airseal.media.reader import DirectorySource
    from airseal.media.receipt import (
        ActionResult,
        ReceiptPredicate,
        read_receipt_statement,
        receipt_statement,
    )
    from airseal.media.statement import (
        ActionPayload,
        ActionPredicate,
        DownloadOptions,
        ExecuteOptions,
        Intake,
        action_statement,
        read_action_statement,
        read_export_statement,
    )
    from airseal.media.writer import ActionToExport, ExportHeader, write_export
    from airseal.trustroot.bundle import (
        bundle_to_json,
        message_signature_bundle,
        parse_bundle,
        sign_statement,
    )
    from airseal.trustroot.dsse import IN_TOTO_PAYLOAD_TYPE, Statement, pae
    from airseal.trustroot.keys import fingerprint, spki_pem
    from airseal.trustroot.signer import PrivateKeySigner
    from airseal.trustroot.verify import verify_blob_bundle

    now = datetime.now(UTC).replace(microsecond=0)
    distributor = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    agent = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))

    def resigner(signer: PrivateKeySigner, template: bytes) -> Resigner:
        """Put an edited statement into ``template`` (a DSSE bundle) and sign it again."""

        def resign(payload: bytes) -> bytes:
            bundle = json.loads(template)
            envelope = bundle["dsseEnvelope"]
            envelope["payload"] = base64.b64encode(payload).decode()
            signature = signer.sign_message(pae(IN_TOTO_PAYLOAD_TYPE, payload))
            envelope["signatures"][0]["sig"] = base64.b64encode(signature).decode()
            return json.dumps(bundle).encode()

        return resign

    # payloads: a file, a tar.gz, a zip; and a plain tar for the member-list fuzz
    files = base / "payloads"
    files.mkdir()
    (files / "tool.conf").write_bytes(b"x=1\n")
    archives: dict[str, bytes] = {}
    for name, mode in (("kit.tar.gz", "w:gz"), ("kit.tar", "w")):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode=mode) as tar:
            for member, data in (("bin/install.sh", b"#!/bin/sh\necho ok\n"), ("etc/a", b"a")):
                info = tarfile.TarInfo(member)
                info.size = len(data)
                info.mode = 0o755
                tar.addfile(info, io.BytesIO(data))
            link = tarfile.TarInfo("etc/b")
            link.type = tarfile.SYMTYPE
            link.linkname = "a"
            tar.addfile(link)
        archives[name] = buffer.getvalue()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bin/install.sh", "#!/bin/sh\necho ok\n")
        archive.writestr("etc/a", "a")
    archives["kit.zip"] = buffer.getvalue()
    (files / "kit.tar.gz").write_bytes(archives["kit.tar.gz"])
    (files / "kit.zip").write_bytes(archives["kit.zip"])

    to_export = []
    for action_id, payload_name, mode in (
        ("conf", "tool.conf", "download"),
        ("kit", "kit.tar.gz", "execute"),
        ("zkit", "kit.zip", "execute"),
    ):
        data = (files / payload_name).read_bytes()
        predicate = ActionPredicate(
            id=action_id,
            version=1,
            name=f"(Fuzz){action_id}",
            os="linux",
            mode=mode,
            execute=ExecuteOptions(run="bin/install.sh", args=("--quiet",), timeout_seconds=60)
            if mode == "execute"
            else None,
            download=DownloadOptions(dest=f"/opt/fuzz/{payload_name}", file_mode="0640")
            if mode == "download"
            else None,
            valid_from=now - timedelta(hours=1),
            valid_until=now + timedelta(days=30),
            payload=ActionPayload(
                name=payload_name, sha256=hashlib.sha256(data).hexdigest(), size=len(data)
            ),
            intake=Intake(verified=False, method="none"),
        )
        bundle = bundle_to_json(sign_statement(distributor, action_statement(predicate)))
        to_export.append(
            ActionToExport(
                id=action_id,
                version=1,
                name=predicate.name,
                bundle=bundle,
                payload=files / payload_name,
                payload_name=payload_name,
            )
        )
    mount = base / "usb"
    mount.mkdir()
    header = ExportHeader(
        export_id="fuzz-export",
        sequence=7,
        created=now - timedelta(minutes=5),
        expires=now + timedelta(days=14),
        appliance_id="fuzz-appliance",
        distributor=fingerprint(distributor.public_key),
    )
    write_export(
        mount,
        to_export,
        header,
        lambda s: bundle_to_json(sign_statement(distributor, s)),
    )
    media = mount / layout.MEDIA_DIR
    export_bundle = (media / layout.STATEMENT_NAME).read_bytes()
    export_contents = read_export_statement(Statement.from_payload(_payload(export_bundle)))
    listed = {a.bundle: a for a in export_contents.predicate.actions}
    action_bundles = {path: (media / path).read_bytes() for path in listed}

    trust = PinnedKeyTrust(
        [
            TrustedKey(
                fingerprint(distributor.public_key),
                "fuzz distributor",
                distributor.public_key,
                frozenset({"exports", "actions"}),
                "pinned by the fuzz harness",
            )
        ]
    )

    receipt_predicate = ReceiptPredicate(
        agent_id="agent-fuzz",
        agent_key=spki_pem(agent.public_key).decode(),
        hostname="ws-fuzz",
        os="linux",
        export_id="fuzz-export",
        sequence=7,
        distributor=fingerprint(distributor.public_key),
        status="partial",
        started=now - timedelta(minutes=1),
        finished=now,
        actions=(
            ActionResult(id="conf", version=1, outcome="succeeded"),
            ActionResult(id="kit", version=1, outcome="failed", exit_code=3, reason="exit 3"),
        ),
    )
    receipt = bundle_to_json(sign_statement(agent, receipt_statement(receipt_predicate, "ab" * 32)))
    home, _ = init_home(base / "appliance")
    db = open_database(home)
    # the export the receipt answers, as the appliance recorded it: receipts verify in full
    db.execute(
        "INSERT INTO exports (id, sequence, key_name, key_fingerprint, created, expires, target, "
        "actions, files, bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            "fuzz-export",
            7,
            "fuzz",
            fingerprint(distributor.public_key),
            header.created.isoformat(),
            header.expires.isoformat(),
            str(mount),
            "[]",
            1,
            1,
        ],
    )
    db.conn.commit()
    returned = base / "returned"
    receipt_file = returned / layout.MEDIA_DIR / "receipts" / "agent-fuzz" / "fuzz-export.json"
    receipt_file.parent.mkdir(parents=True)

    blob = b"installer bytes\n" * 100
    blob_digest = hashlib.sha256(blob).digest()
    blob_bundle = bundle_to_json(
        message_signature_bundle(
            distributor.public_key, blob_digest, distributor.sign_digest(blob_digest)
        )
    )

    courier = base / "courier"
    (courier / layout.MEDIA_DIR).mkdir(parents=True)
    courier_source = DirectorySource(courier)

    def courier_check(data: bytes) -> object:
        (courier / layout.MEDIA_DIR / layout.STATEMENT_NAME).write_bytes(data)
        return read_statement_unverified(courier_source)

    def export_bundle_target(data: bytes) -> object:
        return verify_export_bundle(data, trust, now=now, subject="airseal/export.sigstore.json")

    by_id = {a.id: a for a in export_contents.predicate.actions}

    def action_bundle_target(data: bytes) -> object:
        # judged against the listing of the action it claims to be, with the data's own digest,
        # so the parser behind the digest check is reached
        entry = by_id.get(_claimed_action_id(data)) or export_contents.predicate.actions[0]
        return verify_action_bundle(
            data, entry, hashlib.sha256(data).hexdigest(), trust, subject=entry.bundle
        )

    def receipt_target(data: bytes) -> object:
        # the whole of `airseal receipts import`: read, verify, pin, store, audit
        receipt_file.write_bytes(data)
        result = import_receipts(home, db, returned, now=now)
        if result.refused:
            raise result.refused[0].error or AssertionError("refused without an error")
        return result

    def blob_target(data: bytes) -> object:
        bundle = parse_bundle(data, subject="blob.sigstore.json")
        return verify_blob_bundle(
            distributor.public_key, bundle, blob_digest, message=blob, subject="blob"
        )

    def statement_target(read: Callable[..., object]) -> Parser:
        def parse(data: bytes) -> object:
            return read(Statement.from_payload(data, subject="statement"), subject="statement")

        return parse

    def members_target(data: bytes) -> object:
        kind = "zip" if data[:2] == b"PK" else "tar"
        members = read_members(io.BytesIO(data), kind, ArchiveLimits(), subject="payload")
        return check_members(members, "linux", ArchiveLimits(), subject="payload")

    def windows_members_target(data: bytes) -> object:
        kind = "zip" if data[:2] == b"PK" else "tar"
        members = read_members(io.BytesIO(data), kind, ArchiveLimits(), subject="payload")
        return check_members(members, "windows", ArchiveLimits(), subject="payload")

    exporter = resigner(distributor, export_bundle)
    return [
        Target("export-bundle (agent)", export_bundle_target, [export_bundle], exporter),
        Target("export-bundle (courier)", courier_check, [export_bundle], exporter),
        Target("action-bundle", action_bundle_target, list(action_bundles.values()), exporter),
        Target(
            "export-statement",
            statement_target(read_export_statement),
            [_payload(export_bundle)],
        ),
        Target(
            "action-statement",
            statement_target(read_action_statement),
            [_payload(b) for b in action_bundles.values()],
        ),
        Target("receipts-import", receipt_target, [receipt], resigner(agent, receipt)),
        Target("receipt-statement", statement_target(read_receipt_statement), [_payload(receipt)]),
        Target("blob-bundle", blob_target, [blob_bundle]),
        Target("archive-members (linux)", members_target, list(archives.values()), json=False),
        Target(
            "archive-members (windows)",
            windows_members_target,
            list(archives.values()),
            json=False,
        ),
    ]


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
