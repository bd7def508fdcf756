"""Per-stage cost of the pipeline: the pure stage objects timed one after another on the same blocks.

Inside Bytewax the stages interleave on one thread and their costs cannot be read apart; here the
same objects the flow wraps run in the flow's order, block by block, each under its own clock:

- read + parse: reading the file and ``orjson``-decoding each line (``iter_replay``);
- decode: ``decode_block`` into typed records;
- graph/features: :class:`pipeline.offline.FeatureEngine` (graph stage, routing, shards);
- rules: ``RuleSet.evaluate`` on the address updates;
- anomaly: the flow's :class:`~pipeline.operators.scoring.ScoringStage` (latest update per block
  and address, the scorer's ``score_rows`` in the flow's micro-batches, cooldown, risk scores);
- sinks: building rows (minute aggregates, feature rows) and ``ClickHouseWriter`` inserts.

What the end-to-end run costs beyond the sum is the dataflow runtime (Bytewax steps, exchanges,
the scoring join) -- the harness reports it as "other".
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.assemble import analytics_spec
from pipeline.config import Settings
from pipeline.offline import FeatureEngine
from pipeline.operators.aggregates import MinuteAggregator
from pipeline.operators.alert_budget import AlertGovernor
from pipeline.operators.decode import decode_block
from pipeline.operators.scoring import ScoringStage
from pipeline.operators.structures import StructureDetector
from pipeline.records import DecodedBlock
from pipeline.sinks.rows import block_rows, checkpoint_row, dead_letter_rows, feature_rows
from pipeline.sinks.writer import ClickHouseWriter
from pipeline.sources.files import ReplayItem, iter_replay, resolve_inputs
from pipeline.storage.clickhouse import open_storage

STAGES = ("read_parse", "decode", "graph_features", "rules", "anomaly", "sinks")


def _timed(items: Iterator[ReplayItem], clock: dict[str, float]) -> Iterator[ReplayItem]:
    """Yield from ``items``, charging the time spent inside ``next`` to ``read_parse``."""
    while True:
        t0 = time.perf_counter()
        item = next(items, None)
        clock["read_parse"] += time.perf_counter() - t0
        if item is None:
            return
        yield item


def measure_stages(paths: list[str], settings: Settings) -> dict[str, Any]:
    """Run every stage over ``paths`` into ``settings.clickhouse.dsn``; seconds per stage and counts."""
    spec = analytics_spec(settings)
    if spec is None:
        raise ValueError("the stage breakdown needs analytics enabled")
    tokens = settings.token_registry()
    engine = FeatureEngine(spec.windows, spec.watchlist)
    rules = spec.ruleset
    client, dsn = open_storage(settings.clickhouse.dsn)
    # Size-triggered flushes only: the flow's delay trigger depends on wall time, not on work.
    writer = ClickHouseWriter(client, dsn.database, settings.clickhouse.flush_rows, max_delay_s=1e9)
    minutes = MinuteAggregator()
    clock = dict.fromkeys(STAGES, 0.0)
    counts = {"blocks": 0, "transactions": 0, "records": 0, "updates": 0, "scored_rows": 0,
              "rule_alerts": 0, "alerts": 0, "score_calls": 0}
    governor = AlertGovernor(spec.budget) if spec.budget is not None else None
    scoring = ScoringStage(spec.scorer, spec.min_score_rows, spec.anomaly_cooldown_ms, governor)
    structures = StructureDetector(spec.structures) if spec.structures is not None else None
    last = -1

    def score(number: int, updates: list, alerts: list, force: bool = False, found: list = (),
              tx_count: int = 0) -> None:
        t0 = time.perf_counter()
        if number >= 0:
            scoring.expect(number, len(updates), counts["blocks"], found, tx_count)
            scoring.add(number, updates, alerts)
        scored = scoring.take(force=force)
        clock["anomaly"] += time.perf_counter() - t0
        if scored is None:
            return
        counts["scored_rows"] += len(scored.features)
        counts["score_calls"] += 1
        counts["alerts"] += len(scored.alerts)
        t0 = time.perf_counter()
        if spec.write_features and scored.features:
            writer.add("address_features", feature_rows(u.features for u in scored.features))
        writer.add("alerts", scored.alerts)
        clock["sinks"] += time.perf_counter() - t0

    try:
        for item in _timed(iter_replay(resolve_inputs(paths)), clock):
            if item.payload is None:
                continue
            t0 = time.perf_counter()
            block = decode_block(item.payload, "bench", item.where, tokens)
            t1 = time.perf_counter()
            clock["decode"] += t1 - t0
            if not isinstance(block, DecodedBlock) or block.block.number <= last:
                continue
            last = block.block.number
            counts["transactions"] += block.block.tx_count
            counts["records"] += len(block.transfers)
            updates = engine.process(block)
            found = structures.process(block.transfers) if structures is not None else []
            t2 = time.perf_counter()
            alerts = rules.evaluate(updates) if rules is not None else []
            t3 = time.perf_counter()
            clock["graph_features"] += t2 - t1
            clock["rules"] += t3 - t2
            counts["updates"] += len(updates)
            counts["rule_alerts"] += len(alerts)
            score(block.block.number, updates, alerts, found=found, tx_count=block.block.tx_count)
            counts["blocks"] += 1
            t0 = time.perf_counter()
            writer.add("blocks", block_rows([block.block]))
            writer.add("transfers", list(block.transfers))
            if block.dead_letters:
                writer.add("dead_letters", dead_letter_rows(block.dead_letters))
            writer.add("minute_stats", minutes.add(block.transfers))
            writer.add("checkpoints", [checkpoint_row(block.block, int(time.time() * 1000))])
            if writer.due():
                writer.flush()
            clock["sinks"] += time.perf_counter() - t0
        if structures is not None:  # what was still settling when the input ended, as the flow does
            scoring.extra(structures.flush())
        score(-1, [], [], force=True)
        t0 = time.perf_counter()
        writer.add("minute_stats", minutes.flush())
        writer.flush()
        clock["sinks"] += time.perf_counter() - t0
    finally:
        client.close()
    return {"seconds": {k: round(v, 4) for k, v in clock.items()}, "counts": counts,
            "committed": dict(writer.committed), "input": [str(Path(p)) for p in paths]}
