"""What a measured run observes about itself: RSS over time and block-to-commit latencies.

Both are fed from the flow's hooks (``on_block`` when a decoded block enters the analytics,
``on_commit`` with the rows of each committed insert), so they measure the real dataflow, not a
model of it. State is one entry per block of the run: bounded by the run's input.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """Resident set size of this process now, from ``/proc/self/statm`` (Linux)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE / 2**20
    except (OSError, IndexError, ValueError):
        return 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class RssSampler:
    """Samples RSS every ``interval_s`` from a daemon thread, with the blocks seen so far.

    Quarters are mapped by progress, not by time: the sample nearest after each quarter of the
    blocks, so a slow start does not shift them.
    """

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.blocks = 0  # advanced by the caller's on_block hook
        self.samples: list[tuple[float, int, float]] = []  # (seconds since start, blocks, MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._t0 = time.monotonic()

    def start(self) -> RssSampler:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.samples.append((time.monotonic() - self._t0, self.blocks, rss_mb()))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self._t0, self.blocks, rss_mb()))
            self._stop.wait(self.interval_s)

    def summary(self, total_blocks: int) -> dict:
        """Peak, final and per-quarter RSS (MB); ``growth_q2_to_end`` is Q4 / Q2 - 1.

        Q4 is the RSS when the last block entered the flow; "final" is after the run ended (it
        includes the last flush and the teardown), reported but not used for flatness.
        """
        if not self.samples:
            return {"peak_mb": 0.0, "final_mb": 0.0, "quarters_mb": [], "growth_q2_to_end": None}
        quarters = []
        for q in (1, 2, 3, 4):
            target = math.ceil(total_blocks * q / 4)
            hit = next((s for s in self.samples if s[1] >= target), self.samples[-1])
            quarters.append(round(hit[2], 1))
        final = self.samples[-1][2]
        growth = (quarters[3] / quarters[1] - 1.0) if quarters[1] > 0 else None
        return {"peak_mb": round(max(s[2] for s in self.samples), 1), "final_mb": round(final, 1),
                "quarters_mb": quarters,
                "growth_q2_to_end": None if growth is None else round(growth, 4),
                "samples": len(self.samples)}


class LatencyTracker:
    """Block-to-commit latencies: alerts of a block, and the block's own ``blocks`` row.

    A block's alert latency is the time from its ``on_block`` to the first commit holding one of
    its alerts (``Alert.block_number`` is column 3 of an alert row); blocks without alerts have
    none. The ``blocks``-row latency exists for every block: the pipeline's floor.
    """

    ALERT_BLOCK_COLUMN = 3

    def __init__(self) -> None:
        self.entered: dict[int, float] = {}
        self.alert_s: dict[int, float] = {}
        self.block_s: dict[int, float] = {}

    def on_block(self, number: int) -> None:
        self.entered.setdefault(number, time.perf_counter())

    def on_commit(self, rows: dict[str, list[tuple]]) -> None:
        now = time.perf_counter()
        for row in rows.get("blocks", ()):
            self._mark(self.block_s, row[0], now)
        alerts = rows.get("alerts")
        if alerts:
            for number in {row[self.ALERT_BLOCK_COLUMN] for row in alerts}:
                self._mark(self.alert_s, number, now)

    def _mark(self, into: dict[int, float], number: int, now: float) -> None:
        if number not in into:
            started = self.entered.get(number)
            if started is not None:
                into[number] = now - started

    def summary(self) -> dict:
        return {"alert": distribution(list(self.alert_s.values())),
                "block_commit": distribution(list(self.block_s.values()))}


def distribution(values: Sequence[float]) -> dict:
    """Count, p50/p95/p99 and max of latencies, in milliseconds."""
    if not values:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    return {"n": len(values), **{f"p{q}_ms": round(percentile(values, q) * 1000, 1) for q in (50, 95, 99)},
            "max_ms": round(max(values) * 1000, 1)}
