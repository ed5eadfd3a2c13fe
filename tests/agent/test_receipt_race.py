"""Issue 13, item 3: a root agent must never write outside the media.

An attacker who controls the stick (or any filesystem with symlinks) swaps
``airseal/receipts/<agent-id>`` between a real folder and a symlink to a folder outside the media,
in a tight loop (``renameat2(RENAME_EXCHANGE)``), while real ``airseal-agent import`` runs. When
the receipt folder was checked with ``lstat`` and the file then created by path, the agent wrote
``<export-id>.json`` into the symlink's target in some imports. The receipt is now written through
directory file descriptors opened with ``O_NOFOLLOW | O_DIRECTORY`` on every component
(:meth:`airseal.media.reader.DirectorySource.write_receipt`): whichever way the race falls, the
write lands in the real folder or is refused, and nothing is ever created outside.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from airseal.agent import exit_codes

from .helpers import ActionBuild, new_distributor, sign_action, write_media

IMPORTS = 30

# Swaps two paths atomically until SIGTERM, then prints how many swaps it made.
RACER = r"""
import ctypes, errno, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
a, b = sys.argv[1].encode(), sys.argv[2].encode()
swaps = 0
def stop(*_):
    print(swaps, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
while True:
    if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0:
        swaps += 1
    elif ctypes.get_errno() != errno.ENOENT:
        sys.exit("renameat2: " + errno.errorcode.get(ctypes.get_errno(), "?"))
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="renameat2 is Linux's")
def test_swapping_the_receipt_folder_for_a_symlink_never_writes_outside_the_media(
    agent_cli, agent_state, tmp_path
):
    distributor = new_distributor(tmp_path / "keys")
    assert agent_cli("enroll", "--key", str(distributor.pub), "--approved").code == 0
    payload = tmp_path / "payload.txt"
    payload.write_text("signed content\n")
    placed = tmp_path / "placed" / "payload.txt"
    mount = write_media(
        tmp_path / "usb",
        distributor,
        [sign_action(ActionBuild("drop", payload, dest=str(placed)), distributor)],
    )
    receipts = mount / "airseal" / "receipts"
    folder = receipts / agent_state.agent_id
    folder.mkdir(parents=True)
    outside = tmp_path / "outside"  # e.g. /etc/cron.d on a real endpoint
    outside.mkdir()
    decoy = tmp_path / "decoy"  # same filesystem as the media: renameat2 can swap them
    decoy.symlink_to(outside, target_is_directory=True)

    racer = subprocess.Popen(
        [sys.executable, "-c", RACER, str(folder), str(decoy)],
        stdout=subprocess.PIPE,
        text=True,
    )
    where = f"airseal/receipts/{agent_state.agent_id}"
    codes: list[int] = []
    written = 0
    try:
        assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
        for _ in range(IMPORTS):
            result = agent_cli("import", str(mount), "--non-interactive", "--json")
            assert "Traceback" not in result.stderr and result.code != exit_codes.INTERNAL
            codes.append(result.code)
            if result.code == exit_codes.REFUSED:  # the walk of the media met the swap
                assert re.search(rf"^{where}: [a-z ]+ \[[a-z -]+\]: ", result.stderr, re.M), (
                    result.stderr
                )
            assert not any(outside.iterdir()), (
                f"written outside the media: {list(outside.iterdir())}"
            )
            if result.stdout.strip():
                report = json.loads(result.stdout)
                written += bool(report.get("receipt"))
            assert racer.poll() is None, "the racer stopped"
    finally:
        racer.send_signal(signal.SIGTERM)
        out, _ = racer.communicate(timeout=30)
    swaps = int(out.strip())
    assert swaps > IMPORTS  # the folder really was swapped, many times per import

    assert not any(outside.iterdir())
    assert placed.read_text() == "signed content\n"  # the import itself went ahead
    # each import either went ahead (its receipt in the real folder, or a warning saying why
    # not) or was refused naming the symlink it met: never an internal error
    assert set(codes) <= {exit_codes.OK, exit_codes.REFUSED}, codes
    assert codes.count(exit_codes.OK) >= 1 and written >= 1
    real = folder if folder.is_dir() and not folder.is_symlink() else decoy
    assert not real.is_symlink() and [p.name for p in real.iterdir()] == ["export-1.json"]
    assert os.readlink(decoy if real == folder else folder) == str(outside)
