"""The man pages in docs/man are rendered from the commands' own help, and are current.

After changing a command's help, run `scripts/manpages` and commit the pages.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import click
import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "manpages"


@pytest.fixture(scope="module")
def manpages() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("airseal_manpages", str(SCRIPT))
    spec = importlib.util.spec_from_loader("airseal_manpages", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_checked_in_pages_are_current() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_a_stale_page_is_named(
    manpages: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for page in ("airseal.1", "airseal-agent.1"):
        (tmp_path / page).write_text((REPO / "docs" / "man" / page).read_text())
    monkeypatch.setattr(manpages, "MAN_DIR", tmp_path)
    monkeypatch.setattr(manpages, "REPO", tmp_path.parent)
    assert manpages.main(["manpages", "--check"]) == 0
    with open(tmp_path / "airseal-agent.1", "a") as page:
        page.write(".PP\nedited by hand\n")
    assert manpages.main(["manpages", "--check"]) == 1
    assert "airseal-agent.1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("program", "module"),
    [("airseal", "airseal.appliance.cli"), ("airseal-agent", "airseal.agent.cli")],
)
def test_every_command_and_option_is_on_its_page(
    manpages: ModuleType, program: str, module: str
) -> None:
    page = manpages.render(program)
    root: click.Group = __import__(module, fromlist=["cli"]).cli
    ctx = click.Context(root, info_name=program)
    for name in root.list_commands(ctx):
        command = root.get_command(ctx, name)
        assert command is not None
        assert f'.SS "{manpages.escape(f"{program} {name}")}"' in page
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert manpages.escape(param.opts[-1]) in page, (name, param.opts)


def test_example_blocks_stay_verbatim_and_roff_is_escaped(manpages: ModuleType) -> None:
    help_text = "Do a thing.\n\nExamples:\n\n\b\n  airseal x --y\n  .dot first\n"
    rendered = manpages.paragraphs(help_text)
    assert rendered[0] == ".PP\nDo a thing."
    assert rendered[-1] == ".PP\n.nf\n  airseal x \\-\\-y\n  .dot first\n.fi"
    assert manpages.escape(".starts with a dot\\") == "\\&.starts with a dot\\e"
