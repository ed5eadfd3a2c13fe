"""Errors read the same in the terminal UI as on the command line: the error dialog's text is
what `airseal` prints on stderr for the same failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from airseal.appliance.cli import main as airseal_main
from airseal.appliance.errors import PasswordError
from airseal.tui.errors import INTERNAL_ERROR_TEXT, describe_error
from airseal.tui.screens.keys import KeysScreen
from airseal.tui.widgets.dialogs import ErrorDialog, FormDialog
from tests.tui.conftest import COSIGN_KEY, answer_secret, make_app, settle, wait_for_screen

WRONG = "not-the-password"


async def test_error_dialog_shows_what_the_cli_prints(
    empty_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(empty_home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await wait_for_screen(pilot, KeysScreen)
        await pilot.press("i")
        form = await wait_for_screen(pilot, FormDialog)
        form.query_one("#field-name", Input).value = "vendor"
        form.query_one("#field-path", Input).value = str(COSIGN_KEY)
        await pilot.press("ctrl+s")
        await answer_secret(pilot, WRONG, confirm=False)
        dialog = await wait_for_screen(pilot, ErrorDialog)
        shown_title, shown_body = dialog.error_title, dialog.body
        await pilot.press("escape")
        await settle(pilot)
        assert not app.internal_errors

    monkeypatch.setenv("AIRSEAL_HOME", str(empty_home))
    monkeypatch.setenv("COSIGN_PASSWORD", WRONG)
    capsys.readouterr()
    code = airseal_main(["key", "import", "vendor", str(COSIGN_KEY)])
    printed = capsys.readouterr().err
    assert code != 0
    # the same message; the hint in the UI's words (no environment variable to set in a dialog)
    assert printed.strip().splitlines()[0] == shown_body.strip().splitlines()[0]
    assert shown_title == "Wrong password" and WRONG not in shown_body
    assert "COSIGN_PASSWORD" not in shown_body and "try again" in shown_body


def test_error_texts() -> None:
    error = PasswordError("key.pem: wrong password", hint="retype it")
    assert describe_error(error).body == error.diagnostics()
    missing = describe_error(FileNotFoundError(2, "No such file or directory", "/media/x"))
    assert (missing.title, missing.body) == ("Input/output", "/media/x: No such file or directory")
    bug = describe_error(ZeroDivisionError("division by zero"))
    assert bug.internal and bug.body == INTERNAL_ERROR_TEXT
