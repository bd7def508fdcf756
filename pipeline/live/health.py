"""Source health: lag behind the head, throughput, errors and reconnects, as rows and log lines.

A :class:`HealthMeter` is fed by a source shell (blocks emitted, errors, reconnects, the head it
saw) and, every ``every_s`` seconds of wall time, turns what it counted into one
:class:`SourceHealth` row for the ``source_health`` table (migration 003) and one log line. The
counters in a row are totals since the process started, so a dashboard takes differences (and a
restart is visible as a reset); rates are over the interval since the previous row.
"""

from __future__ import annotations

import logging
import time
from typing import NamedTuple

from pipeline.redact import scrub

log = logging.getLogger(__name__)


class SourceHealth(NamedTuple):
    """One row of ``source_health``; field order is the column order."""

    source: str
    at: int  # wall clock ms
    head: int  # node head height (-1 unknown; for a pending feed: last seq)
    target: int  # height followed (head - confirmations, or solidified)
    last_height: int  # last height emitted (-1 none)
    lag_blocks: int  # head - last_height
    lag_s: float  # wall now - timestamp of the last emitted block
    blocks_per_s: float  # items (blocks or pending txs) per second over the interval
    items_total: int
    errors_total: int
    reconnects_total: int
    gaps_total: int
    reorgs_total: int
    connected: bool
    last_error: str


HEALTH_COLUMNS: tuple[str, ...] = SourceHealth._fields


class HealthMeter:
    """Counters of one source; :meth:`due` / :meth:`row` produce a row every ``every_s`` seconds."""

    def __init__(self, source: str, every_s: float = 10.0) -> None:
        self.source = source
        self.every_s = every_s
        self.head = -1
        self.target = -1
        self.last_height = -1
        self.last_ts_ms = 0
        self.items = 0
        self.errors = 0
        self.reconnects = 0
        self.gaps = 0
        self.reorgs = 0
        self.connected = True
        self.last_error = ""
        self._mark = (time.monotonic(), 0)  # (when, items) at the previous row

    def emitted(self, height: int, ts_ms: int) -> None:
        self.items += 1
        self.last_height = height
        self.last_ts_ms = ts_ms

    def error(self, message: str) -> None:
        self.errors += 1
        self.last_error = scrub(message)[:500]  # goes to the source_health table: no key or URL secret

    def reconnected(self) -> None:
        self.reconnects += 1

    def due(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) - self._mark[0] >= self.every_s

    def row(self, now: float | None = None, wall_ms: int | None = None) -> SourceHealth:
        """The row for the interval ending now; logs it and starts the next interval."""
        now = time.monotonic() if now is None else now
        wall_ms = int(time.time() * 1000) if wall_ms is None else wall_ms
        elapsed = max(now - self._mark[0], 1e-9)
        rate = (self.items - self._mark[1]) / elapsed
        self._mark = (now, self.items)
        lag_blocks = self.head - self.last_height if self.head >= 0 and self.last_height >= 0 else -1
        lag_s = (wall_ms - self.last_ts_ms) / 1000.0 if self.last_ts_ms else -1.0
        row = SourceHealth(self.source, wall_ms, self.head, self.target, self.last_height, lag_blocks,
                           lag_s, rate, self.items, self.errors, self.reconnects, self.gaps, self.reorgs,
                           self.connected, self.last_error)
        log.info("%s: height %d, head %d (lag %d blocks, %.1f s), %.2f/s, errors %d, reconnects %d, "
                 "gaps %d, reorgs %d%s", self.source, row.last_height, row.head, lag_blocks, lag_s, rate,
                 self.errors, self.reconnects, self.gaps, self.reorgs,
                 "" if self.connected else " - DISCONNECTED")
        return row
