"""Signatures per second: Airseal's PKCS#11 signer against python-pkcs11 alone, on SoftHSM2.

Both loops sign the same SHA-256 digest with the same EC P-256 token key (``CKM_ECDSA``), each on
one session opened once and reused: the raw loop calls python-pkcs11's ``key.sign`` directly;
ours calls :meth:`Pkcs11Signer.sign_digest`, which adds its checks and the raw r||s to DER
conversion. Short slices alternate between the two so that machine load hits both alike; the
figure of merit is the median of the ratios of back-to-back slice pairs (the best slice of each
is shown too). Target: ours >= 0.8x the raw loop.

    .venv/bin/python bench/pkcs11_bench.py [--seconds 0.5] [--rounds 21] [--json]

Needs Debian's softhsm2; the token lives in a temporary directory and is deleted afterwards.
Exit status 0 when the target is met, 1 when not.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests.realparts (the SoftHSM2 setup) is in the repo, not installed
    sys.path.insert(0, str(ROOT))

from pkcs11 import Mechanism, ObjectClass  # noqa: E402

from airseal.appliance.signers.pkcs11 import Pkcs11Signer, generate_key  # noqa: E402
from tests.realparts.softhsm import SoftHsm  # noqa: E402

TARGET_RATIO = 0.8
BATCH = 200


def _rate(sign: Callable[[], object], seconds: float) -> float:
    """Signatures per second over at least ``seconds`` (clock read once per batch)."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(BATCH):
            sign()
        count += BATCH
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def run(seconds: float, rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="airseal-bench-") as tmp:
        hsm = SoftHsm(Path(tmp))
        token = hsm.init_token("airseal-bench")
        hsm.activate()

        def pin() -> str:
            return token.pin

        ref = generate_key(hsm.module_path, token=token.serial, label="bench", pin_provider=pin)
        digest = hashlib.sha256(b"airseal pkcs11 bench").digest()
        raw_rates: list[float] = []
        our_rates: list[float] = []
        with Pkcs11Signer(ref, pin) as signer:
            # The raw loop's own session shares the process's login (PKCS#11 login is per process).
            session = hsm.lib().get_token(token_serial=token.serial.encode()).open()
            try:
                key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=ref.key_id_bytes)

                def raw() -> object:
                    return key.sign(digest, mechanism=Mechanism.ECDSA)

                def ours() -> object:
                    return signer.sign_digest(digest)

                _rate(raw, 0.3)  # warm both paths up
                _rate(ours, 0.3)
                for n in range(rounds):
                    order = [(raw, raw_rates), (ours, our_rates)]
                    for sign, rates in order if n % 2 == 0 else reversed(order):
                        rates.append(_rate(sign, seconds))
            finally:
                session.close()
    # Each pair of slices ran back to back, so its ratio is what load drift disturbs least.
    paired = sorted(ours / raw for raw, ours in zip(raw_rates, our_rates, strict=True))
    return {
        "module": "SoftHSM2 (/usr/lib/softhsm/libsofthsm2.so)",
        "key": "EC P-256, CKM_ECDSA over a SHA-256 digest",
        "seconds_per_slice": seconds,
        "slices": rounds,
        "raw_python_pkcs11_median_per_s": round(statistics.median(raw_rates)),
        "pkcs11_signer_median_per_s": round(statistics.median(our_rates)),
        "raw_python_pkcs11_best_per_s": round(max(raw_rates)),
        "pkcs11_signer_best_per_s": round(max(our_rates)),
        "ratio_paired_median": round(statistics.median(paired), 3),
        "ratio_best": round(max(our_rates) / max(raw_rates), 3),
        "target_ratio": TARGET_RATIO,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one slice")
    parser.add_argument("--rounds", type=int, default=21, help="slices per loop")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    result = run(args.seconds, args.rounds)
    met = float(result["ratio_paired_median"]) >= TARGET_RATIO  # type: ignore[arg-type]
    if args.json:
        print(json.dumps({**result, "target_met": met}, indent=2))
    else:
        print(f"PKCS#11 signing on {result['module']}, {result['key']}")
        print(f"  {args.rounds} alternating slices of {args.seconds:g} s per loop")
        for name, prefix in (("python-pkcs11 key.sign loop", "raw_python_pkcs11"),
                             ("Pkcs11Signer.sign_digest", "pkcs11_signer")):
            print(f"  {name:<28}: median {result[prefix + '_median_per_s']:>6,} sig/s,"
                  f" best {result[prefix + '_best_per_s']:>6,}")
        print(f"  ratio {result['ratio_paired_median']:.2f}x (median of back-to-back pairs; "
              f"best-vs-best {result['ratio_best']:.2f}x), target >= {TARGET_RATIO}x: "
              f"{'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
