"""Issue 13: the parser fuzz of ``bench/fuzz_parsers.py`` on a small sample (300 inputs per
parser; the bench runs 100,000). No input may end in anything but acceptance or a typed refusal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "fuzz_parsers.py"
PARSERS = 11
PER_PARSER = 300


@pytest.mark.slow
def test_no_parser_input_ends_in_an_internal_error(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--examples",
            str(PARSERS * PER_PARSER),
            "--save",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {
        line[:28].strip(): line[28:].split()
        for line in done.stdout.splitlines()
        if line[:28].strip() and line[28:].split() and line[28:].split()[0].isdigit()
    }
    parsers = {name: row for name, row in rows.items() if name != "total"}
    assert len(parsers) == PARSERS, done.stdout
    for name, (inputs, _accepted, refused, internal) in parsers.items():
        assert int(inputs) == PER_PARSER and int(internal) == 0, (name, done.stdout)
        assert int(refused) > 0, (name, done.stdout)  # the mutations do reach the checks
    assert int(rows["total"][3]) == 0
    assert not list(tmp_path.iterdir())
