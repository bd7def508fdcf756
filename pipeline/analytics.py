"""Analytics wiring: graph -> address shards (features + rules) -> scoring, as Bytewax steps.

::

    decoded blocks ─► graph (one key, block order) ─┬─► touches by shard ─► shard k: features + rules ─┐
                                                    └─► "block N will bring U updates" ─────────────────┤
                                                                                                        ▼
                                         alerts, address_features, model_drift ◄─ scoring (one key) ◄───┘

Determinism: the graph stage sees blocks in order; shard ``k`` sees exactly the touches of its
addresses in that order, whatever worker it runs on (the shard count is fixed configuration, not
the worker count); scoring joins per block and is batch-independent (see
:mod:`pipeline.operators.scoring`). So alerts and features are the same with 1 or N workers.

The stage objects are the pure ones from ``pipeline.operators``, ``pipeline.rules`` and
``pipeline.anomaly``; this module only holds their Bytewax shells.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream

from pipeline.allowlists import suppressed_rows
from pipeline.hot_reload import HotReload
from pipeline.operators.alert_budget import AlertGovernor, BudgetConfig
from pipeline.operators.features import ShardState
from pipeline.operators.graph import GraphStage
from pipeline.operators.routing import route
from pipeline.operators.scoring import RowScorer, ScoringStage
from pipeline.operators.structures import StructureConfig, StructureDetector
from pipeline.operators.windows import WindowConfig
from pipeline.records import AddressUpdate, Alert, DecodedBlock
from pipeline.sinks.clickhouse import FLUSH  # not a table: tells the sink that rows it holds are due
from pipeline.sinks.rows import feature_rows
from pipeline.tickets.outbox import outbox_rows

log = logging.getLogger(__name__)

TableRows = tuple[str, list[tuple]]
SCORE_KEY = "score"


@dataclass(frozen=True)
class AnalyticsSpec:
    """Loaded, validated analytics configuration (built once at start by the caller)."""

    windows: WindowConfig = field(default_factory=WindowConfig)
    watchlist: frozenset[str] = frozenset()
    ruleset: Any = None  # pipeline.rules.engine.RuleSet or None (no rules)
    scorer: RowScorer | None = None
    min_score_rows: int = 2_000
    max_wait_s: float = 0.2  # longest complete rows wait for a bigger batch (live pace)
    anomaly_cooldown_ms: int = 3_600_000  # one anomaly alert per detector and address per hour
    sink_delay_s: float = 0.5  # the sink's max_delay: after emitting alerts, nudge it once then
    write_features: bool = True
    routing: Any = None  # pipeline.tickets.Routing: alerts that open tickets go to the outbox
    recovery: bool = False  # snapshots cost a pickle of the state; skip them when nothing keeps them
    hot: HotReload | None = None  # rule and watchlist edits picked up while running (None: never)
    structures: StructureConfig | None = field(default_factory=StructureConfig)  # None: off
    budget: BudgetConfig | None = field(default_factory=BudgetConfig)  # None: every alert is a row


class _GraphLogic(op.StatefulBatchLogic):
    def __init__(self, spec: AnalyticsSpec, resume: bytes | None) -> None:
        self.spec = spec
        if resume:
            self.graph, self.seq, self.structures = pickle.loads(resume)
        else:
            self.graph, self.seq = GraphStage(spec.windows, spec.watchlist), 0
            self.structures = StructureDetector(spec.structures) if spec.structures is not None else None
        self._lists: object = None  # the watchlist snapshot applied (a resumed graph applies today's)

    def on_batch(self, values: list[DecodedBlock]) -> tuple[Iterable[tuple], bool]:
        hot = self.spec.hot
        if hot is not None:
            hot.poll()
            lists = hot.watchlists
            if lists is not None and lists is not self._lists:
                self._lists = lists
                exposed = self.graph.set_watchlist(lists.addresses)
                if exposed:
                    log.info("watchlists: %d addresses in the window are now exposed", exposed)
        out: list[tuple] = []
        n_shards = self.spec.windows.n_shards
        for block in values:
            routed = route(self.graph.process(block.transfers), n_shards)
            number = block.block.number
            found = self.structures.process(block.transfers) if self.structures is not None else []
            out.append((SCORE_KEY, ("expect", number, sum(len(t) for t in routed.values()), self.seq,
                                    found, block.block.tx_count)))
            self.seq += 1
            out.extend((str(shard), ("touches", touches)) for shard, touches in routed.items())
        return out, False

    def on_eof(self) -> tuple[Iterable[tuple], bool]:
        # structures still settling when the input ends are confirmed with what is known by now
        found = self.structures.flush() if self.structures is not None else []
        return ([(SCORE_KEY, ("extra", found))] if found else []), False

    def snapshot(self) -> bytes | None:
        return _freeze(self.spec, (self.graph, self.seq, self.structures))


class _ShardLogic(op.StatefulBatchLogic):
    """Features and rules of one shard. Snapshot: the shard state and the rule cooldowns."""

    def __init__(self, spec: AnalyticsSpec, resume: bytes | None) -> None:
        self.spec = spec
        state, cooldowns = pickle.loads(resume) if resume else (ShardState(spec.windows), None)
        self.state: ShardState = state
        self.rules = _fresh_ruleset(spec.ruleset)
        self._base = spec.ruleset  # the rule set (as loaded) that self.rules copies
        if cooldowns and self.rules is not None:
            self.rules.import_state(cooldowns)

    def on_batch(self, values: list[tuple[str, list]]) -> tuple[Iterable[tuple], bool]:
        hot = self.spec.hot
        if hot is not None:
            hot.poll()
            base = hot.ruleset
            if base is not self._base and base is not None:  # reloaded: same cooldowns, new rules
                rules = _fresh_ruleset(base)
                if self.rules is not None:
                    rules.adopt_state(self.rules)
                self.rules, self._base = rules, base
        per_block: dict[int, tuple[list[AddressUpdate], list[Alert]]] = {}
        for _tag, touches in values:
            updates = self.state.process(touches)
            alerts = self.rules.evaluate(updates) if self.rules is not None else []
            for u in updates:
                entry = per_block.get(u.transfer.block_number)
                if entry is None:
                    entry = per_block[u.transfer.block_number] = ([], [])
                entry[0].append(u)
            for a in alerts:
                per_block.setdefault(a.block_number, ([], []))[1].append(a)
        return [("updates", b, ups, als) for b, (ups, als) in per_block.items()], False

    def snapshot(self) -> bytes | None:
        cooldowns = self.rules.export_state() if self.rules is not None else None
        return _freeze(self.spec, (self.state, cooldowns))


def _freeze(spec: AnalyticsSpec, state: object) -> bytes | None:
    """Bytewax calls ``snapshot`` at every epoch, recovery or not: pay for a copy only when kept.

    Pickled bytes are the immutable copy Bytewax asks for, made in one pass.
    """
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL) if spec.recovery else None


def _fresh_ruleset(base: Any) -> Any:
    """A RuleSet sharing ``base``'s compiled rules and watchlists, with cooldowns of its own."""
    if base is None:
        return None
    return type(base)(base.rules, base.env)


