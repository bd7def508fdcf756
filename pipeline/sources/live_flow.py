"""Bytewax shells for live mode: side rows of live sources, and the pending-lifecycle step.

Wiring (see the issue-8 report): the node source's items go through the same ``decode`` and
``storage_rows`` steps as replayed blocks; :func:`side_rows` turns its non-block items into sink
items (``source_health`` rows, and a :data:`REORG_TABLE` item the ClickHouse sink applies with
:func:`pipeline.live.reorg.apply_reorg` after flushing). :func:`build_pending` joins the decoded
blocks with the pending source on one key and runs :class:`~pipeline.live.pending.PendingTracker`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream

from pipeline.anomaly.risk import risk_score
from pipeline.errors import DecodeError
from pipeline.live.feed import excerpt
from pipeline.live.follower import Reorg
from pipeline.live.health import HEALTH_COLUMNS, SourceHealth
from pipeline.live.pending import LEAD_COLUMNS, Changes, PendingTracker, pending_evaluator
from pipeline.live.reorg import ORPHANED_COLUMNS, ReorgGuard, apply_reorg
from pipeline.operators.decode import decode_transaction, raw_excerpt
from pipeline.records import DeadLetter, DecodedBlock
from pipeline.sinks.clickhouse import FLUSH, ClickHouseSink, _ClickHousePartition
from pipeline.sinks.rows import dead_letter_rows
from pipeline.sinks.writer import ClickHouseWriter
from pipeline.sources.mempool import PendingTx
from pipeline.storage.clickhouse import open_storage
from pipeline.tron.tokens import TokenRegistry

log = logging.getLogger(__name__)

TableRows = tuple[str, list[Any]]
REORG_TABLE = "__reorg__"  # not a table: the sink applies the Reorg items it carries
LIVE_COLUMNS: dict[str, tuple[str, ...]] = {
    "source_health": HEALTH_COLUMNS,
    "pending_lead_times": LEAD_COLUMNS,
    "orphaned_blocks": ORPHANED_COLUMNS,
}


def side_rows(item: Any) -> list[TableRows]:
    """Sink items for what a live source emits besides blocks (a pending feed's dead letters too)."""
    if isinstance(item, DeadLetter):
        return [("dead_letters", dead_letter_rows([item]))]
    if isinstance(item, SourceHealth):
        return [("source_health", [tuple(item)])]
    if isinstance(item, Reorg):
        return [(REORG_TABLE, [item])]
    return []


@dataclass(frozen=True)
class PendingSpec:
    tokens: TokenRegistry
    ruleset: Any = None  # pipeline.rules.engine.RuleSet; its feature-free rules run on pending txs
    timeout_s: float = 120.0
    max_tracked: int = 200_000
    recovery: bool = True  # False: skip the per-epoch snapshot copy when nothing keeps it
    hot: Any = None  # pipeline.hot_reload.HotReload: a rule edit reaches pending transactions too


class _PendingLogic(op.StatefulBatchLogic):
    """Decoded blocks and pending transactions in, alert status changes and lead times out."""

    def __init__(self, spec: PendingSpec, resume: PendingTracker | None) -> None:
        self.spec = spec
        evaluate = pending_evaluator(spec.ruleset)[0] if spec.ruleset is not None else None
        self.tracker = resume or PendingTracker(evaluate, int(spec.timeout_s * 1000), spec.max_tracked)
        self.tracker.evaluate = evaluate
        self._rules = spec.ruleset  # the rule set ``evaluate`` runs

    def on_batch(self, values: list[Any]) -> tuple[Iterable[TableRows], bool]:
        hot = self.spec.hot
        if hot is not None:
            hot.poll()
            if hot.ruleset is not self._rules and hot.ruleset is not None:
                self._rules = hot.ruleset
                self.tracker.evaluate = pending_evaluator(hot.ruleset)[0]
        alerts: list[Any] = []
        leads: list[Any] = []
        dead: list[DeadLetter] = []
        now = int(time.time() * 1000)
        for item in values:
            if isinstance(item, PendingTx):
                try:
                    transfers = decode_transaction(item.tx, self.spec.tokens, 0, 0, source="mempool")
                    changes = self.tracker.on_pending(transfers, item.seen_at)
                except DecodeError as err:
                    dead.append(DeadLetter(item.source, f"seq {item.seq}", f"pending: {err}",
                                           _excerpt(item.tx), now))
                    continue
                except Exception as err:  # noqa: BLE001 - one pending transaction never stops the flow
                    log.error("%s: pending transaction seq %d could not be handled: %s: %s", item.source,
                              item.seq, type(err).__name__, err)
                    reason = f"pending: could not be handled: {type(err).__name__}: {err}"[:500]
                    dead.append(DeadLetter(item.source, f"seq {item.seq}", reason, _excerpt(item.tx), now))
                    continue
            elif isinstance(item, DecodedBlock):
                changes = self.tracker.on_block(item.transfers, now)
            else:
                continue
            alerts.extend(changes.alerts)
            leads.extend(changes.leads)
        self._collect(self.tracker.expire(now), alerts, leads)
        return self._rows(alerts, leads, dead), False

    def on_notify(self) -> tuple[Iterable[TableRows], bool]:
        alerts: list[Any] = []
        self._collect(self.tracker.expire(int(time.time() * 1000)), alerts, [])
        return self._rows(alerts, [], []), False

    def notify_at(self) -> datetime | None:
        due = self.tracker.next_expiry_ms()
        if due is None:
            return None
        return datetime.fromtimestamp(due / 1000, UTC) + timedelta(milliseconds=1)

    def snapshot(self) -> PendingTracker | None:
        return _copy_tracker(self.tracker) if self.spec.recovery else None

    @staticmethod
    def _collect(changes: Changes, alerts: list[Any], leads: list[Any]) -> None:
        alerts.extend(changes.alerts)
        leads.extend(changes.leads)

    @staticmethod
    def _rows(alerts: list[Any], leads: list[Any], dead: list[DeadLetter]) -> list[TableRows]:
        out: list[TableRows] = []
        if alerts:
            out.append(("alerts", [a._replace(risk_score=risk_score(a.severity, None)) for a in alerts]))
        if leads:
            out.append(("pending_lead_times", [tuple(x) for x in leads]))
        if dead:
            out.append(("dead_letters", dead_letter_rows(dead)))
        return out


def _excerpt(tx: Any) -> str:
    """``raw_excerpt`` that cannot fail itself (a transaction too deep to serialize, say)."""
    try:
        return raw_excerpt(tx)
    except Exception:  # noqa: BLE001 - the dead letter matters more than its excerpt
        return excerpt(tx)


def _copy_tracker(tracker: PendingTracker) -> PendingTracker:
    import pickle

    return pickle.loads(pickle.dumps(tracker, protocol=pickle.HIGHEST_PROTOCOL))


def write_live(writer: ClickHouseWriter, client: Any, values: Iterable[TableRows],
               guard: ReorgGuard | None = None, flush: bool = True) -> None:
    """What the ClickHouse sink partition's ``write_batch`` does with live items.

    Rows are buffered as before; a :data:`REORG_TABLE` item first flushes everything buffered
    (the old branch's rows are then stored), then applies the reorg, in stream order. With a
    ``guard``, alerts of orphaned blocks arriving late are written ``dropped``.
    """
    for table, rows in values:
        if table == REORG_TABLE:
            writer.flush()
            for reorg in rows:
                apply_reorg(client, writer.database, reorg)
                if guard is not None:
                    guard.remember(reorg)
            continue
        if table == FLUSH:  # a flush marker carries no rows (see pipeline.analytics)
            continue
        if table == "alerts" and guard is not None:
            rows = guard.fix(rows)
        writer.add(table, rows)
    if flush and writer.due():
        writer.flush()


@dataclass(frozen=True)
class LiveClickHouseSink(ClickHouseSink):
    """:class:`ClickHouseSink` that knows the live tables and applies reorgs (see :func:`write_live`)."""

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _LivePartition:
        client, dsn = open_storage(self.dsn)
        writer = ClickHouseWriter(client, dsn.database, self.flush_rows, self.max_delay_s,
                                  on_commit=self.on_commit, on_sync=self.on_sync, columns=LIVE_COLUMNS)
        return _LivePartition(client, writer, self.durable)


class _LivePartition(_ClickHousePartition):
    def __init__(self, client: Any, writer: ClickHouseWriter, durable: bool = False) -> None:
        super().__init__(client, writer, durable)
        self._guard = ReorgGuard()

    def write_batch(self, values: list[TableRows]) -> None:
        write_live(self._writer, self._client, values, self._guard, flush=False)
        self.after_batch()


def build_pending(blocks: Stream[DecodedBlock], pending: Stream[Any], spec: PendingSpec) -> Stream[TableRows]:
    """Rows for ``alerts``, ``pending_lead_times``, ``dead_letters`` and ``source_health``.

    ``pending`` is the stream of a pending source (:mod:`pipeline.sources.mempool`).
    """
    health = op.flat_map("pending_health", pending, side_rows)
    txs = op.filter("pending_txs", pending, lambda x: isinstance(x, PendingTx))
    joined = op.merge("pending_join", blocks, txs)
    keyed = op.key_on("pending_key", joined, lambda _x: "pending")
    out = op.stateful_batch("pending_lifecycle", keyed, lambda s: _PendingLogic(spec, s))
    return op.merge("pending_rows", op.key_rm("pending_out", out), health)
