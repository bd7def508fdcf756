"""``run_pipeline.py import-amlsim``: IBM AMLSim output -> replay input + labels."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.simulate.amlsim import import_amlsim

DEFAULT_OUT = "data/amlsim"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import-amlsim", help="convert IBM AMLSim output (nodes.csv, transactions.csv) into replay input",
        description="Convert an IBM AMLSim output folder (nodes.csv, transactions.csv) into replay input: each "
                    "account becomes a deterministic TRON address, each transaction a USDT transfer, "
                    "simulation steps consecutive 3 s blocks. Also writes labels.csv (fraud accounts), "
                    "labelled_txs.csv (transactions between fraud accounts) and meta.json.")
    p.add_argument("folder", type=Path, metavar="DIR", help="AMLSim output folder, e.g. shared/data/amlsim/20K_fanin200")
    p.add_argument("--out", type=Path, default=Path(DEFAULT_OUT), metavar="DIR",
                   help=f"output directory (default {DEFAULT_OUT})")
    p.add_argument("--typology", default="fan_in",
                   help="typology name for the fraud accounts (default fan_in, as in 20K_fanin200)")
    p.add_argument("--per-block", type=int, default=300, metavar="N",
                   help="at most N transactions per block; each step starts a new block (default 300)")
    p.add_argument("--visible", action="store_true", help="base58 addresses instead of 41-hex")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    meta = import_amlsim(args.folder, args.out, typology=args.typology, per_block=max(1, args.per_block),
                         visible=args.visible)
    print(f"imported {meta['tx_count']:,} AMLSim transactions ({meta['accounts']:,} accounts, "
          f"{meta['steps']} steps) into {meta['blocks']:,} blocks in {args.out}/\n"
          f"  labelled: {meta['labelled_addresses']:,} fraud accounts as {args.typology}, "
          f"{meta['labelled_txs']:,} transactions between fraud accounts\n"
          f"  files: blocks.jsonl.gz, labels.csv, labelled_txs.csv, meta.json")
    return 0
