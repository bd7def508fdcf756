"""A FIFO between a reader thread and the dataflow, bounded by item count *and* by bytes.

A count alone does not bound memory: 100,000 queued messages of 4 MiB each are 400 GB. The
pending-feed reader (:mod:`pipeline.sources.mempool`) offers each message with its size; a full
queue refuses it instead of blocking, so the reader decides how long to wait for room and what to
do with a message that cannot get in (count it, dead-letter it) -- it never waits for ever.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class BoundedQueue(Generic[T]):
    """Thread-safe FIFO holding at most ``max_items`` items and ``max_bytes`` bytes."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        if max_items < 1 or max_bytes < 1:
            raise ValueError(f"queue bounds must be >= 1, got {max_items} items / {max_bytes} bytes")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: deque[tuple[T, int]] = deque()
        self._bytes = 0
        self._lock = threading.Lock()

    def offer(self, item: T, nbytes: int) -> bool:
        """Append ``item`` (``nbytes`` long) if both bounds allow it; False when it does not fit."""
        nbytes = max(0, nbytes)
        with self._lock:
            if len(self._items) >= self.max_items or self._bytes + nbytes > self.max_bytes:
                return False
            self._items.append((item, nbytes))
            self._bytes += nbytes
            return True

    def drain(self, limit: int) -> list[T]:
        """Up to ``limit`` items, oldest first, without waiting."""
        out: list[T] = []
        with self._lock:
            while self._items and len(out) < limit:
                item, nbytes = self._items.popleft()
                self._bytes -= nbytes
                out.append(item)
        return out

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes
