"""Join the shards' outputs per block, score anomalies in micro-batches, finish rule alerts.

The graph stage announces each block with the number of address updates its shards will
produce; the shards send their updates and rule alerts here. A block is *complete* when all its
updates have arrived, whatever worker or order they came from.

Why results do not depend on batching: rows are deduplicated per (block, address) -- the latest
update of an address in a block -- and IsolationForest and the pyod detectors score each row
independently of the others in its batch. So scoring complete blocks one by one or a thousand at
a time gives the same scores, alerts and feature rows; batch size is purely a speed knob (an
IsolationForest call costs ~8 ms for one row or several hundred). ``take`` scores once enough
rows are complete, or when the caller's timer says it has waited long enough (live pace).

Every alert's ``risk_score`` comes from :func:`pipeline.anomaly.risk.risk_score`: rule alerts
combine their severity with the subject's anomaly score in the same block, when it was scored.

Blocks are scored strictly in the order the graph stage announced them (a sequence number), so
the anomaly cooldown -- one alert per detector and address per ``cooldown_ms`` of event time,
without which a busy exchange wallet would alert on every block -- is deterministic too.

Allow lists (:mod:`pipeline.allowlists`) take effect here, through :func:`~pipeline.allowlists.suppress`,
on rule alerts and on anomaly alerts *before* their cooldown, so a suppressed alert holds no
cooldown; what they suppress comes out in ``Scored.suppressed``, is counted per rule and list and
logged at most once per ``SUPPRESSION_LOG_MS`` of event time (and at the end of the input).

State is the incomplete and not-yet-scored blocks plus live cooldowns: bounded by the batch and
by the cooldown window, not by the stream.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from pipeline.allowlists import Suppression, count, describe, suppress
from pipeline.anomaly.risk import risk_score
from pipeline.operators.alert_budget import AlertGovernor
from pipeline.records import AddressUpdate, Alert

log = logging.getLogger(__name__)

MAX_PENDING_BLOCKS = 20_000  # safety valve: never let a lost update hold memory forever
SUPPRESSION_LOG_MS = 600_000  # one "allow lists suppressed ..." line per 10 min of event time at most


class RowScorer(Protocol):
    def score_rows(self, rows: Sequence[AddressUpdate]) -> tuple[list[Alert], list[float]]:
        """Anomaly alerts for ``rows`` and each row's calibrated score (0-100), in row order."""


class Scored(NamedTuple):
    alerts: list[Alert]
    features: list[AddressUpdate]  # latest update per (block, address): the feature snapshot rows
    blocks: int
    suppressed: Sequence[Suppression] = ()  # alerts an allow list suppressed (not in ``alerts``)


class _Pending:
    __slots__ = ("alerts", "expected", "found", "seq", "tx_count", "updates")

    def __init__(self) -> None:
        self.expected = -1  # unknown until the graph stage's announcement arrives
        self.seq = -1
        self.tx_count = 0
        self.found: list[Alert] = []  # the graph stage's own alerts (structures) confirmed at this block
        self.updates: list[AddressUpdate] = []
        self.alerts: list[Alert] = []

    @property
    def complete(self) -> bool:
        return self.expected == len(self.updates)


