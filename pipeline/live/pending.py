"""Pending-transaction lifecycle: ``pending`` -> ``confirmed`` (same alert id) or ``dropped`` (pure).

A transaction seen in the pending pool is decoded (``source="mempool"``) and its transfers run
through the *pending rule set* (:func:`pending_evaluator`); its alerts are written at once with
``status=pending``. When a block brings the transaction, the same alerts (same ``alert_id``, a hash
of rule, subject and tx id) are written again ``confirmed`` with the block's height and time, and
the lead time -- how long before the block the pending alert was known -- is recorded. A
transaction not in a block ``timeout_ms`` after it was seen becomes ``dropped``. ``alerts`` is a
``ReplacingMergeTree(status_rank)``: a later confirmed/dropped row replaces the pending one.

Why only feature-free rules on pending transactions: features (windows, fan-in, exposure hops)
live in the address shards and are updated by *blocks*; evaluating a feature rule on a pending
transfer with zeros or stale values would fire wrongly (``age_s < 3600`` is true for zero) or miss.
Rules that read only the transfer and watchlists (large transfers, sanctioned counterparties,
zero-value transferFrom poisoning, unlimited approvals) give the same answer pending and confirmed,
so their pending alert is an honest early warning of the block alert with the same id.

State is bounded: at most ``max_tracked`` transactions (oldest evicted, counted) and a bounded
memory of recently landed ids, so a pending announcement that arrives after its block is ignored.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from pipeline.allowlists import suppress
from pipeline.records import FEATURE_NAMES, AddressFeatures, AddressUpdate, Alert, Transfer

log = logging.getLogger(__name__)

Evaluate = Callable[[Sequence[Transfer]], list[Alert]]
GRAPH_NAMES = frozenset(FEATURE_NAMES) | {"counterparty_hops"}
_ZEROS = tuple(0.0 for _ in FEATURE_NAMES)


class LeadTime(NamedTuple):
    """One row of ``pending_lead_times``: a pending transaction that landed."""

    tx_id: str
    seen_at: int  # wall ms when first seen pending
    block_number: int
    block_ts: int  # event time of the block
    confirmed_at: int  # wall ms when the block was processed
    lead_ms: int  # confirmed_at - seen_at
    alerts: int  # pending alerts this transaction had


LEAD_COLUMNS: tuple[str, ...] = LeadTime._fields


class Changes(NamedTuple):
    alerts: list[Alert]  # rows for ``alerts`` (pending, confirmed or dropped)
    leads: list[LeadTime]


class _Entry(NamedTuple):
    seen_at: int
    alerts: tuple[Alert, ...]


class PendingTracker:
    """Tracks pending transactions until they land or time out."""

    def __init__(self, evaluate: Evaluate | None, timeout_ms: int = 120_000, max_tracked: int = 200_000,
                 landed_memory: int = 100_000) -> None:
        self.evaluate = evaluate
        self.timeout_ms = timeout_ms
        self.max_tracked = max_tracked
        self.landed_memory = landed_memory
        self._txs: OrderedDict[str, _Entry] = OrderedDict()  # first-seen order: expiry pops the front
        self._landed: OrderedDict[str, None] = OrderedDict()
        self.evicted = 0
        self.confirmed = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._txs)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["evaluate"] = None  # compiled rules are rebuilt from configuration, not snapshots
        return state

    def on_pending(self, transfers: Sequence[Transfer], seen_at_ms: int) -> Changes:
        """Track the transactions of ``transfers`` (decoded with source="mempool"); new pending alerts."""
        fresh: dict[str, list[Transfer]] = {}
        for t in transfers:
            if t.tx_id in self._txs or t.tx_id in self._landed:
                continue
            fresh.setdefault(t.tx_id, []).append(t)
        if not fresh:
            return Changes([], [])
        batch = [t for ts in fresh.values() for t in ts]
        alerts = self.evaluate(batch) if self.evaluate is not None else []
        by_tx: dict[str, list[Alert]] = {}
        for a in alerts:
            by_tx.setdefault(a.tx_id, []).append(a)
        for tx_id in fresh:
            self._txs[tx_id] = _Entry(seen_at_ms, tuple(by_tx.get(tx_id, ())))
        while len(self._txs) > self.max_tracked:
            tx_id, _ = self._txs.popitem(last=False)
            self.evicted += 1
            if self.evicted == 1 or self.evicted % 10_000 == 0:
                log.warning("pending tracker full (%d): evicted %d transactions so far (last %s)",
                            self.max_tracked, self.evicted, tx_id)
        return Changes(alerts, [])

    def on_block(self, transfers: Sequence[Transfer], now_ms: int) -> Changes:
        """A block's transfers: tracked transactions in it are confirmed, with their lead time."""
        out_alerts: list[Alert] = []
        leads: list[LeadTime] = []
        seen: set[str] = set()
        for t in transfers:
            if t.tx_id in seen:
                continue
            seen.add(t.tx_id)
            self._remember_landed(t.tx_id)
            entry = self._txs.pop(t.tx_id, None)
            if entry is None:
                continue
            self.confirmed += 1
            leads.append(LeadTime(t.tx_id, entry.seen_at, t.block_number, t.ts, now_ms,
                                  now_ms - entry.seen_at, len(entry.alerts)))
            out_alerts.extend(a._replace(status="confirmed", block_number=t.block_number, ts=t.ts,
                                         detected_at=now_ms) for a in entry.alerts)
        return Changes(out_alerts, leads)

    def expire(self, now_ms: int) -> Changes:
        """Transactions pending longer than the timeout: their alerts become ``dropped``."""
        out: list[Alert] = []
        cutoff = now_ms - self.timeout_ms
        while self._txs:
            tx_id, entry = next(iter(self._txs.items()))
            if entry.seen_at > cutoff:
                break
            del self._txs[tx_id]
            self.dropped += 1
            out.extend(a._replace(status="dropped", detected_at=now_ms) for a in entry.alerts)
        return Changes(out, [])

    def next_expiry_ms(self) -> int | None:
        """Wall ms at which the oldest tracked transaction times out (None when none)."""
        if not self._txs:
            return None
        return next(iter(self._txs.values())).seen_at + self.timeout_ms

    def _remember_landed(self, tx_id: str) -> None:
        self._landed[tx_id] = None
        if len(self._landed) > self.landed_memory:
            self._landed.popitem(last=False)


