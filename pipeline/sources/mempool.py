"""Bytewax sources of pending transactions: a websocket feed, or polling a node's pending pool.

Both emit :class:`PendingTx` items (the transaction exactly as the node shows it, with the wall
time it was first seen) and :class:`~pipeline.live.health.SourceHealth` rows; decoding and the
pending lifecycle happen downstream (:mod:`pipeline.live.pending`).

**Websocket** (``ws://`` / ``wss://``): a client thread (``websockets``, asyncio) reads JSON frames
``{"type": "pending_transaction", "seq": …, "transaction": {…}}`` into a bounded queue; the
partition drains it without blocking. The connection is kept alive with pings (the heartbeat:
``heartbeat_s``), and re-opened with exponential backoff and jitter whenever it drops; each outage
is logged when it starts and when it ends, with its length and how many ``seq`` numbers were
skipped over it. Feeds that replay what is still pending on connect (the devnet does) lose nothing
across a reconnect; the replayed duplicates are dropped by a bounded memory of recent tx ids.

**Polling** (``poll``): ``gettransactionlistfrompending`` then ``gettransactionfrompending`` for each
new id, which often answers ``{}`` because the transaction was packed in between: that is normal
and only counted.

The pending pool is transient, so the snapshot is just a counter; after a restart the feed (or the
poll) shows what is pending then.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from pipeline.errors import ConfigError
from pipeline.live.backoff import Backoff
from pipeline.live.health import HealthMeter, SourceHealth
from pipeline.sources.tron_http import NodeClient, NodeError

log = logging.getLogger(__name__)


class PendingTx(NamedTuple):
    source: str
    seq: int  # the feed's sequence number (websocket) or our own count (poll)
    seen_at: int  # wall ms when first seen
    tx: dict[str, Any]


PendingItem = PendingTx | SourceHealth


class _SeenIds:
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


# -- websocket --------------------------------------------------------------------------------
@dataclass(frozen=True)
class WebsocketPendingSource(FixedPartitionedSource[PendingItem, int]):
    """Pending transactions from a websocket feed; see the module doc."""

    url: str
    source_name: str = "mempool"
    heartbeat_s: float = 10.0
    max_backoff_s: float = 30.0
    queue_size: int = 100_000
    seen_memory: int = 200_000
    health_every_s: float = 10.0
    poll_s: float = 0.05  # how often an idle partition looks at the queue

    def __post_init__(self) -> None:
        if not self.url.startswith(("ws://", "wss://")):
            raise ConfigError(f"--mempool {self.url!r}: expected ws://, wss:// or 'poll'")

    def list_parts(self) -> list[str]:
        return [self.source_name]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _WsPartition:
        return _WsPartition(self, resume_state or 0)


class _WsPartition(StatefulSourcePartition[PendingItem, int]):
    def __init__(self, cfg: WebsocketPendingSource, emitted: int) -> None:
        self.cfg = cfg
        self.emitted = emitted
        self.health = HealthMeter(cfg.source_name, cfg.health_every_s)
        self.health.connected = False
        self._queue: queue.Queue[tuple[int, int, dict[str, Any]]] = queue.Queue(cfg.queue_size)
        self._seen = _SeenIds(cfg.seen_memory)
        self._stop = threading.Event()
        self._idle_until = 0.0
        self._thread = threading.Thread(target=self._run, name=f"ws-{cfg.source_name}", daemon=True)
        self._thread.start()

    def next_batch(self) -> list[PendingItem]:
        out: list[PendingItem] = []
        while len(out) < 10_000:
            try:
                seq, seen_at, tx = self._queue.get_nowait()
            except queue.Empty:
                break
            tx_id = tx.get("txID")
            if not isinstance(tx_id, str) or not self._seen.add(tx_id):
                continue  # replayed after a reconnect, or malformed (decode would dead-letter it)
            out.append(PendingTx(self.cfg.source_name, seq, seen_at, tx))
            self.health.emitted(seq, seen_at)
        self.emitted += len(out)
        if not out:
            self._idle_until = time.monotonic() + self.cfg.poll_s
        if self.health.due():
            out.append(self.health.row())
        return out

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
        asyncio.run(self._client())

    async def _client(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

        backoff = Backoff(cap_s=self.cfg.max_backoff_s)
        down_since: float | None = time.monotonic()
        last_seq = 0
        first = True
        while not self._stop.is_set():
            try:
                async with connect(self.cfg.url, ping_interval=self.cfg.heartbeat_s,
                                   ping_timeout=self.cfg.heartbeat_s, open_timeout=10,
                                   max_size=2**24) as ws:
                    if down_since is not None and not first:
                        log.warning("%s: websocket %s back after %.1f s outage", self.cfg.source_name,
                                    self.cfg.url, time.monotonic() - down_since)
                        self.health.reconnected()
                    elif first:
                        log.info("%s: websocket connected to %s", self.cfg.source_name, self.cfg.url)
                    first, down_since = False, None
                    self.health.connected = True
                    backoff.reset()
                    last_seq = await self._read(ws, last_seq)
            except InvalidURI as err:
                log.error("%s: %s", self.cfg.source_name, err)
                return
            except (TimeoutError, OSError, ConnectionClosed, InvalidHandshake) as err:
                self.health.error(f"websocket: {type(err).__name__}: {err}")
            if self._stop.is_set():
                return
            if down_since is None:
                down_since = time.monotonic()
                log.warning("%s: websocket %s lost (%s); reconnecting", self.cfg.source_name, self.cfg.url,
                            self.health.last_error or "closed")
            self.health.connected = False
            delay = backoff.next_delay()
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline and not self._stop.is_set():
                await asyncio.sleep(min(0.05, delay))

    async def _read(self, ws: Any, last_seq: int) -> int:
        while not self._stop.is_set():
            try:
                frame = await asyncio.wait_for(ws.recv(), timeout=0.2)
            except TimeoutError:
                continue
            try:
                msg = orjson.loads(frame)
            except orjson.JSONDecodeError:
                self.health.error(f"websocket: frame is not JSON: {str(frame)[:100]}")
                continue
            if not isinstance(msg, dict) or msg.get("type") != "pending_transaction":
                continue
            tx = msg.get("transaction")
            seq = int(msg.get("seq") or 0)
            if not isinstance(tx, dict):
                continue
            if last_seq and seq > last_seq + 1:
                log.info("%s: %d feed sequence numbers skipped (%d..%d): transactions that entered "
                         "and left the pool while we were away", self.cfg.source_name,
                         seq - last_seq - 1, last_seq + 1, seq - 1)
            last_seq = max(last_seq, seq)
            seen_at = int(msg.get("seen_at") or time.time() * 1000)
            await asyncio.to_thread(self._queue.put, (seq, seen_at, tx))  # backpressure, not loss
        return last_seq


# -- polling ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PollingPendingSource(FixedPartitionedSource[PendingItem, int]):
    """Pending transactions polled from a node's pending pool; see the module doc."""

    endpoint: str
    api_key: str | None = None
    source_name: str = "mempool"
    poll_s: float = 1.0
    timeout_s: float = 5.0
    max_per_poll: int = 2_000
    seen_memory: int = 200_000
    max_backoff_s: float = 30.0
    health_every_s: float = 10.0

    def list_parts(self) -> list[str]:
        return [self.source_name]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _PollPartition:
        return _PollPartition(self, resume_state or 0)


