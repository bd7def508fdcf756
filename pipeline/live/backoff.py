"""Exponential backoff with jitter that honours a server's ``Retry-After``.

Sources never sleep: they ask :meth:`Backoff.next_delay` how long to wait and hand the wake-up
time to Bytewax through ``next_awake``. Jitter ("equal jitter": half fixed, half random) keeps
several workers or processes that failed together from retrying in lock-step against a rate limit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delay before the next retry; :meth:`reset` after a success."""

    base_s: float = 0.5
    cap_s: float = 30.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random, repr=False)
    attempts: int = 0

    def next_delay(self, retry_after_s: float | None = None, cap_s: float | None = None) -> float:
        """Seconds to wait now; never less than ``retry_after_s`` (the server knows best)."""
        cap = self.cap_s if cap_s is None else cap_s
        ceiling = min(cap, self.base_s * self.factor ** min(self.attempts, 30))
        self.attempts += 1
        delay = ceiling / 2 + self.rng.random() * ceiling / 2
        if retry_after_s is not None and retry_after_s > 0:
            delay = max(delay, retry_after_s)
        return delay

    def reset(self) -> None:
        self.attempts = 0
