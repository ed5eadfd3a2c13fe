"""Run tuf-js's ``Updater`` (an independent TUF client, npm ``tuf-js``) over an ``airseal/tuf/``
tree, as a second opinion on the site repository an export carries. The Node side is
``node/tuf_fetch.mjs``; a missing install is an error naming the command, never a skip."""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.interop.sigstore_js import NODE_DIR, ensure_installed

SCRIPT = NODE_DIR / "tuf_fetch.mjs"


@dataclass(frozen=True)
class TufJsResult:
    ok: bool
    data: bytes = b""
    error: str = ""


def fetch_target(tree: Path, root_json: Path, cache: Path, target: str) -> TufJsResult:
    node = ensure_installed()
    if not (NODE_DIR / "node_modules" / "tuf-js").is_dir():
        raise RuntimeError("tuf-js is missing: run `npm ci --prefix tests/interop/node`")
    done = subprocess.run(
        [node, str(SCRIPT), str(tree), str(root_json), str(cache), target],
        capture_output=True, text=True, timeout=120, check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"tuf_fetch.mjs failed: {done.stderr}")
    out = json.loads(done.stdout)
    if out["ok"]:
        return TufJsResult(True, base64.b64decode(out["bytes"]))
    return TufJsResult(False, error=out["error"])