class _PollPartition(StatefulSourcePartition[PendingItem, int]):
    def __init__(self, cfg: PollingPendingSource, emitted: int) -> None:
        self.cfg = cfg
        self.emitted = emitted
        self.node = NodeClient(cfg.endpoint, cfg.api_key, cfg.timeout_s)
        self.backoff = Backoff(cap_s=cfg.max_backoff_s)
        self.health = HealthMeter(cfg.source_name, cfg.health_every_s)
        self._seen = _SeenIds(cfg.seen_memory)
        self._wake = 0.0
        self.vanished = 0  # ids listed but gone ({}) by the time we asked for them

    def next_batch(self) -> list[PendingItem]:
        out: list[PendingItem] = []
        if time.monotonic() >= self._wake:
            try:
                self._poll(out)
                self.backoff.reset()
                if not self.health.connected:
                    self.health.connected = True
                    self.health.reconnected()
                self._wake = time.monotonic() + self.cfg.poll_s
            except NodeError as err:
                if not err.retryable:
                    raise
                self.health.error(str(err))
                self.health.connected = not err.disconnected
                delay = self.backoff.next_delay(err.retry_after_s)
                self._wake = time.monotonic() + delay
                log.warning("%s: %s; retry in %.1f s", self.cfg.source_name, err, delay)
        if self.health.due():
            out.append(self.health.row())
        return out

    def _poll(self, out: list[PendingItem]) -> None:
        listed = self.node.call("wallet/gettransactionlistfrompending", {})
        ids = listed.get("txId") or [] if isinstance(listed, dict) else []
        fresh = [i for i in ids if isinstance(i, str) and i not in self._seen._ids][: self.cfg.max_per_poll]
        for tx_id in fresh:
            tx = self.node.call("wallet/gettransactionfrompending", {"value": tx_id})
            self._seen.add(tx_id)
            if not tx:
                self.vanished += 1  # packed into a block between the two calls: normal
                continue
            seen_at = int(time.time() * 1000)
            self.emitted += 1
            out.append(PendingTx(self.cfg.source_name, self.emitted, seen_at, tx))
            self.health.emitted(self.emitted, seen_at)

    def next_awake(self) -> datetime | None:
        delay = self._wake - time.monotonic()
        return datetime.now(UTC) + timedelta(seconds=delay) if delay > 0 else None

    def snapshot(self) -> int:
        return self.emitted

    def close(self) -> None:
        self.node.provider.sess.close()
