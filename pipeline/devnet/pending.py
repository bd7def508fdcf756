"""The devnet's pending pool: transactions announced before the block that includes them.

The pool is derived from the clock, not stored: the transactions of block ``head+1`` enter it
``lead`` block intervals before that block becomes the head (all of them at once, as a node sees a
burst of broadcasts), and leave it when the block lands. Ghost transactions are the exception:
injected on request, announced like any other, and never included in a block; they expire after
``ttl`` seconds, as an unconfirmed transaction expires on a real node.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, NamedTuple

from pipeline.devnet.chain import Chain
from pipeline.devnet.clock import HeadClock
from pipeline.devnet.visible import convert_transaction


class Ghost(NamedTuple):
    tx: dict[str, Any]  # hex form
    expires_at: float


class PendingPool:
    """Which transactions are pending now, and their bodies in either form."""

    def __init__(self, chain: Chain, clock: HeadClock, lead: float = 0.5, ghost_ttl_s: float = 30.0) -> None:
        self.chain = chain
        self.clock = clock
        self.lead = min(max(0.0, lead), 1.0)
        self.ghost_ttl_s = ghost_ttl_s
        self._ghosts: dict[str, Ghost] = {}
        self._ghost_seq = 0
        self._lock = threading.Lock()

    def announced_block(self) -> int | None:
        """Height of the block whose transactions are in the pool now, if any."""
        head_index = self.clock.head_index()
        nxt = head_index + 1
        if nxt >= self.clock.n_blocks:
            return None
        if self.clock.paused:
            return self.chain.first_number + nxt
        if self.clock.interval <= 0 or self.lead <= 0:
            return None
        if self.clock.now() >= self.clock.time_of(nxt) - self.lead * self.clock.interval:
            return self.chain.first_number + nxt
        return None

    def transactions(self, visible: bool) -> list[dict[str, Any]]:
        """Every pending transaction, ghosts first then the next block's, in the wanted form."""
        out = [convert_transaction(g.tx, True) if visible else g.tx for g in self._live_ghosts()]
        number = self.announced_block()
        if number is not None:
            out.extend(self.chain.block(number, visible).get("transactions") or ())
        return out

    def ids(self) -> list[str]:
        out = [g.tx["txID"] for g in self._live_ghosts()]
        number = self.announced_block()
        if number is not None:
            out.extend(tx["txID"] for tx in self.chain.block(number, False).get("transactions") or ())
        return out

    def get(self, tx_id: str, visible: bool) -> dict[str, Any] | None:
        with self._lock:
            ghost = self._ghosts.get(tx_id)
        if ghost is not None and ghost.expires_at > self.clock.now():
            return convert_transaction(ghost.tx, True) if visible else ghost.tx
        number = self.announced_block()
        if number is None or self.chain.height_of_tx(tx_id) != number:
            return None
        for tx in self.chain.block(number, visible).get("transactions") or ():
            if tx.get("txID") == tx_id:
                return tx
        return None

    def add_ghost(self) -> dict[str, Any]:
        """Announce a transaction that will never land; returns it (hex form)."""
        head = self.chain.first_number + self.clock.head_index()
        template = None
        for number in (head + 1, head):
            if self.chain.index_of(number) is not None:
                txs = self.chain.block(number, False).get("transactions") or []
                if txs:
                    template = txs[0]
                    break
        with self._lock:
            self._ghost_seq += 1
            seq = self._ghost_seq
        tx_id = hashlib.sha256(f"devnet-ghost:{head}:{seq}".encode()).hexdigest()
        if template is None:
            template = {"ret": [{"contractRet": "SUCCESS"}], "raw_data": {"contract": []}}
        raw = dict(template.get("raw_data") or {})
        raw["timestamp"] = int(raw.get("timestamp", 0)) + seq
        ghost_tx = {**template, "txID": tx_id, "raw_data": raw}
        with self._lock:
            self._ghosts[tx_id] = Ghost(ghost_tx, self.clock.now() + self.ghost_ttl_s)
        return ghost_tx

    def _live_ghosts(self) -> list[Ghost]:
        now = self.clock.now()
        with self._lock:
            for tx_id in [k for k, g in self._ghosts.items() if g.expires_at <= now]:
                del self._ghosts[tx_id]
            return list(self._ghosts.values())
