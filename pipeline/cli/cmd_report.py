"""``report``: the wall display's panels as one self-contained HTML file, without Grafana.

Reads the panel SQL from ``dashboards/json/wall.json``, runs it against the configured ClickHouse
and draws the results as inline SVG, so a wall display or an email attachment needs neither
Grafana nor a network. With the embedded chDB default, run it when no pipeline run holds the
data directory (chDB allows one process per directory).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.common import settings_from
from pipeline.errors import ConfigError
from pipeline.report.dashboards import DEFAULT_DIR, find_dashboard
from pipeline.report.html import WALL_UID, write_report
from pipeline.report.macros import MacroError, TimeRange, utc
from pipeline.report.queries import data_range
from pipeline.storage.clickhouse import connect, parse_dsn


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report", help="render the wall display as one self-contained HTML file (no Grafana needed)",
        description="Runs the wall display's panel SQL (dashboards/json/wall.json) against ClickHouse and "
                    "writes the charts as one HTML file with inline SVG (opens offline). Prints its path.")
    p.add_argument("--out", default="data/report.html", help="output file (default data/report.html)")
    p.add_argument("--clickhouse", metavar="DSN",
                   help="chdb://PATH (embedded, default chdb://./data/chdb) or http(s)://user:pw@host:port/db")
    p.add_argument("--from", dest="start", metavar="TIME",
                   help="range start, ISO 8601 UTC or epoch seconds (default: 24 h before the newest block)")
    p.add_argument("--to", dest="end", metavar="TIME", help="range end (default: the newest stored block)")
    p.add_argument("--dashboard", default=WALL_UID, help=f"dashboard uid to render (default {WALL_UID})")
    p.add_argument("--dashboards-dir", type=Path, default=None, help=f"dashboard JSON folder (default {DEFAULT_DIR})")
    p.add_argument("--config", metavar="FILE", help="TOML settings file (default ./tronrisk.toml if present)")
    p.set_defaults(func=main, workers=None)


def main(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    dashboard = find_dashboard(args.dashboard, args.dashboards_dir)
    # no migration: a dashboard's read-only user must be able to run the report
    client = connect(parse_dsn(settings.clickhouse.dsn), create_database=False)
    try:
        rng = data_range(client)
        if args.start or args.end:
            start = utc(args.start) if args.start else rng.start
            end = utc(args.end) if args.end else rng.end
            try:
                rng = TimeRange(start, end)
            except ValueError as err:
                raise ConfigError(f"--from/--to: {err}") from None
        print(write_report(client, args.out, rng, dashboard))
    except MacroError as err:
        raise ConfigError(f"dashboard {dashboard.path}: {err}") from None
    finally:
        client.close()
    return 0
