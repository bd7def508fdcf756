"""Pending transactions polled from a node's pending pool (``run … --mempool poll``).

``gettransactionlistfrompending`` then ``gettransactionfrompending`` for each new id, which often
answers ``{}`` because the transaction was packed in between: that is normal and only counted.
Answers are size-capped like every node answer (:mod:`pipeline.sources.tron_http`) and validated
(:func:`pipeline.live.feed.check_transaction`): a malformed list, an id that is not 64 hex digits,
a transaction that is not the one asked for, or an answer over the cap is a dead letter, and the
poll goes on. Emits the same items as the websocket feed (:mod:`pipeline.sources.mempool`).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from pipeline.live.backoff import Backoff
from pipeline.live.feed import Rejected, check_transaction, excerpt
from pipeline.live.health import HealthMeter
from pipeline.records import DeadLetter
from pipeline.sources.mempool import PendingItem, PendingTx, SeenIds, _now_ms
from pipeline.sources.tron_http import DEFAULT_MAX_ANSWER_BYTES, NodeClient, NodeError

log = logging.getLogger(__name__)

_TX_ID = re.compile(r"[0-9a-fA-F]{64}")


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
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES

    def list_parts(self) -> list[str]:
        return [self.source_name]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _PollPartition:
        return _PollPartition(self, resume_state or 0)


class _PollPartition(StatefulSourcePartition[PendingItem, int]):
    def __init__(self, cfg: PollingPendingSource, emitted: int) -> None:
        self.cfg = cfg
        self.emitted = emitted
        self.node = NodeClient(cfg.endpoint, cfg.api_key, cfg.timeout_s, cfg.max_answer_bytes)
        self.backoff = Backoff(cap_s=cfg.max_backoff_s)
        self.health = HealthMeter(cfg.source_name, cfg.health_every_s)
        self._seen = SeenIds(cfg.seen_memory)
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
                if err.too_large:
                    out.append(DeadLetter(self.cfg.source_name, err.method, f"pending: {err}", "", _now_ms()))
                delay = self.backoff.next_delay(err.retry_after_s)
                self._wake = time.monotonic() + delay
                log.warning("%s: %s; retry in %.1f s", self.cfg.source_name, err, delay)
        if self.health.due():
            out.append(self.health.row())
        return out

    def _poll(self, out: list[PendingItem]) -> None:
        listed = self.node.call("wallet/gettransactionlistfrompending", {})
        ids = listed.get("txId") if isinstance(listed, dict) else None
        if not isinstance(ids, list):
            if listed not in ({}, None) and not (isinstance(listed, dict) and listed.get("txId") is None):
                self._reject(out, "gettransactionlistfrompending", "pending list: 'txId' must be a list",
                             listed)
            ids = []
        bad = [i for i in ids if not (isinstance(i, str) and _TX_ID.fullmatch(i))]
        if bad:
            self._reject(out, "gettransactionlistfrompending",
                         f"pending list: {len(bad)} of {len(ids)} ids are not 64 hex digits", bad[:5])
        fresh = [i for i in ids if isinstance(i, str) and _TX_ID.fullmatch(i) and i not in self._seen]
        for tx_id in fresh[: self.cfg.max_per_poll]:
            try:
                tx = self.node.call("wallet/gettransactionfrompending", {"value": tx_id})
            except NodeError as err:
                if not err.too_large:
                    raise
                self._seen.add(tx_id)
                self._reject(out, f"txid {tx_id}", str(err), tx_id)
                continue
            self._seen.add(tx_id)
            if not tx:
                self.vanished += 1  # packed into a block between the two calls: normal
                continue
            checked = check_transaction(tx, tx_id)
            if isinstance(checked, Rejected):
                self._reject(out, f"txid {tx_id}", checked.reason, checked.raw)
                continue
            seen_at = _now_ms()
            self.emitted += 1
            out.append(PendingTx(self.cfg.source_name, self.emitted, seen_at, tx))
            self.health.emitted(self.emitted, seen_at)

    def next_awake(self) -> datetime | None:
        delay = self._wake - time.monotonic()
        return datetime.now(UTC) + timedelta(seconds=delay) if delay > 0 else None

    def snapshot(self) -> int:
        return self.emitted

    def _reject(self, out: list[PendingItem], position: str, reason: str, raw: Any) -> None:
        self.health.error(f"pending answer rejected: {reason}")
        log.warning("%s: pending answer rejected at %s: %s", self.cfg.source_name, position, reason)
        out.append(DeadLetter(self.cfg.source_name, position, f"pending: {reason}", excerpt(raw), _now_ms()))

    def close(self) -> None:
        self.node.close()
