"""The devnet: a replayed TRON chain served over the full-node HTTP API and a pending-tx websocket.

Usable in-process (tests start it on port 0 and read ``http_url``/``ws_url``) and from the CLI.
Every fault a live-mode client must survive is a method here and a ``POST /devnet/<name>`` control
endpoint (JSON body with the same arguments):

===============  =========================================  ==================================
endpoint         method                                     effect
===============  =========================================  ==================================
``fail``         ``fail_next(count, status, retry_after)``  next answers 429 (Retry-After)/5xx
``slow``         ``slow_next(count, seconds)``              next answers delayed
``reorg``        ``reorg(depth, drop_txs)``                 last ``depth`` blocks forked
``ghost``        ``ghost()``                                a pending tx that never lands
``drop_ws``      ``drop_websockets()``                      websocket clients cut (no close)
``restart``      ``restart(down_s)``                        both listeners down, then up again
``head``         ``set_head(n)``/``pause()``/``resume()``   freeze, move or release the head
``status``       ``status()``                               head, pending, clients, faults
===============  =========================================  ==================================

While the node is down the chain keeps advancing with wall time, as a real network would.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pipeline.devnet.chain import Chain
from pipeline.devnet.clock import HeadClock
from pipeline.devnet.faults import Faults
from pipeline.devnet.httpd import HttpFront
from pipeline.devnet.node import Answer, NodeApi
from pipeline.devnet.pending import PendingPool
from pipeline.devnet.ws import PendingFeed
from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

BLOCK_SECONDS = 3.0


@dataclass(frozen=True)
class DevnetConfig:
    """Settings of one devnet; validated on construction."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    ws_port: int = 0
    speed: float = 1.0  # blocks every 3 s / speed
    serve_all: bool = False  # every block visible from the start
    initial_blocks: int = 1  # blocks already visible at start (catch-up tests)
    pending_lead: float = 0.5  # txs enter the pool this many block intervals before their block
    solid_lag: int = 19  # solidified head = head - solid_lag
    ghost_ttl_s: float = 30.0

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ConfigError(f"devnet --speed must be > 0, got {self.speed}")
        for name in ("port", "ws_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise ConfigError(f"devnet {name} must be 0..65535, got {getattr(self, name)}")
        if self.initial_blocks < 1:
            raise ConfigError(f"devnet initial_blocks must be >= 1, got {self.initial_blocks}")

    @property
    def interval_s(self) -> float:
        return 0.0 if self.serve_all else BLOCK_SECONDS / self.speed


class Devnet:
    """A running (or stopped) devnet over one chain."""

    def __init__(self, chain: Chain, config: DevnetConfig | None = None) -> None:
        self.config = config or DevnetConfig()
        self.chain = chain
        self.clock = HeadClock(len(chain), self.config.interval_s, self.config.initial_blocks - 1)
        self.pool = PendingPool(chain, self.clock, self.config.pending_lead, self.config.ghost_ttl_s)
        self.api = NodeApi(chain, self.clock, self.pool, self.config.solid_lag)
        self.faults = Faults()
        self._http = HttpFront(self.api, self.faults, self._control, self.config.host, self.config.port)
        self._ws = PendingFeed(self.pool, self.api.head, self.config.host, self.config.ws_port)
        self.running = False
        self._lock = threading.Lock()

    @classmethod
    def from_path(cls, path: str | Path, config: DevnetConfig | None = None) -> "Devnet":
        return cls(Chain.from_path(path), config)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "Devnet":
        with self._lock:
            if not self.running:
                self._http.start()
                self._ws.start()
                self.running = True
                log.info("devnet: HTTP %s, websocket %s, blocks %d..%d, head %d", self.http_url,
                         self.ws_url, self.chain.first_number, self.chain.last_number, self.head)
        return self

    def stop(self) -> None:
        with self._lock:
            if self.running:
                self._http.stop()
                self._ws.stop()
                self.running = False

    def __enter__(self) -> "Devnet":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def restart(self, down_s: float = 1.0, wait: bool = True) -> None:
        """Take both listeners down for ``down_s`` seconds, then bring them up on the same ports."""
        def cycle() -> None:
            self.stop()
            time.sleep(max(0.0, down_s))
            self.start()
        if wait:
            cycle()
        else:
            threading.Thread(target=cycle, name="devnet-restart", daemon=True).start()

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def ws_port(self) -> int:
        return self._ws.port

    @property
    def http_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.ws_port}/pending"

    # -- head control ----------------------------------------------------------------------
    @property
    def head(self) -> int:
        return self.api.head()

    def set_head(self, number: int) -> int:
        """Freeze the head at height ``number`` (clamped to the chain); returns the head."""
        return self.chain.first_number + self.clock.set_head(number - self.chain.first_number)

    def pause(self) -> int:
        return self.chain.first_number + self.clock.pause()

    def resume(self) -> None:
        self.clock.resume()

    # -- faults ----------------------------------------------------------------------------
    def fail_next(self, count: int = 1, status: int = 429, retry_after: float = 1.0) -> None:
        self.faults.fail_next(count, status, retry_after)

    def slow_next(self, count: int = 1, seconds: float = 1.0) -> None:
        self.faults.slow_next(count, seconds)

    def reorg(self, depth: int = 2, drop_txs: int = 1) -> list[int]:
        """Fork the last ``depth`` visible blocks; returns the heights replaced."""
        return self.chain.reorg(self.head, depth, drop_txs)

    def ghost(self) -> str:
        """Announce a pending transaction that never lands; returns its txID."""
        return self.pool.add_ghost()["txID"]

    def drop_websockets(self) -> int:
        return self._ws.drop_connections()

    def status(self) -> dict[str, Any]:
        return {"head": self.head, "solid_head": self.api.solid_head(), "first": self.chain.first_number,
                "last": self.chain.last_number, "paused": self.clock.paused,
                "pending": len(self.pool.ids()), "ws_clients": self._ws.clients(),
                "ws_sent": self._ws.sent, "faults": self.faults.pending(),
                "faults_injected": self.faults.injected, "http": self.http_url, "ws": self.ws_url}

    # -- control API -----------------------------------------------------------------------
    def _control(self, name: str, params: dict[str, Any]) -> Answer:
        try:
            result: Any
            if name == "fail":
                self.fail_next(int(params.get("count", 1)), int(params.get("status", 429)),
                               float(params.get("retry_after", 1.0)))
                result = self.faults.pending()
            elif name == "slow":
                self.slow_next(int(params.get("count", 1)), float(params.get("seconds", 1.0)))
                result = self.faults.pending()
            elif name == "reorg":
                result = {"forked": self.reorg(int(params.get("depth", 2)), int(params.get("drop_txs", 1)))}
            elif name == "ghost":
                result = {"txID": self.ghost()}
            elif name == "drop_ws":
                result = {"dropped": self.drop_websockets()}
            elif name == "restart":
                down_s = float(params.get("down_s", 1.0))
                return Answer(200, orjson.dumps({"restarting": True}),
                              then=lambda: self.restart(down_s, wait=False))
            elif name == "head":
                if "num" in params:
                    self.set_head(int(params["num"]))
                elif str(params.get("pause", "")).lower() in ("1", "true"):
                    self.pause()
                elif str(params.get("resume", "")).lower() in ("1", "true"):
                    self.resume()
                result = {"head": self.head, "paused": self.clock.paused}
            elif name == "status":
                result = self.status()
            else:
                return Answer(404, orjson.dumps({"Error": f"no devnet control {name!r}"}))
        except (TypeError, ValueError) as err:
            return Answer(400, orjson.dumps({"Error": f"devnet control {name}: {err}"}))
        return Answer(200, orjson.dumps(result))
