"""Bytewax sink writing ``(table, rows)`` items to ClickHouse through one partition.

chDB is one engine per process and one process per data directory, so every write of a multi-worker
or multi-process dataflow goes through this single partition, owned by one worker. With a server
DSN the same holds and costs little: inserts are large batches, the expensive work happens upstream.

The partition flushes whenever a batch is big or old enough; with recovery on it commits every
batch before returning it (see ``after_batch``), so a resumed dataflow never skips rows it had
buffered: outputs are at-least-once and the tables deduplicate (see :mod:`pipeline.sinks.writer`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from pipeline.sinks.writer import ClickHouseWriter
from pipeline.storage.clickhouse import open_storage

log = logging.getLogger(__name__)

TableRows = tuple[str, list[tuple]]
PART = "clickhouse"
FLUSH = "__flush__"  # see pipeline.analytics: wakes the sink when rows it holds are due


@dataclass(frozen=True)
class ClickHouseSink(FixedPartitionedSink[TableRows, None]):
    """Write ``(PART, (table, rows))`` items; ``on_commit`` observes rows committed per table."""

    dsn: str
    flush_rows: int = 50_000
    max_delay_s: float = 0.5
    on_commit: Callable[[dict[str, list[tuple]]], None] | None = field(default=None, compare=False)
    on_sync: Callable[[], None] | None = field(default=None, compare=False)
    durable: bool = False  # recovery on: commit every batch before returning it to Bytewax

    def list_parts(self) -> list[str]:
        return [PART]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _ClickHousePartition:
        client, dsn = open_storage(self.dsn)
        writer = ClickHouseWriter(client, dsn.database, self.flush_rows, self.max_delay_s,
                                  on_commit=self.on_commit, on_sync=self.on_sync)
        return _ClickHousePartition(client, writer, self.durable)


class _ClickHousePartition(StatefulSinkPartition[TableRows, None]):
    def __init__(self, client: Any, writer: ClickHouseWriter, durable: bool = False) -> None:
        self._client = client
        self._writer = writer
        self._durable = durable

    def write_batch(self, values: list[TableRows]) -> None:
        for table, rows in values:
            if table != FLUSH:  # a flush marker carries no rows: it only makes us check below
                self._writer.add(table, rows)
        self.after_batch()

    def after_batch(self) -> None:
        """With recovery on, commit before returning: Bytewax 0.21 does not call a sink partition's
        ``snapshot`` before it records an epoch (seen: never, in runs with 1 s epochs), but an epoch
        only completes once the sink has returned from its writes; so what the recovery store
        records as done is stored. Without recovery, batches grow for throughput."""
        if self._durable:
            self._writer.flush(sync=True)
        elif self._writer.due():
            self._writer.flush()

    def snapshot(self) -> None:
        self._writer.flush()  # everything before this snapshot is stored before it is recorded

    def close(self) -> None:
        started = time.monotonic()
        self._writer.flush(sync=True)
        log.debug("final flush took %.3f s", time.monotonic() - started)
        # The embedded engine is released when the process exits. Closing a chDB client from a
        # worker thread while a Bytewax cluster tears down corrupts the heap (seen as "corrupted
        # double-linked list" and a hang in `run --processes 2`); server clients close normally.
        if not getattr(self._client, "path", None):
            self._client.close()
