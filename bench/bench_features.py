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
within 5%, the allowance for allocator retention, while live blocks and state stay flat); and a
yardstick timed in a fresh process before and after the run (the host's speed) and in this process
at the end (what the run's fragmented heap costs allocation-heavy code).

``--dataflow`` measures the same work inside a real Bytewax dataflow on one worker: the replay
source, a decode step, and the flow's own analytics steps (``pipeline.analytics``: the graph key,
the 32 address shards, the per-block join that picks the ``address_features`` rows) with no rules,
no anomaly model and a sink that only counts -- so the figure includes what Bytewax costs between
the stages, which the pure loop leaves out.

State is bounded: graph edges and per-address entries by the long window (1 h), first-seen times
by fixed-size tables, the address codec by its LRU cache. The default run, 4M transactions (12 h
of chain, ~3 minutes), is long enough that the first quarter ends with the windows already full;
with fewer transactions the first quarter measures the windows filling up, and the script says so.

Usage: python bench/bench_features.py [--tx 4000000] [--seed 0] [--out bench/out] [--dataflow] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.bench.dataset import Chain, blocks_for, ensure_chain
from pipeline.gc_tuning import tune_for_streaming
from pipeline.offline import FeatureEngine, default_watchlist
from pipeline.operators.decode import decode_block
from pipeline.operators.routing import route
from pipeline.operators.windows import WindowConfig
from pipeline.records import DecodedBlock, RawBlock
from pipeline.sources.files import iter_replay, resolve_inputs
from pipeline.tron.tokens import TokenRegistry

TARGET_TX_S = 20_000
RSS_ALLOWANCE = 0.05  # Q1 -> Q4 RSS growth tolerated as allocator retention (live blocks must stay flat)
BLOCK_MS = 3_000


def host_speed() -> float:
    """A yardstick: millions of a fixed mix of dict, tuple and string operations per second (best
    of three ~0.1 s runs). Timed in a fresh process it measures the host; timed in this process
    after the run, against the fresh figure, what the run's heap costs allocation-heavy code --
    a fragmented heap (millions of window entries freed an hour after they were made, scattered
    over the allocator's pools) slowed it by a third, and with it the later quarters of the run."""
    keys = [f"T{i:033d}" for i in range(4096)]
    best = 0.0
    for _ in range(3):
        counts: dict[str, int] = {}
        rows: list[tuple] = []
        t0 = time.perf_counter()
        for _ in range(12):
            for k in keys:
                counts[k] = counts.get(k, 0) + 1
                rows.append((k[:4] + k[-4:], counts[k]))
            rows.clear()
        best = max(best, 12 * len(keys) / (time.perf_counter() - t0) / 1e6)
    return best


def fresh_host_speed() -> float:
    """:func:`host_speed` in a new interpreter: the host, without this process's heap."""
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); sys.argv = ['x']; " \
           "import bench_features as b; print(b.host_speed())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


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


