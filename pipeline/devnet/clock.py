"""When each block of the devnet's chain becomes the head: wall time, paused, or set by hand.

Block index ``i`` (0-based in the chain) is visible from ``t0 + (i - base) * interval``, where
``interval`` is 3 s divided by the speed. Tests pause the clock or set the head directly so that
what they observe does not depend on scheduling; a paused clock resumes from where it stopped.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class HeadClock:
    """Maps wall time to the index of the head block; thread-safe."""

    def __init__(self, n_blocks: int, interval_s: float, initial_index: int = 0,
                 now: Callable[[], float] = time.monotonic) -> None:
        if n_blocks < 1:
            raise ValueError("a chain needs at least one block")
        self.n_blocks = n_blocks
        self.interval = max(0.0, interval_s)
        self._now = now
        self._lock = threading.Lock()
        self._t0 = now()
        self._base = min(max(0, initial_index), n_blocks - 1)
        self._paused: int | None = None

    def now(self) -> float:
        return self._now()

    def head_index(self, at: float | None = None) -> int:
        """Index of the newest visible block at time ``at`` (default now)."""
        with self._lock:
            if self._paused is not None:
                return self._paused
            if self.interval <= 0:
                return self.n_blocks - 1
            t = self._now() if at is None else at
            steps = math.floor((t - self._t0) / self.interval + 1e-9)
            return min(self.n_blocks - 1, self._base + max(0, steps))

    def time_of(self, index: int) -> float:
        """Wall time (monotonic) at which ``index`` becomes visible; ``inf`` while paused."""
        with self._lock:
            if self._paused is not None:
                return 0.0 if index <= self._paused else math.inf
            if self.interval <= 0:
                return self._t0
            return self._t0 + (index - self._base) * self.interval

    @property
    def paused(self) -> bool:
        return self._paused is not None

    def pause(self) -> int:
        """Freeze the head where it is; returns the head index."""
        head = self.head_index()
        with self._lock:
            self._paused = head
        return head

    def set_head(self, index: int) -> int:
        """Freeze the head at ``index`` (clamped to the chain)."""
        with self._lock:
            self._paused = min(max(0, index), self.n_blocks - 1)
            return self._paused

    def resume(self) -> None:
        """Let the head advance with wall time again, from the current head."""
        with self._lock:
            if self._paused is not None:
                self._base = self._paused
                self._t0 = self._now()
                self._paused = None
