"""End one source when another ends: a pending-pool feed has no end of its own.

``run --node URL --to-block N --mempool ws://…`` must stop once block N is in. The node source
ends by itself; the websocket feed never does. :class:`SignalsEnd` wraps the node source and sets
an event when its partition finishes; :class:`EndsWith` wraps the pending source and finishes its
partition once that event is set (after emitting what it already received).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition


@dataclass(frozen=True)
class SignalsEnd(FixedPartitionedSource):
    inner: FixedPartitionedSource
    ended: threading.Event = field(default_factory=threading.Event, compare=False)

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _Part:
        return _Part(self.inner.build_part(step_id, for_part, resume_state), self.ended, signal=True)


@dataclass(frozen=True)
class EndsWith(FixedPartitionedSource):
    inner: FixedPartitionedSource
    ended: threading.Event = field(compare=False)

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _Part:
        return _Part(self.inner.build_part(step_id, for_part, resume_state), self.ended, signal=False)


class _Part(StatefulSourcePartition):
    def __init__(self, inner: StatefulSourcePartition, ended: threading.Event, signal: bool) -> None:
        self._inner = inner
        self._ended = ended
        self._signal = signal

    def next_batch(self) -> list[Any]:
        if not self._signal and self._ended.is_set():
            last = list(self._inner.next_batch())  # what already arrived still goes out
            if last:
                return last
            raise StopIteration
        try:
            return list(self._inner.next_batch())
        except StopIteration:
            if self._signal:
                self._ended.set()
            raise

    def next_awake(self) -> datetime | None:
        if not self._signal and self._ended.is_set():
            return None
        return self._inner.next_awake()

    def snapshot(self) -> Any:
        return self._inner.snapshot()

    def close(self) -> None:
        self._inner.close()