class _ScoringLogic(op.StatefulBatchLogic):
    """Holds blocks until complete, then scores them; a wall-clock timer bounds the wait."""

    def __init__(self, spec: AnalyticsSpec, resume: bytes | None) -> None:
        self.spec = spec
        if resume:
            self.stage: ScoringStage = pickle.loads(resume)
            self.stage.scorer = spec.scorer
        else:
            governor = AlertGovernor(spec.budget) if spec.budget is not None else None
            self.stage = ScoringStage(spec.scorer, spec.min_score_rows, spec.anomaly_cooldown_ms, governor)
        self.stage.allow = spec.hot.allowlists if spec.hot is not None else None
        self._wake: datetime | None = None
        self._nudge: datetime | None = None  # when to send the sink a flush marker

    def on_batch(self, values: list[tuple]) -> tuple[Iterable[TableRows], bool]:
        hot = self.spec.hot
        if hot is not None:  # the allow lists in force suppress what this batch finishes
            hot.poll()
            self.stage.allow = hot.allowlists
        for item in values:
            if item[0] == "expect":
                self.stage.expect(*item[1:])
            elif item[0] == "extra":
                self.stage.extra(item[1])
            else:
                self.stage.add(item[1], item[2], item[3])
        out = self._emit(self.stage.take())
        if self._wake is None and self.stage.has_complete:
            self._wake = datetime.now(UTC) + timedelta(seconds=self.spec.max_wait_s)
        return out, False

    def on_notify(self) -> tuple[Iterable[TableRows], bool]:
        now = datetime.now(UTC)
        out: list[TableRows] = []
        if self._wake is not None and now >= self._wake:
            self._wake = None
            out = self._emit(self.stage.take(force=True))
        if self._nudge is not None and now >= self._nudge:
            # Alerts emitted a moment ago may sit in the sink's buffer until the next block (3 s at
            # mainnet pace): a marker makes the sink look at its buffer again once it is due.
            self._nudge = None
            out.append((FLUSH, [()]))
        return out, False

    def on_eof(self) -> tuple[Iterable[TableRows], bool]:
        self._wake = None
        out = self._emit(self.stage.take(force=True), end_of_input=True)
        self.stage.log_suppressed()
        return out, False

    def notify_at(self) -> datetime | None:
        times = [t for t in (self._wake, self._nudge) if t is not None]
        return min(times) if times else None

    def _emit(self, scored: Any, end_of_input: bool = False) -> list[TableRows]:
        out: list[TableRows] = []
        if scored is not None and scored.alerts:
            out.append(("alerts", scored.alerts))
            if self._nudge is None:
                self._nudge = datetime.now(UTC) + timedelta(seconds=self.spec.sink_delay_s + 0.01)
            if self.spec.routing is not None:  # same sink flush as the alerts: nothing lost
                out.append(("ticket_outbox", outbox_rows(scored.alerts, self.spec.routing)))
        if scored is not None and scored.suppressed:
            out.append(("suppressed_alerts", suppressed_rows(scored.suppressed)))
        if scored is not None and self.spec.write_features and scored.features:
            out.append(("address_features", feature_rows(u.features for u in scored.features)))
        take_drift = getattr(self.spec.scorer, "take_drift_rows", None)
        if take_drift is not None and (scored is not None or end_of_input):
            drift = take_drift(flush=end_of_input)  # the open window too, when the input ends
            if drift:
                out.append(("model_drift", [tuple(r) for r in drift]))
        return out

    def snapshot(self) -> bytes | None:
        return _freeze(self.spec, self.stage)


