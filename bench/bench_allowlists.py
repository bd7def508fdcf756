"""Cost of the allow-list hook: ``suppress`` over alerts, and one ``AllowSet.match``.

Usage: ``python bench/bench_allowlists.py [--entries 1000] [--alerts 10000]``

The hook runs once per alert (rule alerts in the scoring stage and the pending pool, anomaly
alerts before their cooldown) and once per rule hit in the engine (before the cooldown), never per
transfer, so its cost is per alert: a dict probe for a subject on no list, plus the scope and
expiry checks for a listed one. One in eleven alerts here is about a listed subject.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.allowlists import load_allowlists, suppress
from pipeline.records import Alert
from pipeline.tron.address import encode_raw

TS = 1_714_000_000_000


def _address(i: int) -> str:
    return encode_raw(bytes([0x41]) + i.to_bytes(20, "big"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=1000)
    p.add_argument("--alerts", type=int, default=10_000)
    args = p.parse_args()
    listed = [_address(i) for i in range(1, args.entries + 1)]
    subjects = listed + [_address(10**9 + i) for i in range(10 * args.entries)]
    with tempfile.TemporaryDirectory() as d:
        Path(d, "bench.csv").write_text("".join(f"{a},fan_in_burst;anomaly.*,2030-01-01,bench,exchange\n"
                                                for a in listed))
        allow = load_allowlists(d)
    alerts = [Alert(str(i), TS, 0, 1, "t", subjects[i % len(subjects)], "fan_in_burst", "v", "high", 0.0,
                    "confirmed", "block", "", (), "{}") for i in range(args.alerts)]
    best = min(timeit.repeat(lambda: suppress(alerts, allow), number=10, repeat=5)) / 10
    dropped = len(suppress(alerts, allow)[1])
    print(f"suppress: {best / len(alerts) * 1e9:,.0f} ns per alert "
          f"({dropped:,} of {len(alerts):,} suppressed, {allow.size:,} entries)")
    for name, address in (("subject on no list", subjects[-1]), ("listed subject", listed[0])):
        best = min(timeit.repeat(lambda a=address: allow.match("fan_in_burst", a, TS), number=100_000,
                                 repeat=5)) / 100_000
        print(f"match, {name}: {best * 1e9:,.0f} ns")


if __name__ == "__main__":
    main()
