"""One suite chain in its own process: replay it through the full default pipeline, dump the alerts.

Run by :mod:`pipeline.evaluation.suite_run` as ``python -m pipeline.evaluation.suite_worker``.
A process per chain because chDB binds one data directory per process (so one parent could not
read several fresh databases) and because it keeps memory clean between chains. The replay is
``run --input``'s own path (:func:`pipeline.runner.replay`, analytics on) with the given settings
file, into a fresh embedded database; tickets and crash recovery are forced off, since a
yardstick must not page anyone or resume an older run.

Prints ``progress BLOCKS`` lines on stdout for the parent's progress bar, and writes the alerts
(with ``details.members``) and the transaction count to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import orjson

from pipeline.errors import PipelineError

PROGRESS_EVERY = 50  # blocks


def run(blocks_file: str, dsn: str, out: Path, config: str | None) -> None:
    from pipeline.config import load_settings
    from pipeline.evaluation.store import count_transactions, read_alerts
    from pipeline.records import DecodedBlock
    from pipeline.runner import replay
    from pipeline.storage.clickhouse import connect, parse_dsn

    settings = load_settings(config, overrides={"clickhouse.dsn": dsn, "tickets.enabled": False,
                                                "pipeline.recovery_dir": ""})
    seen = [0]

    def on_block(_: DecodedBlock) -> None:
        seen[0] += 1
        if seen[0] % PROGRESS_EVERY == 0:
            print(f"progress {seen[0]}", flush=True)

    started = time.monotonic()
    result = replay([blocks_file], settings, progress=False, on_block=on_block, source_name="suite")
    client = connect(parse_dsn(dsn))
    alerts = [[a.alert_id, a.address, a.tx_id, a.rule_id, list(a.tags), a.status, list(a.members)]
              for a in read_alerts(client)]
    doc = {"tx_count": count_transactions(client), "blocks": result.stats.blocks, "alerts": alerts,
           "replay_s": round(result.seconds, 2), "total_s": round(time.monotonic() - started, 2)}
    out.write_bytes(orjson.dumps(doc))
    print(f"progress {seen[0]}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Replay one suite chain into a fresh chDB and dump its alerts "
                                                 "(used by `run_pipeline.py evaluate --suite`).")
    parser.add_argument("--input", required=True, help="blocks.jsonl.gz of the chain")
    parser.add_argument("--dsn", required=True, help="a fresh chdb://DIR")
    parser.add_argument("--out", required=True, type=Path, help="where the JSON result goes")
    parser.add_argument("--config", help="TOML settings file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from pipeline.gc_tuning import tune_for_streaming
    from pipeline.runner import find_pipeline_error

    tune_for_streaming()  # as run_pipeline.py does for `run`
    try:
        run(args.input, args.dsn, args.out, args.config)
    except Exception as err:
        cause = err if isinstance(err, PipelineError) else find_pipeline_error(err)
        if cause is None:
            raise
        print(f"error: {cause}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
