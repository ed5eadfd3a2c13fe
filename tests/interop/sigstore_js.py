"""Run sigstore-js's ``@sigstore/verify`` on a bundle, as an independent second opinion.

Airseal checks key-based bundles with its own code; tests call this to prove that an unrelated
implementation accepts (or refuses) the very same files. The Node side lives in ``node/`` next to
this module; its ``node_modules`` come from ``npm ci`` and are never committed, so a missing install
is an error with the command to fix it, never a skipped test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent / "node"
SCRIPT = NODE_DIR / "verify_bundle.mjs"
_TIMEOUT_S = 120


@dataclass(frozen=True)
class SigstoreJsResult:
    """What ``@sigstore/verify`` said: ``ok``, and when not, its error message."""

    ok: bool
    error: str = ""


def ensure_installed(node_dir: Path = NODE_DIR) -> str:
    """The ``node`` executable, or a RuntimeError saying what is missing (no silent skip)."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH: install Node.js 20+ to run the sigstore-js checks")
    if not (node_dir / "node_modules" / "@sigstore" / "verify").is_dir():
        raise RuntimeError(
            f"{node_dir / 'node_modules'} is missing: run `npm ci --prefix tests/interop/node` "
            "from the repository root"
        )
    return node


def verify_with_sigstore_js(
    bundle: Path,
    key_pem: Path,
    artifact: Path | None = None,
    *,
    library_only: bool = False,
    trusted_root: Path | None = None,
    tlog_threshold: int = 1,
) -> SigstoreJsResult:
    """Verify ``bundle`` against the PEM public key ``key_pem`` with ``@sigstore/verify``.

    ``artifact`` is required for message-signature bundles and optional for DSSE bundles (when
    given, the statement must name it as a subject). ``library_only`` drops the two checks the
    script adds on top of the library (message digest, DSSE subject), to observe the library alone.
    A usage error (exit 2) or unreadable output is raised: it is a broken test, not a verdict.
    """
    argv = [ensure_installed(), str(SCRIPT), "--bundle", str(bundle), "--key", str(key_pem)]
    if artifact is not None:
        argv += ["--artifact", str(artifact)]
    if library_only:
        argv.append("--library-only")
    if trusted_root is not None:
        argv += ["--trusted-root", str(trusted_root), "--tlog-threshold", str(tlog_threshold)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise RuntimeError(
            f"verify_bundle.mjs gave no JSON (exit {proc.returncode}): "
            f"stdout={proc.stdout!r} stderr={proc.stderr!r}"
        ) from exc
    if proc.returncode == 2:
        raise RuntimeError(f"verify_bundle.mjs usage error: {out.get('error')}")
    ok = bool(out.get("ok"))
    if ok != (proc.returncode == 0) or proc.returncode not in (0, 1):
        raise RuntimeError(f"verify_bundle.mjs inconsistent: exit {proc.returncode}, output {out}")
    return SigstoreJsResult(ok=ok, error="" if ok else str(out.get("error", "")))
