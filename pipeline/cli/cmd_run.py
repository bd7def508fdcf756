"""``run``: replay recorded blocks (or follow a node) through the pipeline into ClickHouse.

Secrets stay off the command line where they can: a password in ``--clickhouse`` or an
``--api-key`` works but warns that ``ps`` shows it; cluster members get the DSN through their
environment.
"""

from __future__ import annotations

import argparse
import sys

from pipeline.cli.common import add_common, settings_from
from pipeline.cluster import run_local_cluster
from pipeline.errors import ConfigError
from pipeline.runner import execute, replay
from pipeline.sources.files import resolve_inputs
from pipeline.sources.live_options import add_live_arguments, live_sources
from pipeline.storage.clickhouse import connect, parse_dsn
from pipeline.summary import RunStats, render, stored_counts


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run", help="replay blocks from files into ClickHouse",
        description="Replay recorded TRON blocks (JSONL, gzip, getblockbylimitnext files or a "
                    "directory of them) through decode and analytics into ClickHouse, then print a summary.")
    p.add_argument("--input", "-i", nargs="+", metavar="PATH",
                   help="replay files or directories, read in the order given (or --node)")
    p.add_argument("--speed", type=float, default=0.0,
                   help="pace: N times real time by block timestamps; 0 = as fast as possible (default)")
    p.add_argument("--processes", type=int, default=1,
                   help="run as a Bytewax cluster of N processes on this machine (default 1); "
                        "results are the same as with one process")
    p.add_argument("--process-id", type=int, help=argparse.SUPPRESS)  # a cluster member (internal)
    p.add_argument("--addresses", help="with --process-id: the cluster's host:port list, ';'-separated, "
                                       "for running members on several machines (trusted network only: "
                                       "the cluster protocol is unauthenticated and carries pickles)")
    add_common(p)
    add_live_arguments(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if bool(args.input) == bool(args.node):
        raise ConfigError("run: give either --input PATH (replay files) or --node URL (live mode)")
    settings = settings_from(args)
    dsn = parse_dsn(settings.clickhouse.dsn)
    if args.node:
        return _live(args, settings, dsn)
    if args.process_id is not None:  # one member of a cluster: run, print nothing
        if not args.addresses:
            raise ConfigError("--process-id needs --addresses (host:port;host:port;...)")
        replay(args.input, settings, speed=args.speed, progress=False,
               process_id=args.process_id, addresses=args.addresses.split(";"))
        return 0
    if args.processes < 1:
        raise ConfigError(f"--processes: must be >= 1, got {args.processes}")
    if args.processes > 1:
        resolve_inputs(list(args.input))
        member = ["--log-level", args.log_level, "run", "--input", *args.input, "--speed", str(args.speed),
                  "--workers", str(settings.pipeline.workers)]
        if args.config:
            member += ["--config", args.config]
        if settings.pipeline.recovery_dir:
            member += ["--recovery-dir", settings.pipeline.recovery_dir]
        # the DSN (it may hold a password) goes through the environment, not the members' `ps` line
        seconds = run_local_cluster(member, args.processes,
                                    env={"TRONRISK_CLICKHOUSE_DSN": settings.clickhouse.dsn})
        counts = stored_counts(connect(dsn))
        stats = RunStats(blocks=counts["blocks"], transactions=counts["transactions"])
        print(render(counts, dsn, seconds, stats))
        return 0
    result = replay(args.input, settings, speed=args.speed, progress=not args.no_progress)
    print(render(stored_counts(connect(dsn)), dsn, result.seconds, result.stats), file=sys.stdout)
    return 0


def _live(args: argparse.Namespace, settings, dsn) -> int:
    """Follow a node (and its pending pool) until ``--to-block`` or Ctrl-C."""
    if args.processes > 1 or args.process_id is not None:
        raise ConfigError("--node runs in one process (--workers for threads); --processes is for replays")
    from pipeline.storage.clickhouse import open_storage

    client, _ = open_storage(settings.clickhouse.dsn)
    live = live_sources(args, client, node=settings.node)
    node, pending = live.node, live.pending
    if pending is not None and args.to_block is not None:  # the feed ends when the node source does
        from pipeline.sources.linked import EndsWith, SignalsEnd

        node = SignalsEnd(node)
        pending = EndsWith(pending, node.ended)
    result = execute(node, settings, progress=not args.no_progress, pending=pending,
                     pending_timeout_s=live.pending_timeout_s, live=True)
    print(render(stored_counts(client), dsn, result.seconds, result.stats))
    return 0
