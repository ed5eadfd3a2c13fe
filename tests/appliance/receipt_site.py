"""A real appliance site with one export, and receipts as agents write them: shared by the receipt
and enrolment tests."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from airseal.agent.receipts import write_receipt
from airseal.appliance import actions, intake
from airseal.appliance.db import open_database
from airseal.appliance.enrolment import enroll_agent
from airseal.appliance.export import export_to_media
from airseal.appliance.home import Home, init_home, open_home
from airseal.appliance.keystore import generate_file_key
from airseal.media import layout
from airseal.media.reader import DirectorySource
from airseal.media.receipt import (
    ActionResult,
    ReceiptPredicate,
    receipt_media_path,
    receipt_statement,
)
from airseal.trustroot.bundle import bundle_to_json, sign_statement
from airseal.trustroot.keys import spki_pem
from airseal.trustroot.signer import PrivateKeySigner

NOW = datetime.now(UTC).replace(microsecond=0)


class Prompter:
    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        return "appliance key password"

    def notice(self, message: str) -> None:
        pass


def make_template(base: Path) -> tuple[Path, dict]:
    """An appliance home with one real export of two actions (made once, copied per test)."""
    home, _ = init_home(base / "home")
    db = open_database(home)
    generate_file_key(home, db, "site", Prompter())
    payload = base / "tool.conf"
    payload.write_bytes(b"x=1\n")
    intake.add_file(home, db, payload, intake.VendorSignature())
    ids = []
    for name in ("(Config)One", "(Config)Two"):
        spec = actions.ActionSpec(
            name=name, file=str(payload), os="linux", mode="download", dest="/opt/x.conf"
        )
        ids.append(actions.create_action(home, db, spec, "site", Prompter()).id)
    media = base / "media"
    media.mkdir()
    summary = export_to_media(home, db, media, "site", Prompter())
    db.close()
    return base, {
        "export_id": summary.export_id,
        "sequence": summary.sequence,
        "distributor": summary.key_fingerprint,
        "actions": ids,
    }


def copy_site(template: tuple[Path, dict], tmp_path: Path, monkeypatch) -> tuple[Home, dict]:
    base, facts = template
    shutil.copytree(base / "home", tmp_path / "home")
    home = open_home(tmp_path / "home")
    monkeypatch.setenv("AIRSEAL_HOME", str(home.root))
    return home, facts


def agent_key() -> PrivateKeySigner:
    return PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))


def enrolled(home: Home, agent_id: str = "agent-1") -> PrivateKeySigner:
    """A new agent key, enrolled at the appliance under ``agent_id`` by an administrator."""
    signer = agent_key()
    db = open_database(home)
    enroll_agent(
        home, db, agent_id, spki_pem(signer.public_key), name=None, basis="administrator", now=NOW
    )
    db.close()
    return signer


def receipt(
    facts: dict,
    signer: PrivateKeySigner,
    *,
    agent_id: str = "agent-1",
    export_id: str | None = None,
    outcomes: tuple[str, str] = ("succeeded", "failed"),
    finished: datetime = NOW,
    carried_key: PrivateKeySigner | None = None,
    statement_sha256: str = "ab" * 32,
    **fields,
) -> bytes:
    predicate = ReceiptPredicate(
        agent_id=agent_id,
        agent_key=spki_pem((carried_key or signer).public_key).decode(),
        hostname=fields.pop("hostname", "ws-042"),
        os="linux",
        export_id=export_id or facts["export_id"],
        sequence=fields.pop("sequence", facts["sequence"]),
        distributor=fields.pop("distributor", facts["distributor"]),
        status=fields.pop("status", "partial"),
        started=finished - timedelta(minutes=1),
        finished=finished,
        actions=tuple(
            ActionResult(
                id=action_id,
                version=1,
                outcome=outcome,
                exit_code=None if outcome != "failed" else 2,
                reason="exited with code 2" if outcome == "failed" else None,
            )
            for action_id, outcome in zip(facts["actions"], outcomes, strict=True)
        ),
        **fields,
    )
    return bundle_to_json(sign_statement(signer, receipt_statement(predicate, statement_sha256)))


def put(
    mount: Path,
    data: bytes,
    agent_id: str = "agent-1",
    export_id: str | None = None,
    facts: dict | None = None,
) -> Path:
    export = export_id or (facts or {}).get("export_id")
    write_receipt(DirectorySource(mount), agent_id, export, data)
    return mount / layout.MEDIA_DIR / receipt_media_path(agent_id, export)
