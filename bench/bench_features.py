"""Throughput and memory of graph + routing + feature shards on synthetic transfers (no decode).

Usage: ``python bench/bench_features.py [--transfers 200000] [--addresses 50000] [--shards 32]``

Prints transfers/s for the graph stage alone and for the whole path, the peak RSS
(``resource.getrusage``), the current RSS and state sizes at each quarter of the run: with event
time advancing 3 s per block, state must level off once the long window is full, so the last
quarter should not be larger than the first full-window quarter. Use ``--hours`` to make the
simulated span longer than the window (default 3 h of chain time) and ``--horizon-h`` to see
the first-seen map level off as well. ``--tune-gc`` shows what ``gc.freeze()`` plus a higher
gen-0 threshold buys (the flow should do the same).
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.operators.features import ShardState
from pipeline.operators.graph import GraphStage
from pipeline.operators.routing import route
from pipeline.operators.windows import WindowConfig
from pipeline.records import Kind, Transfer
from pipeline.tron.address import encode_raw

BLOCK_MS = 3000


def addresses(n: int, rng: random.Random) -> list[str]:
    return [encode_raw(b"\x41" + rng.randbytes(20)) for _ in range(n)]


def blocks(n_transfers: int, n_addresses: int, hours: float, seed: int = 7) -> list[list[Transfer]]:
    """Synthetic chain: hubs (1% of addresses carry ~30% of traffic), mostly USDT/TRX, some noise."""
    rng = random.Random(seed)
    pool = addresses(n_addresses, rng)
    hubs = pool[: max(1, n_addresses // 100)]
    n_blocks = max(1, int(hours * 3_600_000 / BLOCK_MS))
    per_block = max(1, n_transfers // n_blocks)
    kinds = [Kind.TRC20_TRANSFER] * 6 + [Kind.TRX] * 3 + [Kind.TRC20_APPROVE]
    out: list[list[Transfer]] = []
    i = 0
    ts0 = 1_714_000_000_000
    for b in range(n_blocks):
        ts = ts0 + b * BLOCK_MS
        batch = []
        for _ in range(per_block):
            a = rng.choice(hubs) if rng.random() < 0.3 else rng.choice(pool)
            c = rng.choice(hubs) if rng.random() < 0.3 else rng.choice(pool)
            kind = rng.choice(kinds)
            usd = round(rng.expovariate(1 / 500), 2)
            raw = 2**256 - 1 if kind == Kind.TRC20_APPROVE and rng.random() < 0.5 else int(usd * 1e6)
            tx = f"{i:064x}"
            batch.append(Transfer(f"{tx}:0", kind, tx, 0, 60_000_000 + b, ts, a, c, a, "TR7", "USDT", 6,
                                  raw, usd, usd, rng.random() > 0.02, "SUCCESS", "", "", ""))
            i += 1
        out.append(batch)
    return out


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transfers", type=int, default=200_000)
    ap.add_argument("--addresses", type=int, default=50_000)
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--shards", type=int, default=32)
    ap.add_argument("--horizon-h", type=float, default=24.0,
                    help="first-seen horizon; set it below --hours to see that map level off too")
    ap.add_argument("--tune-gc", action="store_true",
                    help="gc.freeze() the generated input and raise the gen-0 threshold, as a long-running "
                         "flow should: millions of live records make default full collections costly")
    args = ap.parse_args()
    cfg = WindowConfig(n_shards=args.shards, horizon_ms=int(args.horizon_h * 3_600_000))
    t0 = time.perf_counter()
    chain = blocks(args.transfers, args.addresses, args.hours)
    total = sum(len(b) for b in chain)
    print(f"generated {total} transfers in {len(chain)} blocks ({time.perf_counter() - t0:.1f}s), "
          f"rss {rss_mb():.0f} MB")
    watch = frozenset(t.from_address for t in chain[0][:5])
    if args.tune_gc:
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)

    graph = GraphStage(cfg, watch)
    t0, c0 = time.perf_counter(), time.process_time()
    for batch in chain:
        graph.process(batch)
    g_s, g_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"graph stage alone: {total / g_s:,.0f} transfers/s ({g_s / total * 1e6:.2f} us/transfer wall, "
          f"{g_cpu / total * 1e6:.2f} us CPU)")

    graph = GraphStage(cfg, watch)
    shards = [ShardState(cfg) for _ in range(args.shards)]
    quarter = max(1, len(chain) // 4)
    updates = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for n, batch in enumerate(chain, 1):
        for s, touches in route(graph.process(batch), cfg.n_shards).items():
            updates += len(shards[s].process(touches))
        if n % quarter == 0:
            sizes = [sh.stats() for sh in shards]
            print(f"  quarter {n // quarter}: rss {rss_mb():.0f} MB, graph {graph.stats()}, "
                  f"addresses {sum(s['addresses'] for s in sizes)}, "
                  f"entries {sum(s['entries'] for s in sizes)}, "
                  f"first_seen {sum(s['first_seen'] for s in sizes)}")
    all_s, all_cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"graph + route + features: {total / all_s:,.0f} transfers/s "
          f"({all_s / total * 1e6:.2f} us/transfer wall, {all_cpu / total * 1e6:.2f} us CPU, "
          f"{updates} address updates)")
    print(f"peak RSS {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
