"""Bytewax source replaying recorded blocks, in order, resumable, optionally paced.

One partition reads all files in order (block order matters to every windowed feature). Its
snapshot is the position *after* the last item emitted plus the last block height, so a resumed
run continues at the next block. A block whose height is not above the last one emitted
(duplicate or out of order) and a line that is not JSON become dead letters, never a crash. Only a
block whose header is valid moves that guard: one hostile line claiming height 2**62 must not turn
every later block into an "out-of-order" dead letter.

Pacing: ``speed = 0`` replays as fast as possible; ``speed = N`` replays N times faster than the
chain produced the blocks (by their timestamps), waiting with ``next_awake`` rather than sleeping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from pipeline.errors import DecodeError
from pipeline.operators.scalars import parse_block_header
from pipeline.records import DeadLetter, RawBlock
from pipeline.sources.files import (
    DEFAULT_LIMITS,
    ReadLimits,
    ReplayItem,
    block_timestamp,
    iter_replay,
    resolve_inputs,
)

log = logging.getLogger(__name__)


class ReplayState(NamedTuple):
    """Resume state: read from ``(file_index, item_index)``; ``last_height`` guards ordering."""

    file_index: int
    item_index: int
    last_height: int


@dataclass(frozen=True)
class ReplaySource(FixedPartitionedSource[RawBlock | DeadLetter, ReplayState]):
    """Replay files or directories (see :mod:`pipeline.sources.files`) as ``RawBlock`` items."""

    paths: tuple[str, ...]
    source_name: str = "replay"
    speed: float = 0.0
    batch_blocks: int = 1  # see pipeline.config.PipelineSettings.batch_blocks
    limits: ReadLimits = DEFAULT_LIMITS  # see pipeline.config.LimitSettings

    def list_parts(self) -> list[str]:
        return [self.source_name]

    def build_part(self, step_id: str, for_part: str,
                   resume_state: ReplayState | None) -> _ReplayPartition:
        files = resolve_inputs(list(self.paths))
        return _ReplayPartition(files, self.source_name, resume_state or ReplayState(0, 0, -1),
                                self.speed, max(1, self.batch_blocks), self.limits)


class _ReplayPartition(StatefulSourcePartition[RawBlock | DeadLetter, ReplayState]):
    def __init__(self, files: list[Path], source: str, state: ReplayState, speed: float,
                 batch_blocks: int, limits: ReadLimits = DEFAULT_LIMITS) -> None:
        self._files = files
        self._source = source
        self._state = state
        self._items: Iterator[ReplayItem] = iter_replay(files, (state.file_index, state.item_index), limits)
        self._speed = speed
        self._batch = 1 if speed > 0 else batch_blocks
        self._anchor: tuple[float, int] | None = None  # (wall clock, block ts) when pacing started
        self._next_due: float | None = None
        self._held: ReplayItem | None = None

    def next_batch(self) -> list[RawBlock | DeadLetter]:
        out: list[RawBlock | DeadLetter] = []
        while len(out) < self._batch:
            item = self._held or next(self._items, None)
            self._held = None
            if item is None:
                if not out:
                    raise StopIteration
                break
            if self._speed > 0 and item.payload is not None and not self._due(item):
                self._held = item  # not yet: emit it once its time has come
                break
            out.append(self._accept(item))
        return out

    def _due(self, item: ReplayItem) -> bool:
        ts = block_timestamp(item.payload)
        if ts is None:
            return True
        now = time.monotonic()
        if self._anchor is None:
            self._anchor = (now, ts)
        due = self._anchor[0] + (ts - self._anchor[1]) / 1000.0 / self._speed
        self._next_due = due
        return now >= due

    def _accept(self, item: ReplayItem) -> RawBlock | DeadLetter:
        s = self._state
        if item.error:  # a line or file that could not be read (a JSON `null` is a payload: decode rejects it)
            self._state = ReplayState(item.file_index, item.item_index + 1, s.last_height)
            return DeadLetter(self._source, item.where, item.error, item.raw, _now())
        try:
            height: int | None = parse_block_header(item.payload)[0]
        except DecodeError:
            height = None  # decode makes it a dead letter, with the reason; the guard stays put
        if height is not None and height <= s.last_height:
            self._state = ReplayState(item.file_index, item.item_index + 1, s.last_height)
            kind = "duplicate" if height == s.last_height else "out-of-order"
            return DeadLetter(self._source, item.where,
                              f"{kind} block {height} after block {s.last_height}", "", _now())
        self._state = ReplayState(item.file_index, item.item_index + 1,
                                  height if height is not None else s.last_height)
        return RawBlock(self._source, item.where, item.payload)

    def next_awake(self) -> datetime | None:
        if self._held is None or self._next_due is None:
            return None
        delay = max(0.0, self._next_due - time.monotonic())
        return datetime.now(UTC) + timedelta(seconds=delay)

    def snapshot(self) -> ReplayState:
        return self._state


def _now() -> int:
    return int(time.time() * 1000)

