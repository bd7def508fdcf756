"""Simulator throughput: transactions generated per second, and per second written to gzip.

    python bench/bench_simulate.py [--blocks 400] [--seed 1] [--profile classic|tuning|validation]

Prints generation-only tx/s (node-shaped dicts, what the devnet and in-process demos consume) and
end-to-end tx/s (dicts -> orjson -> gzip file). CPU seconds are reported next to wall seconds
because the machines are shared: CPU time is the figure that does not move with neighbours' load.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.simulate.chain import SimConfig, Simulator
from pipeline.simulate.output import gc_paused
from pipeline.simulate.profile import PROFILES
from pipeline.simulate.run import simulate


def _timed(fn) -> tuple[float, float, object]:
    w, c = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - w, time.process_time() - c, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--visible", action="store_true")
    parser.add_argument("--profile", default="classic", choices=tuple(PROFILES),
                        help="classic (default, ~275 tx/block) or the suite's tuning/validation (~60 tx/block "
                             "plus benign look-alikes); per-block costs weigh more at the suite's density")
    args = parser.parse_args()
    cfg = SimConfig(blocks=args.blocks, seed=args.seed, visible=args.visible, profile=PROFILES[args.profile])

    sim = Simulator(cfg)

    def generate() -> int:
        with gc_paused():
            for _ in sim.blocks():
                pass
        return sim.tx_count

    wall, cpu, n = _timed(generate)
    print(f"generate: {n:,} tx in {wall:.2f} s wall / {cpu:.2f} s cpu -> {n / wall:,.0f} tx/s wall, "
          f"{n / cpu:,.0f} tx/s cpu")
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu, meta = _timed(lambda: simulate(cfg, Path(tmp), progress=False))
        n = meta["tx_count"]
        size = (Path(tmp) / "blocks.jsonl.gz").stat().st_size
    print(f"to file:  {n:,} tx in {wall:.2f} s wall / {cpu:.2f} s cpu -> {n / wall:,.0f} tx/s wall, "
          f"{n / cpu:,.0f} tx/s cpu ({size / n:.0f} gzip bytes/tx)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
