"""``run_pipeline.py bench``: throughput, stage costs, memory and latency of the full pipeline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.errors import ConfigError

QUICK_TX = 150_000
QUICK_PACE = "1:10,10:60"
DEFAULT_PACE = "1:100,10:300"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmark throughput, stage costs, memory and alert latency",
        description="Replay a simulated chain (generated once per seed and size, then reused) through the full "
                    "default pipeline into a fresh embedded ClickHouse, and measure in the same run: end-to-end "
                    "tx/s vs a parse-only baseline, per-stage cost, RSS per quarter, block-to-alert latency at "
                    "mainnet pace x1 and x10, and optionally the same workload on several Bytewax processes. "
                    "Each measured run is its own subprocess. Prints a table; --json writes the figures.")
    p.add_argument("--tx", type=int, default=None, metavar="N",
                   help=f"transactions to replay (default 1000000; {QUICK_TX} with --quick); ~275 per block")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="simulation seed (default 0)")
    p.add_argument("--out", type=Path, default=Path("bench/out"), metavar="DIR",
                   help="work directory: simulated chains (reused) and run directories (default bench/out)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the figures as JSON (default DIR/bench.json)")
    p.add_argument("--pace", default=None, metavar="SPEED:BLOCKS,...",
                   help=f"paced latency runs: speed and blocks each (default {DEFAULT_PACE}; {QUICK_PACE} with "
                        "--quick; '' for none). x1 is real time: 3 s per block")
    p.add_argument("--latency", action="store_true",
                   help="only the paced latency runs (skip throughput, stages, memory and processes)")
    p.add_argument("--processes", type=int, default=1, metavar="N",
                   help="also run the workload on N Bytewax processes on 127.0.0.1 and report scaling (default 1: off)")
    p.add_argument("--quick", action="store_true", help=f"a fast smoke run: {QUICK_TX} tx, short paced slices")
    p.add_argument("--profile", action="store_true",
                   help="record the end-to-end run with py-spy and report what dominates")
    p.add_argument("--config", metavar="FILE", help="TOML settings file for the measured runs")
    p.set_defaults(func=main)


def parse_pace(spec: str) -> tuple[tuple[float, int], ...]:
    out = []
    for part in (s.strip() for s in spec.split(",")):
        if not part:
            continue
        speed, _, blocks = part.partition(":")
        try:
            pair = (float(speed), int(blocks))
        except ValueError:
            raise ConfigError(f"--pace: expected SPEED:BLOCKS, got {part!r}") from None
        if pair[0] <= 0 or pair[1] < 1:
            raise ConfigError(f"--pace: speed must be > 0 and blocks >= 1, got {part!r}")
        out.append(pair)
    return tuple(out)


def main(args: argparse.Namespace) -> int:
    from pipeline.bench.harness import BenchConfig, run_bench
    from pipeline.bench.report import render

    tx = args.tx if args.tx is not None else (QUICK_TX if args.quick else 1_000_000)
    if tx < 1:
        raise ConfigError(f"--tx: must be >= 1, got {tx}")
    if args.processes < 1:
        raise ConfigError(f"--processes: must be >= 1, got {args.processes}")
    pace = parse_pace(args.pace if args.pace is not None else (QUICK_PACE if args.quick else DEFAULT_PACE))
    if args.latency and not pace:
        raise ConfigError("--latency with --pace '': nothing to measure")
    cfg = BenchConfig(tx=tx, seed=args.seed, out=args.out, pace=pace, processes=args.processes,
                      config=args.config, profile=args.profile, latency_only=args.latency,
                      extra={"quick": args.quick})
    report = run_bench(cfg, say=lambda msg: print(msg, file=sys.stderr, flush=True))
    target = args.json or args.out / "bench.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(render(report))
    print(f"\nfigures: {target}")
    return 0
