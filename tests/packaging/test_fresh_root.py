"""The README's first command works on a fresh Debian machine: `scripts/demo` in a minimal
bookworm root (mmdebstrap --variant=apt) that has only what the host uses to reach the package
registries, installs every Debian and Python package it needs and completes the demo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.realparts.debian_root import extract_root, prepare_root, run_in_root

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.root
def test_scripts_demo_completes_in_a_fresh_debian_root(tmp_path, request):
    root = extract_root(tmp_path / "root")
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))  # about 1 GB
    # the root lacks what the runtime needs: the set-up must install it, not find it
    assert not (root / "usr/bin/gcc").exists() and not (root / "usr/bin/swig").exists()
    binds = prepare_root(root, source_tree=ROOT)
    done = run_in_root(root, "cd /src/airseal && scripts/demo", binds=binds, timeout=1500)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    assert "Verified OK" in done.stdout
    assert "Media COMPLETE" in done.stdout
    assert ": completed" in done.stdout  # the agent's import of the export
    demo = root / "src/airseal/demo"
    assert (demo / "endpoint-files/hello.sh").read_bytes() == (demo / "hello.sh").read_bytes()
    assert "Audit chain OK" in done.stdout
