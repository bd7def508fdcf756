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
from pipeline.gc_tuning import tune_for_streaming
from pipeline.redact import scrub
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


def _default_to_demo(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """No command given: run ``demo``, passing it the options (``run_pipeline.py --blocks 600``)."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    if any(arg in commands for arg in argv) or {"-h", "--help", "--version"} & set(argv):
        return argv
    head = []
    rest = list(argv)
    while rest and rest[0].startswith("--log-level"):
        head.append(rest.pop(0))
        if "=" not in head[-1] and rest:
            head.append(rest.pop(0))
    return [*head, "demo", *rest]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(_default_to_demo(parser, argv))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tune_for_streaming()
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        cause = err if isinstance(err, PipelineError) else find_pipeline_error(err)
        if cause is None:
            raise
        print(f"error: {scrub(str(cause))}", file=sys.stderr)  # no key or password known to us
        return 2


if __name__ == "__main__":
    sys.exit(main())