def build_analytics(spec: AnalyticsSpec):
    """The ``analytics`` hook of :class:`pipeline.flow.FlowSpec` for this configuration."""

    def analytics(blocks: Stream[DecodedBlock]) -> Stream[TableRows]:
        graph_out = op.stateful_batch("graph", op.key_on("graph_key", blocks, lambda _b: "graph"),
                                      lambda s: _GraphLogic(spec, s))
        routed = op.key_rm("graph_out", graph_out)
        keyed = op.key_on("route", routed, lambda item: item[0])
        to_shards = op.filter("touches", keyed, lambda kv: kv[0] != SCORE_KEY)
        expects = op.filter("expects", keyed, lambda kv: kv[0] == SCORE_KEY)
        to_shards = op.map_value("unwrap", to_shards, lambda item: item[1])
        expects = op.map_value("unwrap_expect", expects, lambda item: item[1])
        shard_out = op.stateful_batch("shards", to_shards, lambda s: _ShardLogic(spec, s))
        to_score = op.key_on("to_score", op.key_rm("shard_rows", shard_out), lambda _x: SCORE_KEY)
        scored = op.stateful_batch("scoring", op.merge("join", expects, to_score),
                                   lambda s: _ScoringLogic(spec, s))
        return op.key_rm("scored", scored)

    return analytics

