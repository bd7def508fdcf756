"""Websocket feed of pending transactions (websockets asyncio server in its own thread).

Each client receives, as JSON text frames:

* ``{"type": "hello", "head": N, "pending": n, "visible": bool}`` on connect;
* ``{"type": "pending_transaction", "seq": s, "seen_at": ms, "transaction": {...}}`` for every
  transaction entering the pending pool, the transaction exactly as ``gettransactionfrompending``
  returns it. ``seq`` grows by one per transaction over the life of the server; ``seen_at`` is the
  wall-clock ms at which the devnet announced it.

On connect a client first receives every transaction still pending (with its original ``seq``
and ``seen_at``), so a client that reconnects before a block lands misses nothing. Query
``?visible=true`` selects base58 addresses (default hex, like the node). The path is free.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from pipeline.devnet.pending import PendingPool
from pipeline.devnet.visible import convert_transaction

log = logging.getLogger(__name__)


class _Entry(NamedTuple):
    seq: int
    seen_at: int
    tx: dict[str, Any]  # hex form

    def message(self, visible: bool) -> str:
        tx = convert_transaction(self.tx, True) if visible else self.tx
        return orjson.dumps({"type": "pending_transaction", "seq": self.seq, "seen_at": self.seen_at,
                             "transaction": tx}).decode()


class PendingFeed:
    """Pushes the pending pool's new transactions to every websocket client."""

    def __init__(self, pool: PendingPool, head: Any, host: str, port: int, tick_s: float = 0.02) -> None:
        self.pool = pool
        self._head = head  # callable -> current head height
        self.host = host
        self.port = port
        self.tick_s = tick_s
        self._seq = 0
        self._entries: dict[str, _Entry] = {}
        self._queues: dict[asyncio.Queue[str], bool] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.sent = 0

    # -- lifecycle (called from other threads) ---------------------------------------------
    def start(self) -> int:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="devnet-ws", daemon=True)
        self._thread.start()
        if not ready.wait(10) or self._server is None:
            raise RuntimeError(f"devnet websocket server did not start on {self.host}:{self.port}")
        return self.port

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = self._server = None

    def drop_connections(self) -> int:
        """Abort every client connection without a closing handshake; returns how many."""
        if self._loop is None or self._server is None:
            return 0
        conns = list(self._server.connections)
        for conn in conns:
            self._loop.call_soon_threadsafe(conn.transport.abort)
        return len(conns)

    def clients(self) -> int:
        return len(self._queues)

    # -- inside the loop -------------------------------------------------------------------
    def _run(self, ready: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._open())
        ready.set()
        self._loop.run_forever()

    async def _open(self) -> None:
        self._server = await serve(self._client, self.host, self.port, ping_interval=20, ping_timeout=20)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    async def _close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._queues.clear()

    async def _tick_forever(self) -> None:
        while True:
            try:
                self._tick()
            except Exception:  # keep the feed alive whatever one tick hits
                log.exception("devnet: pending feed tick failed")
            await asyncio.sleep(self.tick_s)

    def _tick(self) -> None:
        ids = self.pool.ids()
        new = [i for i in ids if i not in self._entries]
        if new:
            bodies = {tx["txID"]: tx for tx in self.pool.transactions(False)}
            now_ms = int(time.time() * 1000)
            fresh = []
            for tx_id in new:
                tx = bodies.get(tx_id)
                if tx is None:
                    continue
                self._seq += 1
                entry = _Entry(self._seq, now_ms, tx)
                self._entries[tx_id] = entry
                fresh.append(entry)
            for queue, visible in list(self._queues.items()):
                for entry in fresh:
                    queue.put_nowait(entry.message(visible))
            self.sent += len(fresh)
        if len(self._entries) != len(ids) or new:
            keep = set(ids)
            self._entries = {k: v for k, v in self._entries.items() if k in keep}

    @staticmethod
    async def _send_all(conn: ServerConnection, queue: "asyncio.Queue[str]") -> None:
        try:
            while True:
                await conn.send(await queue.get())
        except ConnectionClosed:
            pass

    async def _client(self, conn: ServerConnection) -> None:
        query = dict(parse_qsl(urlsplit(conn.request.path if conn.request else "/").query))
        visible = query.get("visible", "false").lower() == "true"
        queue: asyncio.Queue[str] = asyncio.Queue()
        snapshot = sorted(self._entries.values())
        queue.put_nowait(orjson.dumps({"type": "hello", "head": self._head(), "pending": len(snapshot),
                                       "visible": visible}).decode())
        for entry in snapshot:
            queue.put_nowait(entry.message(visible))
        self._queues[queue] = visible
        log.info("devnet: websocket client %s connected (%d pending replayed)", conn.remote_address,
                 len(snapshot))
        sender = asyncio.get_running_loop().create_task(self._send_all(conn, queue))
        try:
            await conn.wait_closed()
        finally:
            sender.cancel()
            self._queues.pop(queue, None)
            log.info("devnet: websocket client %s gone", conn.remote_address)