def feature_free(rule: Any) -> bool:
    """True when a compiled rule reads no graph feature (see the module doc)."""
    return not (set(rule.compiled.names) & GRAPH_NAMES)


def pending_updates(transfers: Sequence[Transfer]) -> list[AddressUpdate]:
    """Sender and receiver updates of pending transfers, with zero features (never read)."""
    out: list[AddressUpdate] = []
    for t in transfers:
        if t.from_address:
            out.append(AddressUpdate(t.from_address, "sender", t.to_address, t,
                                     AddressFeatures(t.from_address, t.ts, 0, _ZEROS)))
        if t.to_address:
            out.append(AddressUpdate(t.to_address, "receiver", t.from_address, t,
                                     AddressFeatures(t.to_address, t.ts, 0, _ZEROS)))
    return out


def pending_evaluator(ruleset: Any) -> tuple[Evaluate, list[str]]:
    """An evaluator running the feature-free rules of ``ruleset`` on pending transfers.

    Returns it with the ids of the rules it runs. The rule set gets cooldowns of its own, so a
    pending alert never suppresses (or is suppressed by) the block path's alert with the same id.
    Allow lists (the rule set's ``env.allow``, swapped on reload) suppress pending alerts as they do
    block alerts; they are counted when the transaction lands, by the block path (same alert id).
    """
    rules = [r for r in ruleset.rules if feature_free(r)]
    pending_set = type(ruleset)(rules, ruleset.env)
    skipped = [r.id for r in ruleset.enabled if not feature_free(r)]
    if skipped:
        log.info("pending pool: %d feature-free rules run on pending transactions; %d need features "
                 "and wait for the block (%s)", len(pending_set), len(skipped), ", ".join(skipped))

    def evaluate(transfers: Sequence[Transfer]) -> list[Alert]:
        return suppress(pending_set.evaluate(pending_updates(transfers)), pending_set.env.allow)[0]

    return evaluate, [r.id for r in pending_set.enabled]
