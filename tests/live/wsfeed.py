"""A scriptable pending-transaction websocket feed on 127.0.0.1 (a real ``websockets`` server).

``Feed(scripts)`` sends the n-th connection the frames of ``scripts[n]`` (the last script is reused),
then keeps the connection open; a hostile feed in a few lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from typing import Any, Self

import orjson


def pending(tx: dict[str, Any], seq: Any, **extra: Any) -> bytes:
    return orjson.dumps({"type": "pending_transaction", "seq": seq, "seen_at": 1_714_000_000_000,
                         "transaction": tx, **extra})


class Feed:
    def __init__(self, scripts: Sequence[Sequence[bytes | str]]) -> None:
        self.scripts = [list(s) for s in scripts]
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Future[None] | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/pending"

    def __enter__(self) -> Self:
        self._thread.start()
        assert self._ready.wait(10), "feed did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set_result, None)  # type: ignore[union-attr]
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        from websockets.asyncio.server import serve

        self._stop = self._loop.create_future()
        async with serve(self._handle, "127.0.0.1", 0, max_size=None, compression=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop

    async def _handle(self, ws: Any) -> None:
        script = self.scripts[min(self.connections, len(self.scripts) - 1)]
        self.connections += 1
        with contextlib.suppress(Exception):  # the client closed on us: that is what some tests want
            for frame in script:
                await ws.send(frame)
            await ws.wait_closed()
