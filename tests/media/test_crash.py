"""Crash safety: an export SIGKILLed at any moment leaves the previous export or "incomplete".

Starting each time from a complete export, the next export is killed in a child process
before every single change it makes to the media (deterministic, via the writer's step hook),
and at evenly spread moments of its measured run time (from outside, landing mid-write and
mid-fsync). After every kill the courier's check must report the previous complete export or
an incomplete one, never damaged and never a mix that looks whole; then the next export must
succeed. Consecutive exports carry different bytes at the same paths, so any mixing of old
and new files under one statement would show as damaged.
"""

from __future__ import annotations

from pathlib import Path

from airseal.trustroot.signer import PrivateKeySigner

from .crash import ExportSeries, count_steps, run_export_in_child

MIN_KILL_POINTS = 20


def test_export_killed_before_every_step(tmp_path: Path, signer: PrivateKeySigner) -> None:
    steps = count_steps(tmp_path, signer, 300_000)
    assert len(steps) >= MIN_KILL_POINTS, steps
    mount = tmp_path / "stick"
    mount.mkdir()
    source = tmp_path / "src"
    source.mkdir()
    series = ExportSeries(mount, signer, source, 300_000)
    series.advance()
    seen = {series.kill_next(at_step=step) for step in range(1, len(steps) + 1)}
    assert seen == {"complete", "incomplete"}
    assert series.sequence == 1 + len(steps)


def test_export_killed_at_spread_moments(tmp_path: Path, signer: PrivateKeySigner) -> None:
    mount = tmp_path / "stick"
    mount.mkdir()
    source = tmp_path / "src"
    source.mkdir()
    series = ExportSeries(mount, signer, source, 6_000_000)
    series.advance()
    durations = []
    for _ in range(2):
        outcome = run_export_in_child(series.next_run)
        assert outcome.exit_code == 0
        series.sequence += 1
        durations.append(outcome.seconds)
    full = min(durations)
    kills = 24
    seen = [series.kill_next(after=full * (index + 0.5) / kills) for index in range(kills)]
    assert "incomplete" in seen, seen  # the kills landed inside the run, not all after it
