"""Bytewax sink writing ``(table, rows)`` items to ClickHouse through one partition.

chDB is one engine per process and one process per data directory, so every write of a multi-worker
or multi-process dataflow goes through this single partition, owned by one worker. With a server
DSN the same holds and costs little: inserts are large batches, the expensive work happens upstream.

The partition flushes whenever a batch is big or old enough; with recovery on it commits every
batch before returning it (see ``after_batch``), so a resumed dataflow never skips rows it had
buffered: outputs are at-least-once and the tables deduplicate (see :mod:`pipeline.sinks.writer`).

A write that cannot succeed (a schema or type error, an exhausted retry budget) must end the process
with one line, never hang it. Bytewax 0.21 calls a sink partition's ``close`` from a destructor;
if ``close`` raises while the worker is already unwinding from the failed write, Rust aborts
("panic in a destructor during cleanup ... non-unwinding panic. aborting") -- and chDB's SIGABRT
handler then waits forever for a listener thread that embedded mode never starts. So ``write_batch``
raises (Bytewax stops the dataflow and re-raises in the caller), ``close`` never raises (a final
flush that fails is recorded and re-raised by :mod:`pipeline.runner` once the dataflow has
stopped), and :func:`release_abort_signal` gives SIGABRT back its default, so that any abort that
still happens ends the process (exit 134) instead of hanging it.
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
_close_failures: list[Exception] = []  # final flushes that failed, for the runner (one sink per process)


def take_close_failures() -> list[Exception]:
    """The errors of final flushes that failed since the last call (see the module docstring)."""
    failures = list(_close_failures)
    _close_failures.clear()
    return failures


def release_abort_signal() -> None:
    """Give SIGABRT its default action back (chDB installs a handler that never returns).

    chDB installs it once, when the embedded engine starts; it does not reinstall it for later
    clients or queries. Without it an abort ends the process at once, which is what a supervisor
    needs to restart it. Any thread may call this (``signal.signal`` is main-thread only).
    """
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None)
        libc.signal.restype = ctypes.c_void_p
        libc.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
        libc.signal(int(signal.SIGABRT), None)  # None is SIG_DFL (0)
    except (OSError, AttributeError) as err:  # no C library to call: nothing to restore
        log.debug("cannot restore the default SIGABRT action: %s", err)


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
        if dsn.embedded:
            release_abort_signal()
        writer = ClickHouseWriter(client, dsn.database, self.flush_rows, self.max_delay_s,
                                  on_commit=self.on_commit, on_sync=self.on_sync)
        return _ClickHousePartition(client, writer, self.durable)


class _ClickHousePartition(StatefulSinkPartition[TableRows, None]):
    def __init__(self, client: Any, writer: ClickHouseWriter, durable: bool = False) -> None:
        self._client = client
        self._writer = writer
        self._durable = durable

    def write_batch(self, values: list[TableRows]) -> None:
        """Buffer and, when due, insert; an insert that failed for good raises (the run stops)."""
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
        """Final flush; never raises (see the module docstring), a failure is recorded instead.

        After a write that failed (``writer.failed``), the dataflow is stopping because of it: the
        rows it holds are not tried again, which would only repeat the error (or wait out the
        retry budget a second time).
        """
        started = time.monotonic()
        if self._writer.failed is not None:
            log.debug("not flushing %d buffered rows after a failed write", self._writer.pending)
        else:
            try:
                self._writer.flush(sync=True)
            except Exception as err:  # noqa: BLE001 - re-raised by the runner once the dataflow stopped
                _close_failures.append(err)
        log.debug("final flush took %.3f s", time.monotonic() - started)
        # The embedded engine is released when the process exits. Closing a chDB client from a
        # worker thread while a Bytewax cluster tears down corrupts the heap (seen as "corrupted
        # double-linked list" and a hang in `run --processes 2`); server clients close normally.
        if not getattr(self._client, "path", None):
            try:
                self._client.close()
            except Exception as err:  # noqa: BLE001 - a socket already gone; nothing is lost
                log.debug("closing the ClickHouse client: %s", err)
