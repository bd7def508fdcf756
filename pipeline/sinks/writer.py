"""Batched, retrying ClickHouse writer: the ``add`` + ``flush`` contract behind the Bytewax sink.

Rows are buffered per table and inserted thousands at a time. Each flushed batch gets one
``insert_deduplication_token`` that is reused on every retry of that batch, so an insert that
succeeded on the server but whose answer was lost is not written twice. Replays of the same
input are made idempotent by the tables themselves (deterministic ids, ReplacingMergeTree).

Checkpoints (last committed block per source) are written only after the data of that block:
a checkpoint never claims more than is stored.

When ClickHouse is down, ``flush`` retries with exponential backoff and says what it is waiting
for; while it waits the dataflow waits too (backpressure), so memory stays bounded by one batch.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from pipeline.errors import StorageError
from pipeline.sinks.rows import COLUMNS
from pipeline.storage.retry import with_retry

log = logging.getLogger(__name__)

# Data tables first, checkpoints last: a crash between the two re-does work, never skips it.
FLUSH_ORDER = ("blocks", "transfers", "address_features", "alerts", "ticket_outbox", "minute_stats",
               "model_drift", "pending_lead_times", "orphaned_blocks", "source_health", "dead_letters",
               "checkpoints")


class ClickHouseWriter:
    """Buffers rows per table; ``flush`` inserts them in ``FLUSH_ORDER``."""

    def __init__(self, client: Any, database: str, flush_rows: int = 50_000, max_delay_s: float = 0.5,
                 retry_budget_s: float = 300.0,
                 on_commit: Callable[[dict[str, list[tuple]]], None] | None = None,
                 on_sync: Callable[[], None] | None = None,
                 columns: dict[str, tuple[str, ...]] | None = None) -> None:
        self.client = client
        self.database = database
        self.flush_rows = flush_rows
        self.max_delay_s = max_delay_s
        self.retry_budget_s = retry_budget_s
        self.on_commit = on_commit
        self.on_sync = on_sync  # runs after a sync flush: observers that batch must catch up
        self.columns = dict(COLUMNS, **(columns or {}))
        self._buffers: dict[str, list[tuple]] = {}
        self._pending = 0
        self._last_flush = time.monotonic()
        self.committed: dict[str, int] = {}
        self.failed: Exception | None = None  # the last flush's error; None once a flush succeeds

    def add(self, table: str, rows: list[tuple]) -> None:
        if table not in self.columns:
            raise StorageError(f"no column list for table {table!r}")
        if rows:
            self._buffers.setdefault(table, []).extend(rows)
            self._pending += len(rows)

    @property
    def pending(self) -> int:
        return self._pending

    def due(self) -> bool:
        """Flush when a batch is big enough, or when the oldest row has waited ``max_delay_s``."""
        return self._pending >= self.flush_rows or (
            self._pending > 0 and time.monotonic() - self._last_flush >= self.max_delay_s)

    def flush(self, sync: bool = False) -> dict[str, int]:
        """Insert everything buffered; returns rows written per table.

        ``sync`` (before a snapshot, at the end): also let batching observers (the audit hook)
        finish their work, so nothing committed before a snapshot is left unrecorded.
        """
        written: dict[str, int] = {}
        committed_rows: dict[str, list[tuple]] = {}
        try:
            order = [t for t in FLUSH_ORDER if t in self._buffers] + [
                t for t in self._buffers if t not in FLUSH_ORDER]
            for table in order:
                rows = self._buffers.get(table)
                if rows:
                    self._insert(table, rows)
                    written[table] = len(rows)
                    committed_rows[table] = rows
                    self.committed[table] = self.committed.get(table, 0) + len(rows)
        except Exception as err:
            self.failed = err  # the sink's close() must not try again (see pipeline.sinks.clickhouse)
            raise
        finally:
            # Only what was written is dropped; a failed table keeps its rows for the next try.
            for table in written:
                self._pending -= len(self._buffers.pop(table))
            self._last_flush = time.monotonic()
        self.failed = None
        if committed_rows:
            checkpoints = committed_rows.get("checkpoints")
            if checkpoints:
                log.info("committed %s; checkpoint block %d", ", ".join(f"{t}={n}" for t, n in written.items()),
                         max(row[1] for row in checkpoints))
            if self.on_commit:
                self.on_commit(committed_rows)  # observers (stats, latency) see exactly what is stored
        if sync and self.on_sync is not None:
            self.on_sync()
        return written

    def _insert(self, table: str, rows: list[tuple]) -> None:
        token = uuid.uuid4().hex  # one token per batch, reused by every retry of it
        with_retry(lambda: self.client.insert(
            f"{self.database}.{table}", rows, column_names=self.columns[table],
            settings={"insert_deduplication_token": token, "async_insert": 0}),
            f"insert of {len(rows)} rows into {self.database}.{table}", self.retry_budget_s)
