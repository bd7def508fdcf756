"""``run_pipeline.py simulate``: write a labelled, simulated TRON chain as replay input."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.simulate.chain import (
    BLOCKS_PER_HOUR,
    DEFAULT_RATE,
    DEFAULT_START_HEIGHT,
    DEFAULT_START_TS,
    SANCTIONS_FILE,
    SimConfig,
    parse_rates,
)
from pipeline.simulate.profile import PROFILES
from pipeline.simulate.run import simulate
from pipeline.simulate.typologies import TYPOLOGIES

DEFAULT_OUT = "data/sim"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "simulate", help="write a simulated, labelled TRON chain (replay input + ground truth)",
        description="Simulate a TRON chain deterministically from a seed: background traffic calibrated to "
                    "real mainnet blocks plus injected, labelled typologies. Writes DIR/blocks.jsonl.gz "
                    "(one /wallet/getblockbynum object per line), DIR/labels.csv (address,typology,"
                    "episode_id,role), DIR/labelled_txs.csv (tx_id,typology,episode_id) and DIR/meta.json. "
                    f"{BLOCKS_PER_HOUR} blocks = one simulated hour. Typologies: {', '.join(TYPOLOGIES)}.")
    p.add_argument("--blocks", type=int, default=BLOCKS_PER_HOUR, metavar="N",
                   help=f"blocks to generate, 3 s apart (default {BLOCKS_PER_HOUR} = 1 simulated hour)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed; same seed, same bytes (default 0)")
    p.add_argument("--out", type=Path, default=Path(DEFAULT_OUT), metavar="DIR",
                   help=f"output directory (default {DEFAULT_OUT})")
    p.add_argument("--visible", action="store_true",
                   help="base58 addresses (as the node's visible=true); default is 41-hex (visible=false)")
    p.add_argument("--rates", default="", metavar="SPEC",
                   help=f"episodes per simulated hour, e.g. 'all=2,fan_in=6,cycle=0' (default {DEFAULT_RATE:g} "
                        "each; every typology with a positive rate gets at least one episode)")
    p.add_argument("--profile", default="classic", choices=tuple(PROFILES),
                   help="episode parameter ranges and benign look-alikes (pipeline/simulate/profile.py): classic "
                        "(default: the historical fixed shapes, no look-alikes), tuning, or validation (never "
                        "tune on it); tuning and validation also set 45-70 background tx per block")
    p.add_argument("--users", type=int, default=40_000, metavar="N", help="recurring user population (default 40000)")
    p.add_argument("--start-ts", type=int, default=DEFAULT_START_TS, metavar="MS",
                   help=f"first block timestamp, ms UTC (default {DEFAULT_START_TS})")
    p.add_argument("--start-height", type=int, default=DEFAULT_START_HEIGHT, metavar="H",
                   help=f"first block number (default {DEFAULT_START_HEIGHT})")
    p.add_argument("--sanctions", type=Path, default=SANCTIONS_FILE, metavar="FILE",
                   help="base58 addresses, one per line, used as sanctioned sources (default: shipped OFAC list)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    cfg = SimConfig(blocks=args.blocks, seed=args.seed, visible=args.visible, rates=parse_rates(args.rates),
                    start_ts=args.start_ts, start_height=args.start_height, n_users=args.users,
                    sanctions_file=args.sanctions, profile=PROFILES[args.profile])
    meta = simulate(cfg, args.out, progress=False if args.no_progress else None)
    print(render_summary(meta, args.out))
    return 0


def render_summary(meta: dict, out: Path) -> str:
    """A readable summary of a run: volume, speed, contract mix and the injected episodes."""
    tx, secs = meta["tx_count"], meta.get("elapsed_s", 0.0)
    lines = [
        (f"simulated {meta['blocks']} blocks ({_span(meta['blocks'] * 3)} of chain), {tx:,} transactions "
         f"in {secs:.1f} s ({tx / max(secs, 1e-9):,.0f} tx/s), seed {meta['seed']}, "
         f"{'base58' if meta['visible'] else 'hex'} addresses"),
        f"  output: {out}/ (blocks.jsonl.gz, labels.csv, labelled_txs.csv, meta.json)",
        f"  failed transactions: {meta['failed_tx_count']:,} ({meta['failed_tx_count'] / max(tx, 1):.1%})",
        "  contract mix: " + ", ".join(f"{k.removesuffix('Contract')} {v / max(tx, 1):.1%}"
                                       for k, v in sorted(meta["contract_counts"].items(), key=lambda kv: -kv[1])),
        (f"  labelled: {meta['labelled_addresses']:,} addresses ({meta['labelled_address_share']:.2%} of "
         f"{meta['addresses_seen']:,} seen), {meta['labelled_txs']:,} transactions"),
        f"  profile: {meta.get('profile', 'classic')}",
        "  episodes: " + (", ".join(f"{k} {v}" for k, v in meta["typology_counts"].items()) or "none"),
        "  benign look-alikes: " + (", ".join(f"{k} {v}" for k, v in meta.get("benign_counts", {}).items()) or "none"),
    ]
    return "\n".join(lines)


def _span(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
