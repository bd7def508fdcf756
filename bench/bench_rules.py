"""Cost of the rule engine per address update, against the per-transaction cost without rules.

Usage: ``python bench/bench_rules.py [--blocks 200] [--seed 3] [--rules rules] [--repeat 3]``

Builds a simulated chain in memory (background traffic calibrated on mainnet plus labelled
episodes), runs decode -> graph -> feature shards once (timed: the per-transaction cost of the
pipeline's compute path without rules), keeps the address updates, then times
``RuleSet.evaluate`` over the same per-block batches with the default pack and with the real
watchlists of rules/lists. A fresh RuleSet per repeat, so cooldown state is realistic; the best
repeat is reported. The ratio printed is rules time / (decode + graph + features) time per
transaction: the DESIGN target is <= 30%. Sources, sinks and Bytewax overhead are not in the
denominator, so the ratio is conservative.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.offline import FeatureEngine
from pipeline.operators.decode import decode_block
from pipeline.records import DecodedBlock
from pipeline.rules import RuleSet, load_ruleset
from pipeline.simulate.chain import SimConfig, Simulator
from pipeline.tron.tokens import TokenRegistry
from pipeline.watchlists import load_watchlists


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=200, help="simulated blocks (~275 tx each)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--rules", default=str(ROOT / "rules"))
    ap.add_argument("--lists", default=str(ROOT / "rules" / "lists"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    raw = list(Simulator(SimConfig(blocks=args.blocks, seed=args.seed)).blocks())
    tokens = TokenRegistry.build()
    lists = load_watchlists(args.lists)
    engine = FeatureEngine(watchlist=frozenset(lists))
    t0 = time.perf_counter()
    batches, n_tx = [], 0
    for i, payload in enumerate(raw):
        out = decode_block(payload, "bench", str(i), tokens)
        if isinstance(out, DecodedBlock):
            n_tx += out.block.tx_count
            batches.append(engine.process(out))
    base_s = time.perf_counter() - t0
    n_updates = sum(map(len, batches))

    best, alerts, n_rules = float("inf"), 0, 0
    for _ in range(args.repeat):
        ruleset = load_ruleset([args.rules], lists)
        n_rules = len(ruleset)
        t0 = time.perf_counter()
        found = 0
        for batch in batches:
            found += len(ruleset.evaluate(batch))
        best = min(best, time.perf_counter() - t0)
        alerts = found
    empty_s = _time_empty(batches)

    print(f"{len(batches)} blocks, {n_tx} transactions, {n_updates} address updates, "
          f"{n_rules} enabled rules, {alerts} alerts")
    print(f"decode+graph+features: {base_s / n_tx * 1e6:8.2f} us/tx  ({n_tx / base_s:,.0f} tx/s)")
    print(f"rules (default pack):  {best / n_updates * 1e6:8.2f} us/update = "
          f"{best / n_tx * 1e6:.2f} us/tx  ({n_updates / best:,.0f} updates/s)")
    print(f"  of which loop+index: {empty_s / n_updates * 1e6:8.2f} us/update (no rule matches)")
    print(f"rules / (decode+graph+features) per tx: {100 * best / base_s:.1f}%  (target <= 30%)")
    return 0


def _time_empty(batches: list) -> float:
    """The per-update floor: the same loop with a rule set that matches nothing."""
    ruleset = RuleSet([])
    t0 = time.perf_counter()
    for batch in batches:
        ruleset.evaluate(batch)
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
