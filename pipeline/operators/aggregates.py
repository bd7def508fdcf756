"""Per-minute, per-token aggregates of value movements, closed in event time.

The wall display's "tx/s" and "volume by token" come from here. A minute is emitted once the
event-time watermark (latest block timestamp minus the allowed lateness) has passed its end, and
every still-open minute is emitted at end of input; a re-emitted minute carries complete values
and replaces the earlier row (ReplacingMergeTree on ``(minute, token)``), so restarts converge.
State holds only open minutes: bounded by lateness, not by stream length.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.records import Kind, Transfer

MINUTE_MS = 60_000


class _Bucket:
    __slots__ = ("count", "failed", "receivers", "senders", "symbol", "volume", "volume_usd")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.count = 0
        self.failed = 0
        self.volume = 0.0
        self.volume_usd = 0.0
        self.senders: set[str] = set()
        self.receivers: set[str] = set()


class MinuteAggregator:
    """``add`` transfers (any order within the lateness); get rows of minutes that closed."""

    def __init__(self, lateness_ms: int = 60_000) -> None:
        self.lateness_ms = lateness_ms
        self._open: dict[tuple[int, str], _Bucket] = {}
        self._watermark = 0

    def add(self, transfers: Iterable[Transfer]) -> list[tuple]:
        value_kinds = Kind.VALUE_MOVEMENTS
        buckets = self._open
        latest = self._watermark
        for t in transfers:
            if t.kind not in value_kinds:
                continue
            key = (t.ts - t.ts % MINUTE_MS, t.token)
            b = buckets.get(key)
            if b is None:
                b = buckets[key] = _Bucket(t.symbol)
            b.count += 1
            if t.success:
                b.volume += t.amount
                b.volume_usd += t.amount_usd
                b.senders.add(t.from_address)
                b.receivers.add(t.to_address)
            else:
                b.failed += 1
            latest = max(latest, t.ts)
        self._watermark = latest
        return self._close(latest - self.lateness_ms)

    def flush(self) -> list[tuple]:
        """Rows of every open minute (end of input); they stay open in case more arrives."""
        return [self._row(k, b) for k, b in sorted(self._open.items())]

    def _close(self, watermark: int) -> list[tuple]:
        done = sorted(k for k in self._open if k[0] + MINUTE_MS <= watermark)
        return [self._row(k, self._open.pop(k)) for k in done]

    @staticmethod
    def _row(key: tuple[int, str], b: _Bucket) -> tuple:
        return (key[0] // 1000, key[1], b.symbol, b.count, b.failed, b.volume, b.volume_usd,
                len(b.senders), len(b.receivers))

    def __len__(self) -> int:
        return len(self._open)
