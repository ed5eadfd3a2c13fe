"""Progress bars count in MiB and name their phase (an export's write and read back), not
rich's decimal "0.1/1.0 GB" for a 500 MiB export."""

from __future__ import annotations

import io

from rich.console import Console

from airseal.appliance.cli import ui

MIB = 1024 * 1024


def _terminal(monkeypatch) -> io.StringIO:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    monkeypatch.setattr(ui, "stderr_console", lambda: console)
    monkeypatch.setattr(ui, "_stderr_may_be_a_terminal", lambda: True)
    return out


def test_export_progress_names_both_phases_in_mib(monkeypatch):
    out = _terminal(monkeypatch)
    with ui.export_progress() as phases:
        phases(300 * MIB, 100 * MIB, 500 * MIB)
        ui.stderr_console().print()  # a refresh with the figures above
    text = out.getvalue()
    assert "write" in text and "read back" in text
    assert "300.0/500.0 MiB" in text and "100.0/500.0 MiB" in text
    assert "GB" not in text


def test_byte_progress_counts_in_mib(monkeypatch):
    out = _terminal(monkeypatch)
    with ui.byte_progress("hash big.iso", 1024 * MIB) as advance:
        advance(512 * MIB)
        ui.stderr_console().print()
    text = out.getvalue()
    assert "hash big.iso" in text and "512.0/1024.0 MiB" in text and "GB" not in text


def test_no_bars_off_a_terminal(monkeypatch):
    out = io.StringIO()
    console = Console(file=out, force_terminal=False)
    monkeypatch.setattr(ui, "stderr_console", lambda: console)
    with ui.export_progress() as phases:
        phases(1, 1, 2)
    assert out.getvalue() == ""
