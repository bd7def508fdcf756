"""One measured run in its own process; prints its figures as one JSON line on stdout.

chDB binds one data directory per process, and RSS is only meaningful per process, so the
harness starts each measurement as ``python -m pipeline.bench.worker MODE ...``:

- ``replay``: the full flow via :func:`pipeline.runner.replay` (throughput, RSS, latencies);
- ``stages``: the pure stages one after another (:mod:`pipeline.bench.stages`);
- ``cluster``: this process's share of a multi-process flow (``--process-id``, ``--addresses``).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
import traceback

from pipeline.bench.probes import LatencyTracker, RssSampler
from pipeline.config import load_settings
from pipeline.gc_tuning import tune_for_streaming
from pipeline.records import DecodedBlock


class _Probe:
    """The flow hooks: count blocks for the RSS sampler, time blocks and commits for latency."""

    def __init__(self) -> None:
        self.rss = RssSampler()
        self.latency = LatencyTracker()
        self.blocks = 0
        self.transactions = 0
        self.committed: dict[str, int] = {}

    def on_block(self, block: DecodedBlock) -> None:
        self.blocks += 1
        self.transactions += block.block.tx_count
        self.rss.blocks = self.blocks
        self.latency.on_block(block.block.number)

    def on_commit(self, rows: dict[str, list[tuple]]) -> None:
        self.latency.on_commit(rows)
        for table, r in rows.items():
            self.committed[table] = self.committed.get(table, 0) + len(r)

    def figures(self) -> dict:
        return {"blocks": self.blocks, "transactions": self.transactions, "committed": self.committed,
                "rss": self.rss.summary(self.blocks), "latency": self.latency.summary(),
                "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _replay(args: argparse.Namespace) -> dict:
    from pipeline.runner import replay

    settings = load_settings(args.config, overrides={"clickhouse.dsn": args.dsn})
    probe = _Probe()
    probe.rss.start()
    result = replay([args.input], settings, speed=args.speed, progress=False,
                    on_block=probe.on_block, on_commit=probe.on_commit)
    probe.rss.stop()
    return {"mode": "replay", "speed": args.speed, "seconds": round(result.seconds, 3), **probe.figures()}


def _stages(args: argparse.Namespace) -> dict:
    from pipeline.bench.stages import measure_stages

    settings = load_settings(args.config, overrides={"clickhouse.dsn": args.dsn})
    return {"mode": "stages", **measure_stages([args.input], settings)}


def _cluster(args: argparse.Namespace) -> dict:
    """One member of a multi-process run: the same ``replay`` path as ``run --processes N``."""
    from pipeline.runner import replay

    settings = load_settings(args.config, overrides={"clickhouse.dsn": args.dsn})
    probe = _Probe()
    probe.rss.start()
    result = replay([args.input], settings, speed=args.speed, progress=False, on_block=probe.on_block,
                    on_commit=probe.on_commit, process_id=args.process_id, addresses=args.addresses.split(";"))
    ended = time.time()
    probe.rss.stop()
    return {"mode": "cluster", "process_id": args.process_id, "start": ended - result.seconds, "end": ended,
            "seconds": round(result.seconds, 3), **probe.figures()}


MODES = {"replay": _replay, "stages": _stages, "cluster": _cluster}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.bench.worker", description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=sorted(MODES))
    ap.add_argument("--input", required=True, help="replay file")
    ap.add_argument("--dsn", required=True, help="a fresh chdb:// directory (or a server DSN)")
    ap.add_argument("--speed", type=float, default=0.0)
    ap.add_argument("--config", help="TOML settings file")
    ap.add_argument("--process-id", type=int, default=0)
    ap.add_argument("--addresses", default="", help="host:port;host:port (cluster mode)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    tune_for_streaming()  # as run_pipeline.py does: measure what runs
    try:
        figures = MODES[args.mode](args)
    except Exception as err:  # noqa: BLE001 - the parent prints the last stderr line
        from pipeline.runner import find_pipeline_error

        traceback.print_exc(file=sys.stderr)
        cause = find_pipeline_error(err)
        print(f"error: {cause or err}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(figures) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
