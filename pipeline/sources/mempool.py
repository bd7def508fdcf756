"""Bytewax sources of pending transactions: a websocket feed, or polling a node's pending pool.

Both emit :class:`PendingTx` items (the transaction exactly as the node shows it, with the wall
time it was first seen), :class:`~pipeline.live.health.SourceHealth` rows and
:class:`~pipeline.records.DeadLetter` items; decoding and the pending lifecycle happen downstream
(:mod:`pipeline.live.pending`).

The feed is untrusted. Every message is validated before use (:mod:`pipeline.live.feed`: types,
sizes, a 64-hex txID); a bad one becomes a dead letter with the reason and the feed goes on.

**Websocket** (``ws://`` / ``wss://``): a client thread (``websockets``, asyncio) reads JSON frames
``{"type": "pending_transaction", "seq": …, "transaction": {…}}`` into a queue bounded by count
and by bytes (:class:`~pipeline.live.bounded_queue.BoundedQueue`); the partition drains it without
blocking. A frame over ``max_message_bytes`` is refused by websockets itself (``max_size``: it
closes the connection with 1009 before buffering more): a dead letter, then a reconnect. When the
queue stays full for ``queue_wait_s`` the message is dropped and dead-lettered, so the reader never
blocks for ever. Handling of each message is wrapped, so no message can end the thread; a thread
that ends anyway is noticed by the partition, which marks health disconnected, logs an error and
starts a new one, and after ``max_restarts`` failures in a row without a delivered transaction
stops the run with one clear line. The connection is kept alive with pings (``heartbeat_s``), and
re-opened with exponential backoff and jitter whenever it drops; each outage is logged when it
starts and when it ends, with its length and how many ``seq`` numbers were skipped over it. Feeds
that replay what is still pending on connect (the devnet does) lose nothing across a reconnect;
the replayed duplicates are dropped by a bounded memory of recent tx ids. The URL is logged
redacted (gateways put keys in it).

**Polling** (``poll``) the node's pending pool instead: :mod:`pipeline.sources.mempool_poll`.

The pending pool is transient, so the snapshot is just a counter; after a restart the feed (or the
poll) shows what is pending then.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from pipeline.errors import ConfigError, PipelineError
from pipeline.live.backoff import Backoff
from pipeline.live.bounded_queue import BoundedQueue
from pipeline.live.feed import FeedTx, Rejected, excerpt, parse_frame
from pipeline.live.health import HealthMeter, SourceHealth
from pipeline.records import DeadLetter
from pipeline.redact import redact_url, register_secret, url_secrets

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 4 * 2**20
DEFAULT_QUEUE_BYTES = 64 * 2**20
_HEALTHY_S = 5.0  # a connection open this long resets the reconnect backoff


class PendingTx(NamedTuple):
    source: str
    seq: int  # the feed's sequence number (websocket) or our own count (poll)
    seen_at: int  # wall ms when first seen
    tx: dict[str, Any]


PendingItem = PendingTx | SourceHealth | DeadLetter


class SeenIds:
    """A bounded set of recently seen transaction ids (insertion order, oldest evicted)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, tx_id: str) -> bool:
        """True if ``tx_id`` is new."""
        if tx_id in self._ids:
            return False
        self._ids[tx_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True

    def __contains__(self, tx_id: str) -> bool:
        return tx_id in self._ids


class _Rejects:
    """Dead letters made by a reader thread, waiting for the partition; bounded, with the excess
    counted and logged (a flood of bad messages must not become a flood of memory or log lines)."""

    def __init__(self, source: str, health: HealthMeter, keep: int = 10_000) -> None:
        self.source = source
        self.health = health
        self._letters: deque[DeadLetter] = deque()
        self.keep = keep
        self.total = 0
        self.lost = 0

    def add(self, position: str, reason: str, raw: str) -> None:
        self.total += 1
        self.health.error(f"pending message rejected: {reason}")
        if self.total <= 20 or self.total % 1000 == 0:
            log.warning("%s: pending message rejected (%d so far) at %s: %s", self.source, self.total,
                        position, reason)
        if len(self._letters) >= self.keep:
            self.lost += 1
            return
        self._letters.append(DeadLetter(self.source, position, f"pending: {reason}", raw, _now_ms()))

    def drain(self) -> list[DeadLetter]:
        out = []
        while self._letters:
            out.append(self._letters.popleft())
        return out


# -- websocket --------------------------------------------------------------------------------
@dataclass(frozen=True)
class WebsocketPendingSource(FixedPartitionedSource[PendingItem, int]):
    """Pending transactions from a websocket feed; see the module doc."""

    url: str
    source_name: str = "mempool"
    heartbeat_s: float = 10.0
    max_backoff_s: float = 30.0
    queue_size: int = 100_000
    queue_bytes: int = DEFAULT_QUEUE_BYTES
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    queue_wait_s: float = 1.0  # how long a message waits for room in a full queue before it is dropped
    seen_memory: int = 200_000
    health_every_s: float = 10.0
    poll_s: float = 0.05  # how often an idle partition looks at the queue
    max_restarts: int = 5  # client threads that may die in a row before the run stops

    def __post_init__(self) -> None:
        if not self.url.startswith(("ws://", "wss://")):
            raise ConfigError(f"--mempool {redact_url(self.url)}: expected ws://, wss:// or 'poll'")
        if self.max_message_bytes < 1024 or self.queue_bytes < self.max_message_bytes or self.queue_size < 1:
            raise ConfigError(f"pending feed limits: need max_message_bytes >= 1024 and queue_bytes >= "
                              f"max_message_bytes, queue_size >= 1 (got {self.max_message_bytes}, "
                              f"{self.queue_bytes}, {self.queue_size})")

    def list_parts(self) -> list[str]:
        return [self.source_name]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _WsPartition:
        return _WsPartition(self, resume_state or 0)


class _WsPartition(StatefulSourcePartition[PendingItem, int]):
    def __init__(self, cfg: WebsocketPendingSource, emitted: int) -> None:
        self.cfg = cfg
        self.where = redact_url(cfg.url)
        register_secret(*url_secrets(cfg.url))
        self.emitted = emitted
        self.health = HealthMeter(cfg.source_name, cfg.health_every_s)
        self.health.connected = False
        self.queue: BoundedQueue[tuple[int, int, dict[str, Any], str]] = BoundedQueue(cfg.queue_size,
                                                                                       cfg.queue_bytes)
        self.rejects = _Rejects(cfg.source_name, self.health)
        self.dropped_full = 0  # messages dropped because the queue stayed full
        self._seen = SeenIds(cfg.seen_memory)
        self._stop = threading.Event()
        self._idle_until = 0.0
        self._frames = 0
        self._deaths = 0  # client threads that ended by themselves, in a row
        self._died: str = ""
        self._fatal: str = ""
        self._start()

    def _start(self) -> None:
        self._died = ""
        self._thread = threading.Thread(target=self._run, name=f"ws-{self.cfg.source_name}", daemon=True)
        self._thread.start()

    def next_batch(self) -> list[PendingItem]:
        self._supervise()
        out: list[PendingItem] = list(self.rejects.drain())
        txs = 0
        for seq, seen_at, tx, tx_id in self.queue.drain(10_000):
            if not self._seen.add(tx_id):
                continue  # replayed after a reconnect
            out.append(PendingTx(self.cfg.source_name, seq, seen_at, tx))
            self.health.emitted(seq, seen_at)
            txs += 1
        self.emitted += txs
        if txs:
            self._deaths = 0
        if not out:
            self._idle_until = time.monotonic() + self.cfg.poll_s
        if self.health.due():
            out.append(self.health.row())
        return out

    def _supervise(self) -> None:
        """A client thread that ended although nobody stopped it: say so, start another, or stop the run."""
        if self._thread.is_alive() or self._stop.is_set():
            return
        reason = self._fatal or self._died or "ended without an error"
        self.health.connected = False
        self.health.error(f"websocket client stopped: {reason}")
        self._deaths += 1
        if self._fatal or self._deaths > self.cfg.max_restarts:
            raise PipelineError(f"{self.cfg.source_name}: the pending feed {self.where} cannot be read "
                                f"({self._deaths} client failure(s) in a row): {reason}")
        log.error("%s: websocket client for %s stopped (%s); starting a new one (%d of %d)",
                  self.cfg.source_name, self.where, reason, self._deaths, self.cfg.max_restarts)
        self._start()

    def next_awake(self) -> datetime | None:
        delay = self._idle_until - time.monotonic()
        return datetime.now(UTC) + timedelta(seconds=delay) if delay > 0 else None

    def snapshot(self) -> int:
        return self.emitted

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    # -- the client thread -----------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._client())
        except BaseException as err:  # noqa: BLE001 - a thread that dies must be noticed: _supervise
            self._died = f"{type(err).__name__}: {err}"[:300]
            self.health.connected = False

    async def _client(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

        backoff = Backoff(cap_s=self.cfg.max_backoff_s)
        down_since: float | None = time.monotonic()
        last_seq = 0
        first = True
        while not self._stop.is_set():
            opened, delivered = 0.0, 0
            try:
                async with connect(self.cfg.url, ping_interval=self.cfg.heartbeat_s,
                                   ping_timeout=self.cfg.heartbeat_s, open_timeout=10,
                                   max_size=self.cfg.max_message_bytes) as ws:
                    if down_since is not None and not first:
                        log.warning("%s: websocket %s back after %.1f s outage", self.cfg.source_name,
                                    self.where, time.monotonic() - down_since)
                        self.health.reconnected()
                    elif first:
                        log.info("%s: websocket connected to %s", self.cfg.source_name, self.where)
                    first, down_since, opened = False, None, time.monotonic()
                    self.health.connected = True
                    last_seq, delivered = await self._read(ws, last_seq)
            except InvalidURI:
                self._fatal = f"invalid websocket URL {self.where}"
                return
            except ConnectionClosed as err:
                if err.sent is not None and err.sent.code == 1009:  # we refused a frame over max_size
                    self.rejects.add(f"after seq {last_seq}", f"message over the "
                                     f"{self.cfg.max_message_bytes:,}-byte limit; connection closed (1009) "
                                     "and re-opened", "")
                else:
                    self.health.error(f"websocket: {type(err).__name__}: {err}")
            except (TimeoutError, OSError, InvalidHandshake) as err:
                self.health.error(f"websocket: {type(err).__name__}: {err}")
            if self._stop.is_set():
                return
            if delivered or (opened and time.monotonic() - opened >= _HEALTHY_S):
                backoff.reset()  # only a healthy connection resets: a feed that fails at once backs off
            if down_since is None:
                down_since = time.monotonic()
                log.warning("%s: websocket %s lost (%s); reconnecting", self.cfg.source_name, self.where,
                            self.health.last_error or "closed")
            self.health.connected = False
            delay = backoff.next_delay()
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline and not self._stop.is_set():
                await asyncio.sleep(min(0.05, delay))

    async def _read(self, ws: Any, last_seq: int) -> tuple[int, int]:
        """Read frames until stopped or closed; returns the last seq and how many were queued."""
        delivered = 0
        while not self._stop.is_set():
            try:
                frame = await asyncio.wait_for(ws.recv(), timeout=0.2)
            except TimeoutError:
                continue
            self._frames += 1
            try:
                parsed = parse_frame(frame, self.cfg.max_message_bytes)
                if parsed is None:
                    continue
                if isinstance(parsed, Rejected):
                    self.rejects.add(self._position(parsed.seq), parsed.reason, parsed.raw)
                    continue
                last_seq = self._note_seq(parsed, last_seq)
                if await self._enqueue(parsed, len(frame)):
                    delivered += 1
            except Exception as err:  # noqa: BLE001 - one message never ends the feed
                self.rejects.add(self._position(-1), f"could not be handled: {type(err).__name__}: {err}",
                                 excerpt(frame))
        return last_seq, delivered

    def _position(self, seq: int) -> str:
        return f"seq {seq}" if seq >= 0 else f"frame {self._frames} at {_now_ms()}"

    def _note_seq(self, msg: FeedTx, last_seq: int) -> int:
        if last_seq and msg.seq > last_seq + 1:
            log.info("%s: %d feed sequence numbers skipped (%d..%d): transactions that entered "
                     "and left the pool while we were away", self.cfg.source_name,
                     msg.seq - last_seq - 1, last_seq + 1, msg.seq - 1)
        return max(last_seq, msg.seq)

    async def _enqueue(self, msg: FeedTx, nbytes: int) -> bool:
        """Queue ``msg``, waiting up to ``queue_wait_s`` for room (the event loop keeps answering
        pings meanwhile); a message that still does not fit is dropped and dead-lettered."""
        item = (msg.seq, msg.seen_at or _now_ms(), msg.tx, msg.tx_id)
        deadline = time.monotonic() + self.cfg.queue_wait_s
        while not self.queue.offer(item, nbytes):
            if time.monotonic() >= deadline or self._stop.is_set():
                self.dropped_full += 1
                self.rejects.add(self._position(msg.seq), f"queue full ({self.queue.max_items:,} messages / "
                                 f"{self.queue.max_bytes:,} bytes) for {self.cfg.queue_wait_s} s; dropped",
                                 msg.tx_id)
                return False
            await asyncio.sleep(0.01)
        return True


def _now_ms() -> int:
    return int(time.time() * 1000)
