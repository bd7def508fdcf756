#!/usr/bin/env python3
"""TRON risk monitor command line.

With no arguments it runs the main job on the embedded ClickHouse (chDB) and prints a summary;
``run_pipeline.py --help`` lists the subcommands, and every subcommand has ``--help``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from pipeline import __version__
from pipeline.cli import register_all
from pipeline.errors import PipelineError
from pipeline.runner import find_pipeline_error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_pipeline.py",
        description="Streaming risk monitor for the TRON blockchain. Without a command: run the main job "
                    "(the demo) on the embedded ClickHouse and print a summary.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", default=os.environ.get("TRONRISK_LOG_LEVEL", "WARNING"),
                        help="DEBUG, INFO, WARNING (default) or ERROR")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_all(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command is None:
        args = parser.parse_args([*(sys.argv[1:] if argv is None else argv), "demo"])
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - one clear line for every deliberate error
        cause = err if isinstance(err, PipelineError) else find_pipeline_error(err)
        if cause is None:
            raise
        print(f"error: {cause}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