class Quarters:
    """Throughput, RSS, live pymalloc blocks (and state sizes, where reachable) at the end of each
    quarter of the chain's blocks. The time spent measuring is not counted as the pipeline's."""

    def __init__(self, blocks: int, sizes: Callable[[], dict[str, int]] | None = None) -> None:
        self.every = max(1, blocks // 4)
        self.sizes = sizes
        self.rows: list[dict] = []
        self.blocks = self.tx = 0
        self._started = time.perf_counter()

    def block_done(self, tx: int) -> None:
        self.blocks += 1
        self.tx += tx
        if self.blocks % self.every or len(self.rows) == 4:
            return
        now = time.perf_counter()
        done = self.rows[-1]["tx"] if self.rows else 0
        self.rows.append({"quarter": len(self.rows) + 1, "tx": self.tx,
                          "tx_per_s": round((self.tx - done) / (now - self._started)),
                          "rss_mb": round(rss_mb(), 1), "live_blocks": sys.getallocatedblocks(),
                          **(self.sizes() if self.sizes else {})})
        self._started = time.perf_counter()


def measure_pure(chain: Chain, config: WindowConfig, tokens: TokenRegistry) -> dict:
    """The pure objects in a plain loop, each stage timed on its own."""
    engine = FeatureEngine(config, default_watchlist())
    quarters = Quarters(chain.blocks, lambda: state_sizes(engine))
    clock = {"read_parse": 0.0, "decode": 0.0, "graph": 0.0, "route_features": 0.0}
    n_updates = 0
    tune_for_streaming()
    started = time.perf_counter()
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
        quarters.block_done(block.block.tx_count)
    return {"seconds": time.perf_counter() - started, "quarters": quarters, "updates": n_updates,
            "us_per_tx": {k: v / max(quarters.tx, 1) * 1e6 for k, v in clock.items()}}


def measure_dataflow(chain: Chain, config: WindowConfig, tokens: TokenRegistry) -> dict:
    """The flow's own steps in a Bytewax dataflow on one worker, into a sink that only counts."""
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.outputs import DynamicSink, StatelessSinkPartition
    from bytewax.testing import run_main

    from pipeline.analytics import AnalyticsSpec, build_analytics
    from pipeline.sources.replay import ReplaySource

    quarters = Quarters(chain.blocks)
    rows: dict[str, int] = {}

    class _Count(StatelessSinkPartition):
        def write_batch(self, items: list) -> None:
            for table, batch in items:
                rows[table] = rows.get(table, 0) + len(batch)

    class CountingSink(DynamicSink):
        def build(self, step_id: str, worker_index: int, worker_count: int) -> _Count:
            return _Count()

    def decoded(item: object) -> DecodedBlock | None:  # dead letters are not this benchmark's concern
        if not isinstance(item, RawBlock):
            return None
        block = decode_block(item.payload, item.source, item.position, tokens)
        return block if isinstance(block, DecodedBlock) else None

    spec = AnalyticsSpec(windows=config, watchlist=default_watchlist())  # no rules, no model
    flow = Dataflow("bench_features")
    raw = op.input("input", flow, ReplaySource((str(chain.blocks_file),), "bench"))
    blocks = op.filter_map("decode", raw, decoded)
    op.inspect("quarters", blocks, lambda _step, b: quarters.block_done(b.block.tx_count))
    op.output("count", build_analytics(spec)(blocks), CountingSink())
    tune_for_streaming()
    started = time.perf_counter()
    run_main(flow)
    return {"seconds": time.perf_counter() - started, "quarters": quarters,
            "updates": None, "rows": rows, "us_per_tx": {}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tx", type=int, default=4_000_000, help="transactions (default 4000000)")
    ap.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"), help="where simulated chains are kept")
    ap.add_argument("--horizon-h", type=float, default=24.0, help="first-seen horizon in hours (default 24)")
    ap.add_argument("--dataflow", action="store_true",
                    help="run the flow's own steps in a Bytewax dataflow (one worker) instead of a plain loop")
    ap.add_argument("--json", help="also write the figures as JSON to this file")
    args = ap.parse_args()

    chain, generated = ensure_chain(Path(args.out), args.seed, blocks_for(args.tx))
    if generated:
        print(f"simulated {chain.blocks:,} blocks into {chain.directory}")
    config = WindowConfig(horizon_ms=int(args.horizon_h * 3_600_000))
    tokens = TokenRegistry.build()
    host_before = fresh_host_speed()
    result = (measure_dataflow if args.dataflow else measure_pure)(chain, config, tokens)
    in_process = host_speed()
    host_after = fresh_host_speed()
    seconds, q = result["seconds"], result["quarters"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    n_tx = q.tx
    tx_s = n_tx / seconds
    quarters = q.rows
    growth = blocks_growth = None
    if len(quarters) == 4:
        growth = quarters[-1]["rss_mb"] / quarters[0]["rss_mb"] - 1
        if quarters[0]["live_blocks"]:  # 0 under PYTHONMALLOC=malloc: pymalloc counts nothing then
            blocks_growth = quarters[-1]["live_blocks"] / quarters[0]["live_blocks"] - 1
    warm = q.every * BLOCK_MS >= config.long_ms + config.lateness_ms
    mode = "Bytewax dataflow, 1 worker" if args.dataflow else "plain loop over the pure stages"
    what = (f"{result['updates']:,} address updates" if result["updates"] is not None
            else ", ".join(f"{n:,} {t} rows" for t, n in sorted(result["rows"].items())))
    print(f"{mode}: {n_tx:,} transactions, {q.blocks:,} blocks, {what} in {seconds:.1f} s")
    print(f"{'decode + graph + features':<30}{tx_s:>10,.0f} tx/s   (target {TARGET_TX_S:,}: "
          f"{'met' if tx_s >= TARGET_TX_S else 'NOT met'})")
    for name, us in result["us_per_tx"].items():
        print(f"  {name:<28}{us:>10.2f} us/tx")
    print(f"{'peak RSS':<30}{peak:>10,.0f} MB")
    drift = host_after / host_before - 1
    heap = in_process / host_after - 1
    print(f"{'host yardstick':<30}{host_before:>10.2f} -> {host_after:.2f} Mops/s, fresh process at start -> "
          f"end ({drift:+.0%}{': the host changed speed' if abs(drift) > 0.1 else ''})")
    print(f"{'  in this process at the end':<30}{in_process:>10.2f} Mops/s ({heap:+.0%} against a fresh "
          f"process: what the run's heap costs allocation-heavy code)")
    print("quarter   tx/s   RSS MB at end  live blocks     edges    active   entries   first-seen")
    for r in quarters:
        sizes = "".join(f"{r[k]:>{w},}" if k in r else f"{'-':>{w}}" for k, w in
                        (("graph_edges", 10), ("active_addresses", 9), ("window_entries", 10), ("first_seen", 11)))
        print(f"  Q{r['quarter']}   {r['tx_per_s']:>8,} {r['rss_mb']:>10,.0f} {r['live_blocks']:>15,}{sizes}")
    if growth is not None:
        flat = growth <= RSS_ALLOWANCE and (blocks_growth is None or blocks_growth <= 0.01)
        live = "n/a (not pymalloc)" if blocks_growth is None else f"{blocks_growth:+.1%}"
        print(f"growth Q1 -> Q4: RSS {growth:+.1%}, live blocks {live}   (target: no growth, "
              f"RSS within {RSS_ALLOWANCE:.0%}: {'met' if flat else 'NOT met'})")
        if not warm:
            print(f"note: a quarter is {q.every * BLOCK_MS / 60_000:.0f} min of chain, shorter than the "
                  f"{config.long_ms / 60_000:.0f} min window: Q1 measures the windows filling up "
                  f"(use --tx 4000000 or more)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "mode": "dataflow" if args.dataflow else "pure",
            "transactions": n_tx, "blocks": q.blocks, "updates": result["updates"],
            "rows": result.get("rows"), "seconds": round(seconds, 2),
            "tx_per_s": round(tx_s), "target_tx_per_s": TARGET_TX_S,
            "us_per_tx": {k: round(v, 2) for k, v in result["us_per_tx"].items()},
            "peak_rss_mb": round(peak), "quarters": quarters,
            "host_mops_start": round(host_before, 3), "host_mops_end": round(host_after, 3),
            "in_process_mops_end": round(in_process, 3),
            "rss_growth_q1_to_q4": None if growth is None else round(growth, 4),
            "live_blocks_growth_q1_to_q4": None if blocks_growth is None else round(blocks_growth, 4),
            "first_quarter_has_full_window": warm}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
