"""The supervised model in the scoring stage: ``supervised.gbm`` alerts beside the anomaly ones.

:class:`SupervisedScorer` is a ``RowScorer`` (:mod:`pipeline.operators.scoring`): one model call per
micro-batch, an alert for each row whose calibrated probability reaches the card's threshold.
:class:`CompositeScorer` runs the anomaly scorer and the supervised one on the same rows and
returns both sets of alerts, so the scoring stage is unchanged: its cooldown keys on (rule id,
address), which gives ``supervised.gbm`` its own one-alert-per-address-per-hour, and its allow
lists apply as to any alert. The per-row scores the stage combines into rule alerts' risk stay the
anomaly scorer's (a percentile), unless there is no anomaly model.

Alert contract: ``rule_id`` ``supervised.gbm``, ``rule_version`` the model's content hash, no tags,
``details`` ``{probability, threshold, model_version, top_features: [{name, value, train_median,
delta}]}``; severity from the probability (>= 0.9 high, >= 0.6 medium, else low) and risk from
:func:`pipeline.anomaly.risk.risk_score` of that severity: a classifier says "looks like laundering
we have seen", stronger than "unusual" but never ``critical`` on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson

from pipeline.anomaly.risk import risk_score
from pipeline.anomaly.supervised import SupervisedModel
from pipeline.records import AddressUpdate, Alert, alert_id

RULE_ID = "supervised.gbm"
PROBABILITY_BANDS: tuple[tuple[float, str], ...] = ((0.9, "high"), (0.6, "medium"), (0.0, "low"))


def severity_for(p: float) -> str:
    return next(sev for lower, sev in PROBABILITY_BANDS if p >= lower)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class SupervisedScorer:
    """Score rows with a :class:`SupervisedModel`; alerts at or above its threshold."""

    def __init__(self, model: SupervisedModel, *, top_k: int = 3,
                 clock: Callable[[], int] = _wall_ms) -> None:
        self.model = model
        self.top_k = top_k
        self.clock = clock

    def score_rows(self, rows: Sequence[AddressUpdate]) -> tuple[list[Alert], list[float]]:
        """Alerts, and each row's calibrated probability as 0-100, in row order."""
        if not rows:
            return [], []
        X = np.array([u.features.values for u in rows], dtype=np.float64)
        p = self.model.score_batch(X)
        hits = np.flatnonzero(p >= self.model.threshold)
        alerts: list[Alert] = []
        if hits.size:
            now = self.clock()
            version = self.model.version
            for i, top in zip(hits.tolist(), self.model.explain(X[hits], self.top_k)):
                u, prob, t = rows[i], float(p[i]), rows[i].transfer
                severity = severity_for(prob)
                details = {"probability": round(prob, 4), "threshold": round(self.model.threshold, 4),
                           "model_version": version, "top_features": [c.as_dict() for c in top]}
                lead = ", ".join(c.name for c in top) or "features"
                alerts.append(Alert(
                    alert_id=alert_id(RULE_ID, u.address, t.tx_id), ts=t.ts, detected_at=now,
                    block_number=t.block_number, tx_id=t.tx_id, address=u.address, rule_id=RULE_ID,
                    rule_version=version, severity=severity, risk_score=risk_score(severity, None),
                    status="pending" if t.source == "mempool" else "confirmed", source=t.source,
                    title=f"Resembles labelled laundering (p={prob:.2f}; top: {lead})",
                    tags=(), details=orjson.dumps(details).decode()))
        return alerts, (p * 100.0).tolist()


class CompositeScorer:
    """The anomaly scorer (may be None) and the supervised scorer on the same rows."""

    def __init__(self, primary: Any, supervised: SupervisedScorer) -> None:
        self.primary = primary
        self.supervised = supervised
        self.models = list(getattr(primary, "models", ()))  # what the audit trail records at start

    def score_rows(self, rows: Sequence[AddressUpdate]) -> tuple[list[Alert], list[float]]:
        alerts, probs = self.supervised.score_rows(rows)
        if self.primary is None:
            return alerts, probs
        primary_alerts, scores = self.primary.score_rows(rows)
        return primary_alerts + alerts, scores

    def take_drift_rows(self, flush: bool = False) -> list:
        take = getattr(self.primary, "take_drift_rows", None)
        return take(flush) if take is not None else []