class ScoringStage:
    allow: Any = None  # the allow lists in force (pipeline.allowlists.AllowSet), set by the flow

    def __init__(self, scorer: RowScorer | None, min_rows: int = 2_000, cooldown_ms: int = 3_600_000,
                 governor: AlertGovernor | None = None) -> None:
        self.scorer = scorer
        self.governor = governor  # correlation and the alert budget (None: every alert is a row)
        self.min_rows = min_rows
        self.cooldown_ms = cooldown_ms
        self._pending: dict[int, _Pending] = {}
        self._by_seq: dict[int, int] = {}  # announcement sequence -> block number
        self._next_seq = 0
        self._complete_rows = 0
        self._cooldown: dict[tuple[str, str], int] = {}  # (rule id, address) -> event time it ends
        self._extra: list[Alert] = []  # alerts tied to no pending block (structures at end of input)
        self._swept_at = 0
        self.suppressed: Counter[tuple[str, str]] = Counter()  # (rule id, list) -> alerts, whole run
        self._unlogged: Counter[tuple[str, str]] = Counter()
        self._logged_at = 0

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["scorer"] = None  # models are loaded from configuration, not from snapshots
        state.pop("allow", None)  # and lists from their files
        return state

    def expect(self, block_number: int, updates: int, seq: int, alerts: Sequence[Alert] = (),
               tx_count: int = 0) -> None:
        """The graph stage's announcement: ``updates`` rows will come for the block; ``alerts`` are
        its own (structures), ``tx_count`` the block's transactions (for the alert budget)."""
        p = self._slot(block_number)
        p.expected = updates
        p.seq = seq
        p.tx_count = tx_count
        p.found.extend(alerts)
        self._by_seq[seq] = block_number
        if p.complete:
            self._complete_rows += len(p.updates)

    def add(self, block_number: int, updates: Sequence[AddressUpdate], alerts: Sequence[Alert]) -> None:
        p = self._slot(block_number)
        was_complete = p.complete
        p.updates.extend(updates)
        p.alerts.extend(alerts)
        if p.complete:
            self._complete_rows += len(p.updates)
        elif was_complete:  # more than announced: a bug upstream; say so, keep the data
            log.error("block %d: %d updates, %d announced", block_number, len(p.updates), p.expected)
            self._complete_rows -= len(p.updates) - len(updates)

    def extra(self, alerts: Sequence[Alert]) -> None:
        """Alerts that belong to no block still to come (structures confirmed at the end of input):
        they go out with the next batch scored, or alone when forced."""
        self._extra.extend(alerts)

    def _slot(self, block_number: int) -> _Pending:
        p = self._pending.get(block_number)
        if p is None:
            p = self._pending[block_number] = _Pending()
        return p

    @property
    def has_complete(self) -> bool:
        return any(p.complete for p in self._pending.values())

    def _ready(self) -> list[int]:
        """Complete blocks that continue the announced sequence, in order."""
        done = []
        seq = self._next_seq
        while seq in self._by_seq and self._pending[self._by_seq[seq]].complete:
            done.append(self._by_seq[seq])
            seq += 1
        return done

    def take(self, force: bool = False) -> Scored | None:
        """Score the complete blocks next in sequence if there are ``min_rows`` rows (or ``force``)."""
        if len(self._pending) > MAX_PENDING_BLOCKS:
            stuck = self._pending[self._by_seq.get(self._next_seq, min(self._pending))]
            log.error("block never completed (%d of %d updates); scoring what arrived",
                      len(stuck.updates), stuck.expected)
            stuck.expected = len(stuck.updates)
            force = True
        if not force and self._complete_rows < self.min_rows:
            return None
        done = self._ready()
        if not done:
            if force and self._extra and not self._pending:
                extra, self._extra = self._extra, []
                alerts, suppressed = self._finish([], extra)
                if suppressed:
                    self._note(suppressed)
                return Scored(self._admit(alerts, 0), [], 0, suppressed)
            return None
        rows: list[AddressUpdate] = []
        rule_alerts: list[Alert] = []
        tx_counts: list[tuple[int, int]] = []
        found: dict[int, list[Alert]] = {}
        for b in done:
            p = self._pending.pop(b)
            del self._by_seq[p.seq]
            rows.extend(latest_per_address(p.updates))
            rule_alerts.extend(p.alerts)
            tx_counts.append((b, p.tx_count))
            if p.found:
                found[b] = p.found
        self._next_seq += len(done)
        self._complete_rows = sum(len(p.updates) for p in self._pending.values() if p.complete)
        finished, suppressed = self._finish(rows, rule_alerts)
        # A structure is confirmed blocks after the transfer it names: it is finished without
        # anomaly rows and admitted with the block that confirmed it, so batching cannot move it.
        for b, alerts_b in found.items():
            found[b], more = self._finish([], alerts_b)
            suppressed += more
        # End-of-input alerts go out once every block is scored, after them, finished without
        # anomaly rows: whichever batch they arrive in, they are admitted the same way.
        extra: list[Alert] = []
        if self._extra and not self._pending:
            extra, more = self._finish([], self._extra)
            self._extra = []
            suppressed += more
        if suppressed:
            self._note(suppressed)
        if self.governor is None:
            return Scored(finished + [a for b in found for a in found[b]] + extra, rows, len(done), suppressed)
        by_block: dict[int, list[Alert]] = {}
        for a in finished:
            by_block.setdefault(a.block_number, []).append(a)
        alerts: list[Alert] = []  # the budget sees one block at a time, whatever the batch
        for b, tx_count in tx_counts:
            alerts.extend(self.governor.admit(by_block.pop(b, []) + found.get(b, []), tx_count))
        for b in sorted(by_block):  # none expected: every rule and model alert is of a block scored here
            alerts.extend(self.governor.admit(by_block[b], 0))
        alerts.extend(self.governor.admit(extra, 0))
        return Scored(alerts, rows, len(done), suppressed)

    def _admit(self, alerts: list[Alert], tx_count: int) -> list[Alert]:
        return self.governor.admit(alerts, tx_count) if self.governor is not None else alerts

    def _finish(self, rows: list[AddressUpdate],
                rule_alerts: list[Alert]) -> tuple[list[Alert], list[Suppression]]:
        rule_alerts, suppressed = suppress(rule_alerts, self.allow)
        if self.scorer is None or not rows:
            return [a._replace(risk_score=max(a.risk_score, risk_score(a.severity, None)))
                    for a in rule_alerts], suppressed
        anomaly_alerts, scores = self.scorer.score_rows(rows)
        anomaly_alerts, more = suppress(anomaly_alerts, self.allow)  # before the cooldown, never after
        subjects = {a.address for a in rule_alerts}
        by_subject = {(u.transfer.block_number, u.address): float(scores[i])
                      for i, u in enumerate(rows) if u.address in subjects}
        # a structure's own risk (its size) stands when the severity and anomaly evidence say less
        finished = [a._replace(risk_score=max(a.risk_score, risk_score(a.severity,
                                                                      by_subject.get((a.block_number, a.address)))))
                    for a in rule_alerts]
        return finished + self._cool(anomaly_alerts), suppressed + more

    def _note(self, suppressed: list[Suppression]) -> None:
        count(suppressed, self.suppressed)
        count(suppressed, self._unlogged)
        latest = max(s.alert.ts for s in suppressed)
        if latest - self._logged_at >= SUPPRESSION_LOG_MS:
            self._logged_at = latest
            self.log_suppressed()

    def log_suppressed(self) -> None:
        """Log the suppressions not logged yet, as one line (the flow also calls it at end of input)."""
        if self._unlogged:
            log.info("allow lists suppressed %s", describe(self._unlogged))
            self._unlogged = Counter()

    def _cool(self, alerts: list[Alert]) -> list[Alert]:
        """Keep the first anomaly alert per detector and address within the cooldown (event time)."""
        if not self.cooldown_ms or not alerts:
            return alerts
        kept = []
        cooldown = self._cooldown
        for a in sorted(alerts, key=lambda a: (a.ts, a.block_number)):
            key = (a.rule_id, a.address)
            if cooldown.get(key, -1) > a.ts:
                continue
            cooldown[key] = a.ts + self.cooldown_ms
            kept.append(a)
        latest = alerts[-1].ts
        if latest - self._swept_at > self.cooldown_ms:  # expired entries go, once per window
            self._cooldown = {k: v for k, v in cooldown.items() if v > latest}
            self._swept_at = latest
        return kept

    def __len__(self) -> int:
        return len(self._pending)


def latest_per_address(updates: Sequence[AddressUpdate]) -> list[AddressUpdate]:
    """The last update of each address, in first-seen order (updates of one block)."""
    latest: dict[str, AddressUpdate] = {}
    for u in updates:
        latest[u.address] = u
    return list(latest.values())
