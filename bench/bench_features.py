"""Decode + graph + features on one process: throughput and memory on a simulated chain.

The chain is the one ``run_pipeline.py bench`` replays (``pipeline.simulate``, generated once per
seed and size under ``--out`` and reused): ~275 transactions per 3 s block, the typologies of the
evaluation injected into a background of users, exchanges and contracts. Every block is read,
parsed, decoded, annotated by the graph stage, routed to the address shards and turned into
feature updates -- the same pure objects the dataflow wraps (``pipeline.offline.FeatureEngine``),
with the collector tuned as the flow tunes it, but without Bytewax, rules, scoring or storage.

Prints the throughput (target >= 20,000 tx/s on one process), the cost of each stage, and for
every quarter of the run its throughput, the RSS and live pymalloc blocks at its end, and the state
sizes; then the peak RSS and the growth from the first quarter to the last (target: none -- RSS
within 5%, the allowance for allocator retention, while live blocks and state stay flat).

State is bounded: graph edges and per-address entries by the long window (1 h), first-seen times
by fixed-size tables, the address codec by its LRU cache. The default run, 4M transactions (12 h
of chain, ~3 minutes), is long enough that the first quarter ends with the windows already full;
with fewer transactions the first quarter measures the windows filling up, and the script says so.

Usage: python bench/bench_features.py [--tx 4000000] [--seed 0] [--out bench/out] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.bench.dataset import blocks_for, ensure_chain  # noqa: E402
from pipeline.gc_tuning import tune_for_streaming  # noqa: E402
from pipeline.offline import FeatureEngine, default_watchlist  # noqa: E402
from pipeline.operators.decode import decode_block  # noqa: E402
from pipeline.operators.routing import route  # noqa: E402
from pipeline.operators.windows import WindowConfig  # noqa: E402
from pipeline.records import DecodedBlock  # noqa: E402
from pipeline.sources.files import iter_replay, resolve_inputs  # noqa: E402
from pipeline.tron.tokens import TokenRegistry  # noqa: E402

TARGET_TX_S = 20_000
RSS_ALLOWANCE = 0.05  # Q1 -> Q4 RSS growth tolerated as allocator retention (live blocks must stay flat)
BLOCK_MS = 3_000


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def state_sizes(engine: FeatureEngine) -> dict[str, int]:
    shards = [s.stats() for s in engine.shards.values()]
    graph = engine.graph.stats()
    return {"graph_edges": graph["edges"], "graph_nodes": graph["nodes"],
            "active_addresses": sum(s["addresses"] for s in shards),
            "window_entries": sum(s["entries"] for s in shards),
            "first_seen": sum(s["first_seen"] for s in shards)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tx", type=int, default=4_000_000, help="transactions (default 4000000)")
    ap.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"), help="where simulated chains are kept")
    ap.add_argument("--horizon-h", type=float, default=24.0, help="first-seen horizon in hours (default 24)")
    ap.add_argument("--json", help="also write the figures as JSON to this file")
    args = ap.parse_args()

    chain, generated = ensure_chain(Path(args.out), args.seed, blocks_for(args.tx))
    if generated:
        print(f"simulated {chain.blocks:,} blocks into {chain.directory}")
    config = WindowConfig(horizon_ms=int(args.horizon_h * 3_600_000))
    engine = FeatureEngine(config, default_watchlist())
    tokens = TokenRegistry.build()
    tune_for_streaming()

    clock = {"read_parse": 0.0, "decode": 0.0, "graph": 0.0, "route_features": 0.0}
    quarters: list[dict] = []
    n_tx = n_updates = n_blocks = 0
    quarter = max(1, chain.blocks // 4)
    started = quarter_started = time.perf_counter()
    items = iter_replay(resolve_inputs([str(chain.blocks_file)]))
    while True:
        t0 = time.perf_counter()
        item = next(items, None)
        t1 = time.perf_counter()
        clock["read_parse"] += t1 - t0
        if item is None:
            break
        block = decode_block(item.payload, "bench", item.where, tokens)
        t2 = time.perf_counter()
        clock["decode"] += t2 - t1
        if not isinstance(block, DecodedBlock):
            continue
        annotated = engine.graph.process(block.transfers)
        t3 = time.perf_counter()
        for shard, touches in route(annotated, config.n_shards).items():
            n_updates += len(engine.shard(shard).process(touches))
        clock["graph"] += t3 - t2
        clock["route_features"] += time.perf_counter() - t3
        n_tx += block.block.tx_count
        n_blocks += 1
        if n_blocks % quarter == 0 and len(quarters) < 4:
            now = time.perf_counter()
            done = quarters[-1]["tx"] if quarters else 0
            quarters.append({"quarter": len(quarters) + 1, "tx": n_tx,
                             "tx_per_s": round((n_tx - done) / (now - quarter_started)),
                             "rss_mb": round(rss_mb(), 1), "live_blocks": sys.getallocatedblocks(),
                             **state_sizes(engine)})
            quarter_started = time.perf_counter()  # the sizes above are not the pipeline's time
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    tx_s = n_tx / seconds
    growth = blocks_growth = None
    if len(quarters) == 4:
        growth = quarters[-1]["rss_mb"] / quarters[0]["rss_mb"] - 1
        blocks_growth = quarters[-1]["live_blocks"] / quarters[0]["live_blocks"] - 1
    warm = quarter * BLOCK_MS >= config.long_ms + config.lateness_ms
    print(f"{n_tx:,} transactions, {n_blocks:,} blocks, {n_updates:,} address updates in {seconds:.1f} s")
    print(f"{'decode + graph + features':<30}{tx_s:>10,.0f} tx/s   (target {TARGET_TX_S:,}: "
          f"{'met' if tx_s >= TARGET_TX_S else 'NOT met'})")
    for name, s in clock.items():
        print(f"  {name:<28}{s / n_tx * 1e6:>10.2f} us/tx")
    print(f"{'peak RSS':<30}{peak:>10,.0f} MB")
    print("quarter   tx/s   RSS MB at end  live blocks     edges    active   entries   first-seen")
    for q in quarters:
        print(f"  Q{q['quarter']}   {q['tx_per_s']:>8,} {q['rss_mb']:>10,.0f} {q['live_blocks']:>15,} "
              f"{q['graph_edges']:>9,} {q['active_addresses']:>8,} {q['window_entries']:>9,} {q['first_seen']:>10,}")
    if growth is not None:
        flat = growth <= RSS_ALLOWANCE and blocks_growth <= 0.01
        print(f"growth Q1 -> Q4: RSS {growth:+.1%}, live blocks {blocks_growth:+.1%}   (target: no growth, "
              f"RSS within {RSS_ALLOWANCE:.0%}: {'met' if flat else 'NOT met'})")
        if not warm:
            print(f"note: a quarter is {quarter * BLOCK_MS / 60_000:.0f} min of chain, shorter than the "
                  f"{config.long_ms / 60_000:.0f} min window: Q1 measures the windows filling up "
                  f"(use --tx 4000000 or more)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "transactions": n_tx, "blocks": n_blocks, "updates": n_updates, "seconds": round(seconds, 2),
            "tx_per_s": round(tx_s), "target_tx_per_s": TARGET_TX_S,
            "us_per_tx": {k: round(v / n_tx * 1e6, 2) for k, v in clock.items()},
            "peak_rss_mb": round(peak), "quarters": quarters,
            "rss_growth_q1_to_q4": None if growth is None else round(growth, 4),
            "live_blocks_growth_q1_to_q4": None if blocks_growth is None else round(blocks_growth, 4),
            "first_quarter_has_full_window": warm}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
