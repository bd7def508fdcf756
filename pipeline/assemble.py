"""Build the analytics stages from settings, once, at start.

Everything that can be wrong with rules, watchlists or a model is found here, before a single
block is read, and reported as one line naming the file (a :class:`PipelineError`).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from pipeline.analytics import AnalyticsSpec
from pipeline.config import AnalyticsSettings, Settings
from pipeline.errors import ModelError
from pipeline.operators.alert_budget import BudgetConfig
from pipeline.operators.structures import StructureConfig
from pipeline.operators.windows import WindowConfig

log = logging.getLogger(__name__)


def window_config(a: AnalyticsSettings) -> WindowConfig:
    return WindowConfig(long_ms=a.long_window_s * 1000, short_ms=a.short_window_s * 1000,
                        lateness_ms=a.lateness_s * 1000, horizon_ms=a.first_seen_horizon_s * 1000,
                        first_seen_capacity=a.first_seen_capacity, n_shards=a.shards)


def analytics_spec(settings: Settings, paced: bool = False) -> AnalyticsSpec | None:
    """``paced``: live or paced replay, where blocks arrive one by one and latency matters."""
    a = settings.analytics
    if not a.enabled:
        return None
    from pipeline.allowlists import AllowlistLoader
    from pipeline.hot_reload import HotReload
    from pipeline.rules.engine import load_ruleset
    from pipeline.watchlists import WatchlistLoader

    lists = WatchlistLoader(a.watchlists) if a.watchlists else None  # the first load must succeed
    watchlists = lists.current() if lists is not None else None
    ruleset = load_ruleset(list(a.rules), watchlists, max_bytes=a.max_yaml_bytes) if a.rules else None
    allow = None  # scopes are checked against the rules just loaded; the first load must succeed
    if a.allowlists:
        allow = AllowlistLoader(a.allowlists, known_rules={r.id for r in ruleset.rules} if ruleset else None)
    hot = None  # holds what is in force; looks at the files again only with an interval set
    if ruleset is not None or lists is not None or allow is not None:
        hot = HotReload(ruleset, list(a.rules), lists, a.reload_interval_s or math.inf, allow=allow,
                        max_yaml_bytes=a.max_yaml_bytes)
    routing = None
    if settings.tickets.enabled:
        from pipeline.tickets.service import routing_for

        routing = routing_for(settings, ruleset.ticket_rule_ids if ruleset else frozenset())
    return AnalyticsSpec(
        windows=window_config(a),
        watchlist=watchlists.addresses if watchlists is not None else frozenset(),
        ruleset=ruleset,
        scorer=with_supervised(load_scorer(a), a),
        min_score_rows=a.min_score_rows,
        max_wait_s=(a.live_max_wait_ms if paced else a.max_wait_ms) / 1000.0,
        write_features=a.write_features,
        anomaly_cooldown_ms=a.anomaly_cooldown_s * 1000,
        recovery=bool(settings.pipeline.recovery_dir),
        sink_delay_s=sink_delay_s(settings, paced),
        routing=routing,
        hot=hot,
        structures=StructureConfig(window_ms=a.structure_window_s * 1000) if a.structures else None,
        budget=BudgetConfig(per_1k=a.alert_budget_per_1k, window_ms=a.correlation_window_s * 1000)
        if a.alert_budget_per_1k > 0 or a.correlation_window_s > 0 else None,
    )


def sink_delay_s(settings: Settings, paced: bool) -> float:
    c = settings.clickhouse
    return (c.live_max_delay_ms if paced else c.max_delay_ms) / 1000.0


def load_scorer(a: AnalyticsSettings):
    """The anomaly scorer for ``a.model``, or None when scoring is off.

    The shipped default model path may be absent in a checkout that has not trained one yet:
    then scoring is off with a warning. A model path the user configured must load.
    """
    if not a.model:
        return None
    from pipeline.config import AnalyticsSettings as Defaults

    path = Path(a.model)
    if not path.exists():
        if a.model == Defaults().model:
            log.warning("no anomaly model at %s: anomaly scoring is off (train one: run_pipeline.py train)", path)
            return None
        raise ModelError(f"{path}: anomaly model not found")
    from pipeline.anomaly.persistence import load
    from pipeline.anomaly.scorer import AnomalyScorer

    threshold = None if a.anomaly_threshold < 0 else a.anomaly_threshold
    # One model call per micro-batch: an IsolationForest call costs ~8 ms of fixed overhead, so
    # chunks as large as the batch the scoring stage hands over.
    model = load(path, sha256=a.model_sha256)  # a pinned digest: a replaced model is refused
    return AnomalyScorer(model, threshold, batch_size=max(a.min_score_rows * 4, 8192))


def with_supervised(scorer, a: AnalyticsSettings):
    """``scorer`` plus the supervised model at ``a.supervised_model`` when one is set (it must load)."""
    if not a.supervised_model:
        return scorer
    from pipeline.anomaly.supervised_scorer import CompositeScorer, SupervisedScorer
    from pipeline.anomaly.supervised_store import load

    return CompositeScorer(scorer, SupervisedScorer(load(a.supervised_model)))
