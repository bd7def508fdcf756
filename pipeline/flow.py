"""The dataflow: wires sources, pure stages and sinks. No logic lives here.

::

    source ─► decode (per block) ─┬─► blocks, transfers, dead letters, checkpoints ─┐
                                  ├─► minute aggregates (event time) ───────────────┼─► ClickHouse
                                  └─► analytics (graph, features, rules, anomaly) ──┘   (one partition)

Every item crossing a step is a whole block or a batch of rows: Bytewax's per-item cost is paid
per block, not per transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source

from pipeline.operators.aggregates import MinuteAggregator
from pipeline.operators.decode import decode_block
from pipeline.records import DeadLetter, DecodedBlock, RawBlock
from pipeline.sinks.clickhouse import PART, ClickHouseSink
from pipeline.sinks.rows import block_rows, checkpoint_row, dead_letter_rows
from pipeline.tron.tokens import TokenRegistry

TableRows = tuple[str, list[tuple]]
# Analytics plug in as a function from the decoded-block stream to a stream of (table, rows).
Analytics = Callable[[Stream[DecodedBlock]], Stream[TableRows]]


@dataclass(frozen=True)
class FlowSpec:
    """Everything the flow needs, already validated (see :mod:`pipeline.config`)."""

    source: Source
    dsn: str
    tokens: TokenRegistry
    flush_rows: int = 50_000
    max_delay_s: float = 0.5
    analytics: Analytics | None = None
    pending: Source | None = None  # a pending-pool source (live mode)
    pending_spec: Any = None  # pipeline.sources.live_flow.PendingSpec
    live: bool = False  # node source: the sink also applies reorgs and writes the live tables
    on_block: Callable[[DecodedBlock], None] | None = field(default=None, compare=False)
    on_commit: Callable[[dict[str, list[tuple]]], None] | None = field(default=None, compare=False)
    on_sync: Callable[[], None] | None = field(default=None, compare=False)
    durable: bool = False  # recovery on: the sink commits every batch before returning it


def _decode(tokens: TokenRegistry, item: Any) -> Any:
    if not isinstance(item, RawBlock):
        return item  # dead letters, and a live source's reorg and health items
    return decode_block(item.payload, item.source, item.position, tokens)


def _storage_rows(item: Any) -> list[TableRows]:
    if isinstance(item, DeadLetter):
        return [("dead_letters", dead_letter_rows([item]))]
    if not isinstance(item, DecodedBlock):
        from pipeline.sources.live_flow import side_rows

        return side_rows(item)
    out: list[TableRows] = [("blocks", block_rows([item.block])), ("transfers", list(item.transfers))]
    if item.dead_letters:
        out.append(("dead_letters", dead_letter_rows(item.dead_letters)))
    out.append(("checkpoints", [checkpoint_row(item.block, int(time.time() * 1000))]))
    return out


class _MinuteLogic(op.StatefulBatchLogic):
    """Bytewax shell around :class:`MinuteAggregator`; emits closed minutes, and all at EOF."""

    def __init__(self, state: MinuteAggregator | None) -> None:
        self.agg = state or MinuteAggregator()

    def on_batch(self, values: list[DecodedBlock]) -> tuple[Iterable[TableRows], bool]:
        rows: list[tuple] = []
        for block in values:
            rows.extend(self.agg.add(block.transfers))
        return ([("minute_stats", rows)] if rows else []), False

    def on_eof(self) -> tuple[Iterable[TableRows], bool]:
        rows = self.agg.flush()
        return ([("minute_stats", rows)] if rows else []), False

    def snapshot(self) -> MinuteAggregator:
        import copy

        return copy.deepcopy(self.agg)  # a few open minutes: cheap


def build_flow(spec: FlowSpec, name: str = "tron_risk") -> Dataflow:
    flow = Dataflow(name)
    raw = op.input("input", flow, spec.source)
    decoded = op.map("decode", raw, partial(_decode, spec.tokens))
    blocks = op.filter_map("blocks", decoded, lambda x: x if isinstance(x, DecodedBlock) else None)
    if spec.on_block is not None:
        op.inspect("progress", blocks, lambda _step, item: spec.on_block(item))  # type: ignore[misc]

    outputs: list[Stream[TableRows]] = [op.flat_map("storage_rows", decoded, _storage_rows)]
    minute = op.stateful_batch("minute_stats", op.key_on("minute_key", blocks, lambda _b: "minute"),
                               _MinuteLogic)
    outputs.append(op.key_rm("minute_rows", minute))
    if spec.analytics is not None:
        outputs.append(spec.analytics(blocks))
    if spec.pending is not None:
        from pipeline.sources.live_flow import build_pending

        outputs.append(build_pending(blocks, op.input("pending_input", flow, spec.pending), spec.pending_spec))

    rows = op.merge("all_rows", *outputs)
    keyed = op.key_on("to_sink", op.filter("nonempty", rows, lambda tr: bool(tr[1])), lambda _tr: PART)
    sink_class = ClickHouseSink
    if spec.live:
        from pipeline.sources.live_flow import LiveClickHouseSink as sink_class
    op.output("clickhouse", keyed, sink_class(spec.dsn, spec.flush_rows, spec.max_delay_s,
                                              on_commit=spec.on_commit, on_sync=spec.on_sync,
                                              durable=spec.durable))
    return flow


def run(flow: Dataflow, workers: int = 1, epoch_interval_s: float | None = None,
        recovery: Any = None, process_id: int | None = None, addresses: list[str] | None = None) -> None:
    """Run to completion with ``workers`` worker threads; as one member of a cluster when
    ``process_id`` and ``addresses`` are given (see :mod:`pipeline.cluster`)."""
    from datetime import timedelta

    from bytewax.run import cli_main

    interval = timedelta(seconds=epoch_interval_s) if epoch_interval_s else None
    cli_main(flow, workers_per_process=workers, process_id=process_id, addresses=addresses,
             epoch_interval=interval, recovery_config=recovery)
