"""Faults the devnet can be told to inject, so live-mode code can be tested against them.

HTTP faults are a queue consumed one per node-API request: ``fail_next(3, 429)`` makes the next
three answers ``429 Too Many Requests`` with ``Retry-After``; ``slow_next(2, 1.5)`` delays the next
two by 1.5 s. Control endpoints (``/devnet/…``) are never affected.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import NamedTuple

REASONS = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout", 403: "Forbidden"}


class HttpFault(NamedTuple):
    status: int  # 0: no error
    retry_after: float
    delay_s: float


class Faults:
    """Pending faults; thread-safe, consumed by the HTTP handler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errors: deque[tuple[int, float]] = deque()
        self._delays: deque[float] = deque()
        self.injected = 0

    def fail_next(self, count: int, status: int = 429, retry_after: float = 1.0) -> None:
        """Answer the next ``count`` node-API requests with ``status`` (429 carries Retry-After)."""
        if not 400 <= status <= 599:
            raise ValueError(f"fault status must be 4xx/5xx, got {status}")
        with self._lock:
            self._errors.extend([(status, retry_after)] * max(0, count))

    def slow_next(self, count: int, seconds: float) -> None:
        """Delay the next ``count`` node-API answers by ``seconds``."""
        with self._lock:
            self._delays.extend([max(0.0, seconds)] * max(0, count))

    def clear(self) -> None:
        with self._lock:
            self._errors.clear()
            self._delays.clear()

    def take(self) -> HttpFault:
        """The fault for the request being answered now (status 0 and no delay when none)."""
        with self._lock:
            status, retry = self._errors.popleft() if self._errors else (0, 0.0)
            delay = self._delays.popleft() if self._delays else 0.0
            if status or delay:
                self.injected += 1
        return HttpFault(status, retry, delay)

    def pending(self) -> dict[str, int]:
        with self._lock:
            return {"errors": len(self._errors), "delays": len(self._delays)}
