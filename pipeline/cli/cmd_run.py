"""``run``: replay recorded blocks through the pipeline into ClickHouse."""

from __future__ import annotations

import argparse
import sys

from pipeline.cli.common import add_common, settings_from
from pipeline.runner import replay
from pipeline.storage.clickhouse import connect, parse_dsn
from pipeline.summary import render, stored_counts


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run", help="replay blocks from files into ClickHouse",
        description="Replay recorded TRON blocks (JSONL, gzip, getblockbylimitnext files or a "
                    "directory of them) through decode and analytics into ClickHouse, then print a summary.")
    p.add_argument("--input", "-i", nargs="+", required=True, metavar="PATH",
                   help="replay files or directories, read in the order given")
    p.add_argument("--speed", type=float, default=0.0,
                   help="pace: N times real time by block timestamps; 0 = as fast as possible (default)")
    add_common(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    result = replay(args.input, settings, speed=args.speed, progress=not args.no_progress)
    dsn = parse_dsn(settings.clickhouse.dsn)
    print(render(stored_counts(connect(dsn)), dsn, result.seconds, result.stats), file=sys.stdout)
    return 0
