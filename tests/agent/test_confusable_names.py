"""Issue 13, item 8: signed names with bidi controls, zero-width characters or mixed scripts are
shown escaped, with a warning, in the approval prompt, the import report and the history."""

from __future__ import annotations

from pathlib import Path

from airseal.agent import exit_codes
from airseal.agent.approval import ApprovalRequest, ApproveAll

from .helpers import ActionBuild, Distributor, new_distributor, sign_action, write_media

RLO_NAME = "run\u202ehs.txt"  # prints as "runtxt.sh"
SHOWN = "run\\u202ehs.txt"
SPOOFED_TITLE = "(Tools)p\u0430ypal update"  # a Cyrillic "а"
SHOWN_TITLE = "(Tools)p\\u0430ypal update"


def _media(tmp_path: Path, distributor: Distributor) -> Path:
    payload = tmp_path / "payload.txt"
    payload.write_text("harmless")

    def retitle(predicate):
        predicate["name"] = SPOOFED_TITLE

    build = ActionBuild(
        "rlo1",
        payload,
        payload_name=RLO_NAME,
        dest=str(tmp_path / "out" / RLO_NAME),
        raw_predicate_edit=retitle,
    )
    return write_media(tmp_path / "usb", distributor, [sign_action(build, distributor)])


def _no_raw_controls(text: str) -> bool:
    return "\u202e" not in text and "\u0430" not in text


def test_the_approval_prompt_and_the_report_show_names_escaped(
    tmp_path, run_import, distributor
):
    mount = _media(tmp_path, distributor)
    seen: list[ApprovalRequest] = []

    class Recording(ApproveAll):
        def __call__(self, request: ApprovalRequest) -> bool:
            seen.append(request)
            return True

    report = run_import(mount, approver=Recording())

    assert report.status == "completed"
    (request,) = seen
    prompt = request.describe()
    assert _no_raw_controls(prompt)
    assert SHOWN_TITLE in prompt and f"write {tmp_path}/out/{SHOWN}" in prompt
    assert "WARNING: action rlo1: payload name 'run\\u202ehs.txt' contains bidirectional" in prompt
    assert "WARNING: action rlo1: action name" in prompt and "imitate other scripts" in prompt
    assert request.to_json_dict()["warnings"] == list(request.warnings)
    assert any(SHOWN in w and "U+202E" in w for w in report.warnings)
    assert any("destination" in w for w in report.warnings)


def test_the_cli_shows_them_escaped_in_prompt_report_and_history(
    tmp_path, agent_cli, agent_state
):
    distributor = new_distributor(tmp_path / "keys")
    assert agent_cli("enroll", "--key", str(distributor.pub)).code == 0
    mount = _media(tmp_path, distributor)

    refused = agent_cli("import", str(mount))  # no terminal: shown, then refused
    assert refused.code == exit_codes.REFUSED
    assert _no_raw_controls(refused.stdout + refused.stderr)
    assert SHOWN in refused.stderr and "WARNING: action rlo1" in refused.stderr

    imported = agent_cli("import", str(mount), "--yes")
    assert imported.code == exit_codes.OK, imported.stderr
    assert _no_raw_controls(imported.stdout + imported.stderr)
    assert f"{SHOWN_TITLE} [WARNING: name contains letters that imitate" in imported.stdout
    assert f"warning: action rlo1: payload name '{SHOWN}'" in imported.stderr

    history = agent_cli("history")
    assert history.code == exit_codes.OK
    assert _no_raw_controls(history.stdout)
    assert f"{SHOWN_TITLE} [WARNING: name contains" in history.stdout
    # the file itself is written under its signed name: escaping is for people, not paths
    assert (tmp_path / "out" / RLO_NAME).read_text() == "harmless"
