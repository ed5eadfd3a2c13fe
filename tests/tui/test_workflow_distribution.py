"""The operator's whole path through the UI: a vendor file in, an action signed, an export
written and read back, and the courier's check — asserted on the database and on the media."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from textual.widgets import DataTable, Input, Select, SelectionList, Static

from airseal.appliance import actions as action_service
from airseal.appliance import blobs, keystore
from airseal.appliance.db import open_database
from airseal.appliance.home import open_home
from airseal.media.check import check_media
from airseal.tui.screens.action_form import ActionFormScreen
from airseal.tui.screens.actions import ActionsScreen
from airseal.tui.screens.export import ExportScreen
from airseal.tui.screens.files import FilesScreen
from airseal.tui.screens.media_check import MediaCheckScreen
from airseal.tui.widgets.dialogs import FormDialog, TextDialog
from tests.tui.conftest import (
    COSIGN_KEY,
    COSIGN_KEY_PASSWORD,
    NOW,
    PAYLOAD,
    FixedPrompter,
    answer_secret,
    make_app,
    screen_text,
    settle,
    type_text,
    wait_for,
    wait_for_screen,
)


def _prepare(root: Path, tmp: Path) -> tuple[Path, Path, Path]:
    """The vendor's side (not the UI's job): a key the appliance knows and a signed file."""
    home = open_home(root)
    db = open_database(home)
    keystore.import_file_key(home, db, "vendor", COSIGN_KEY, FixedPrompter(COSIGN_KEY_PASSWORD))
    source = tmp / "agent-installer.sh"
    source.write_bytes(PAYLOAD)
    signed = blobs.sign_blob(home, db, source, "vendor", FixedPrompter(COSIGN_KEY_PASSWORD))
    sig = tmp / "agent-installer.sh.sig"
    sig.write_bytes(signed.signature_b64)
    tampered = tmp / "tampered.sh"
    tampered.write_bytes(PAYLOAD + b"echo evil\n")
    db.close()
    return source, sig, tampered


def _value(screen: object, selector: str, value: str) -> None:
    screen.query_one(selector, Input).value = value  # type: ignore[attr-defined]


def _text(widget: Static) -> str:
    return str(widget.render())


async def test_file_to_action_to_export_to_media_check(empty_home: Path, tmp_path: Path) -> None:
    source, sig, tampered = _prepare(empty_home, tmp_path)
    media = tmp_path / "usb"
    media.mkdir()
    app = make_app(empty_home)
    async with app.run_test(size=(120, 40)) as pilot:
        # --- Files: a refused file first (signature does not match), then the genuine one
        await pilot.press("3")
        files = await wait_for_screen(pilot, FilesScreen)
        await settle(pilot)
        _value(files, "#path", str(tampered))
        _value(files, "#signature", str(sig))
        _value(files, "#key", str(COSIGN_KEY.with_suffix(".pub")))
        await pilot.press("ctrl+s")
        result = files.query_one("#add-result", Static)
        await wait_for(pilot, lambda: "invalid signature" in _text(result).lower())
        assert "Refused" in str(result.border_title)
        _value(files, "#path", str(source))
        _value(files, "#key", "vendor")  # a key name in the home works too
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: _text(result).startswith("Added"))
        digest = hashlib.sha256(PAYLOAD).hexdigest()
        assert f"sha256 {digest}" in _text(result)
        assert "verified (cosign-signature" in _text(result)
        await settle(pilot)
        assert files.query_one(DataTable).row_count == 1

        # --- Actions: the form, an inline refusal from the service, then a signed action
        await pilot.press("escape", "4")  # Esc leaves the text field, then numbers navigate
        await wait_for_screen(pilot, ActionsScreen)
        await pilot.press("n")
        form = await wait_for_screen(pilot, ActionFormScreen)
        await settle(pilot)
        await type_text(pilot, "Install agent")  # not "(Purpose)Name"
        form.query_one("#f-mode", Select).value = "download"
        await pilot.pause()
        _value(form, "#f-dest", "opt/agent.sh")  # relative: refused by the service
        _value(form, "#f-file-mode", "0755")
        _value(form, "#f-if-missing", "/opt/agent.sh")
        assert form.query_one("#f-file", Select).value == digest
        await pilot.press("ctrl+s")  # the service checks the fields before asking anything
        name_error = form.query_one("#err-name", Static)
        await wait_for(pilot, lambda: "(Purpose)Name" in _text(name_error))
        assert name_error.display and form.query_one("#f-name").has_class("-invalid")
        assert app.screen is form
        _value(form, "#f-name", "(Install)Agent")
        await pilot.press("ctrl+s")
        dest_error = form.query_one("#err-dest", Static)
        await wait_for(pilot, lambda: "not an absolute path" in _text(dest_error))
        assert not form.query_one("#err-name", Static).display
        _value(form, "#f-dest", "/opt/agent.sh")
        await pilot.press("ctrl+s")
        await answer_secret(pilot, COSIGN_KEY_PASSWORD, confirm=False)
        actions_screen = await wait_for_screen(pilot, ActionsScreen)
        await wait_for(pilot, lambda: len(actions_screen.shown) == 1)
        created = actions_screen.shown[0]
        assert created.name == "(Install)Agent" and created.mode == "download"
        await pilot.press("enter")
        shown = await wait_for_screen(pilot, TextDialog)
        assert "  Dest         /opt/agent.sh" in shown.body.splitlines()
        await pilot.press("escape")

        # --- Export: typed media path, capacity shown, progress, read-back and check
        await pilot.press("5")
        export = await wait_for_screen(pilot, ExportScreen)
        await settle(pilot)
        assert list(export.query_one(SelectionList).selected) == [created.id]
        export.query_one("#media-path", Input).value = str(media)
        capacity = export.query_one("#capacity", Static)
        await wait_for(pilot, lambda: "fits" in _text(capacity))
        await pilot.press("x")
        # no password asked: the key was unlocked for the session when the action was signed
        outcome = export.query_one("#export-result", Static)
        await wait_for(pilot, lambda: "Media COMPLETE" in _text(outcome), timeout=30)
        assert "read back OK" in _text(outcome)
        assert COSIGN_KEY_PASSWORD not in screen_text(app)

        # --- Media check (the courier's view), then the same media damaged
        await pilot.press("6")
        check = await wait_for_screen(pilot, MediaCheckScreen)
        check.query_one("#media-path", Input).value = str(media)
        await pilot.press("enter")  # Enter in the path field runs the check
        verdict = check.query_one("#check-result", Static)
        await wait_for(pilot, lambda: "Media COMPLETE" in _text(verdict))
        payload_file = media / "airseal" / "actions" / created.id / "payload" / source.name
        damaged = bytearray(payload_file.read_bytes())
        damaged[10] ^= 0x01
        payload_file.write_bytes(bytes(damaged))
        await pilot.press("escape", "c")  # or c, once out of the field
        await wait_for(pilot, lambda: "Media DAMAGED" in _text(verdict))
        findings = check.query_one("#findings", DataTable)
        assert findings.display and findings.row_count == 1
        assert findings.get_row_at(0)[0] == "damaged"

    # the database and the media, not only the screen
    home = open_home(empty_home)
    db = open_database(home)
    stored = db.execute("SELECT name, method, verified FROM files").fetchall()
    assert stored == [("agent-installer.sh", "cosign-signature", 1)]
    assert (home.store_dir / digest).read_bytes() == PAYLOAD
    record = action_service.get_action(db, created.id)
    assert record.predicate.to_json_dict()["download"] == {
        "dest": "/opt/agent.sh", "fileMode": "0755", "owner": None
    }
    assert record.predicate.to_json_dict()["conditions"]["ifMissing"] == ["/opt/agent.sh"]
    assert record.created == NOW.isoformat()  # the app's clock reached the service
    exports = db.execute("SELECT sequence, target, actions FROM exports").fetchall()
    assert len(exports) == 1 and exports[0][1] == str(media)
    assert json.loads(exports[0][2]) == [{"id": created.id, "version": 1}]
    refused = db.execute("SELECT count(*) FROM audit WHERE action = 'file.refused'").fetchone()
    assert refused == (1,)
    payload_file.write_bytes(PAYLOAD)
    assert check_media(media, now=NOW).ok


async def test_edit_and_revoke_an_action(snapshot_site: dict, tmp_path: Path) -> None:
    root = snapshot_site["root"]
    action = snapshot_site["execute"]
    app = make_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        screen = await wait_for_screen(pilot, ActionsScreen)
        await wait_for(pilot, lambda: len(screen.shown) == 2)
        table = screen.query_one(DataTable)
        table.move_cursor(row=[r.id for r in screen.shown].index(action.id))
        await pilot.press("e")
        form = await wait_for_screen(pilot, ActionFormScreen)
        await settle(pilot)
        assert form.query_one("#f-args", Input).value == "--quiet"
        assert form.query_one("#f-host", Input).value == "ws-*"
        _value(form, "#f-timeout", "ten")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "whole number" in _text(form.query_one("#err-timeout", Static))
        _value(form, "#f-timeout", "900")
        _value(form, "#f-args", "--quiet --retry 3")
        await pilot.press("ctrl+s")
        await answer_secret(pilot, COSIGN_KEY_PASSWORD, confirm=False)
        await wait_for_screen(pilot, ActionsScreen)
        await wait_for(pilot, lambda: any(r.version == 2 for r in screen.shown))
        table.move_cursor(row=[r.id for r in screen.shown].index(action.id))
        await pilot.press("d")
        dialog = await wait_for_screen(pilot, FormDialog)
        dialog.query_one("#field-reason", Input).value = "superseded"
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(screen.shown) == 1)
        await pilot.press("v")
        await wait_for(pilot, lambda: len(screen.shown) == 2)
        assert "revoked" in screen.query_one(DataTable).get_row(action.id)
    db = open_database(open_home(root))
    latest = action_service.get_action(db, action.id)
    assert latest.version == 2 and latest.revoked
    assert latest.predicate.to_json_dict()["execute"]["args"] == ["--quiet", "--retry", "3"]
    assert latest.predicate.to_json_dict()["execute"]["timeoutSeconds"] == 900
    assert latest.predicate.to_json_dict()["conditions"]["host"] == "ws-*"  # kept from version 1
    reason = db.execute(
        "SELECT details FROM audit WHERE action = 'action.revoke' AND subject = ?", [action.id]
    ).fetchone()
    assert json.loads(reason[0]) == {"reason": "superseded"}
