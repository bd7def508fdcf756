"""``demo``: the main job. What ``python run_pipeline.py`` runs with no arguments."""

from __future__ import annotations

import argparse
from importlib import resources

from pipeline.cli.common import add_common, settings_from
from pipeline.runner import replay
from pipeline.storage.clickhouse import connect, parse_dsn
from pipeline.summary import render, stored_counts


def sample_paths() -> list[str]:
    """The real mainnet blocks bundled with the package (see pipeline/samples/mainnet/NOTICE.md)."""
    folder = resources.files("pipeline.samples").joinpath("mainnet")
    return sorted(str(p) for p in folder.iterdir() if p.name.endswith(".json"))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="the main job: replay the bundled sample into the embedded ClickHouse",
        description="The main job (also what runs with no command): replays the bundled real "
                    "TRON mainnet blocks through the pipeline into ClickHouse and prints a summary.")
    add_common(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    result = replay(sample_paths(), settings, progress=not args.no_progress, source_name="sample")
    dsn = parse_dsn(settings.clickhouse.dsn)
    print(render(stored_counts(connect(dsn)), dsn, result.seconds, result.stats))
    return 0
