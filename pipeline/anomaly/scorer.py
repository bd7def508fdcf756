"""Streaming anomaly scorer: micro-batches of ``AddressUpdate`` in, ``Alert`` s out (pure, no Bytewax).

Why batch: a detector call costs about the same for 1 row as for a few hundred (IsolationForest
~5-10 ms; every pyod call ~0.1-0.8 ms of input checks), so the scorer builds ONE matrix per
micro-batch and makes ONE
``score_batch`` call per model per ``batch_size`` rows. Within a batch an address touched several
times is scored once, on its latest update (highest feature ``ts``, later in the batch on ties),
which is also the one the alert points at.

Alerts follow the ``alerts`` contract: ``rule_id`` ``anomaly.<model name>`` (the detector name
unless the model was given another), ``rule_version`` = the model's content-derived version,
``alert_id`` = blake2b-128 of rule id, address and triggering tx id (replays give the same ids),
``status`` ``pending`` for mempool transfers and ``confirmed`` otherwise, ``risk_score`` from
:func:`pipeline.anomaly.risk.risk_score` with no rule severity, ``details`` JSON
``{score, raw_score, model_version, detector, top_features: [{name, value, train_median, z,
quantile}]}``.

Severity bands on the calibrated score (:data:`SEVERITY_BANDS`, first match wins):
>= 99.99 ``high``, >= 99.9 ``medium``, >= 99 ``low``, below that ``info`` (only reachable with a
threshold under 99). An anomaly alone is never ``critical``: it says "unusual", not "bad".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import orjson

from pipeline.anomaly.drift import DriftMonitor, DriftRow
from pipeline.anomaly.model import Scorable
from pipeline.anomaly.risk import risk_score
from pipeline.errors import ModelError
from pipeline.records import FEATURE_NAMES, AddressUpdate, Alert

log = logging.getLogger(__name__)

SEVERITY_BANDS: tuple[tuple[float, str], ...] = ((99.99, "high"), (99.9, "medium"), (99.0, "low"),
                                                 (float("-inf"), "info"))


from pipeline.records import alert_id  # noqa: E402,F401 - the contract lives with the Alert record


def severity_for(score: float, bands: Sequence[tuple[float, str]] = SEVERITY_BANDS) -> str:
    """The severity of a calibrated score: the first band whose lower bound it reaches."""
    for lower, severity in bands:
        if score >= lower:
            return severity
    return "info"


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class AnomalyScorer:
    """Score micro-batches of address updates with one or more models; raise alerts above threshold.

    ``threshold`` (calibrated 0-100) overrides every model's own; None keeps each model's card
    threshold. Drift: unless ``drift_window_ms`` is None (or a ``drift`` monitor is given), a
    :class:`DriftMonitor` over the first model's training bins sees every scored matrix, in
    ``drift_window_ms`` event-time windows; drain its rows with :meth:`take_drift_rows`.
    """

    def __init__(self, models: Scorable | Sequence[Scorable], threshold: float | None = None,
                 batch_size: int = 512, *, top_k: int = 3,
                 bands: Sequence[tuple[float, str]] = SEVERITY_BANDS,
                 drift: DriftMonitor | None = None, drift_window_ms: int | None = 3_600_000,
                 clock: Callable[[], int] = _wall_ms) -> None:
        self.models: list[Scorable] = list(models) if isinstance(models, Sequence) else [models]
        if not self.models:
            raise ValueError("AnomalyScorer needs at least one model")
        for m in self.models:
            if tuple(m.feature_names) != FEATURE_NAMES:
                raise ModelError(f"model {m.name!r} (version {m.version}) was trained on another "
                                 "feature list than this pipeline's FEATURE_NAMES; retrain it")
        if threshold is not None and not 0.0 <= threshold <= 100.0:
            raise ValueError(f"threshold is on the calibrated 0-100 scale, got {threshold}")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.threshold = threshold
        self.batch_size = int(batch_size)
        self.top_k = int(top_k)
        self.bands = tuple(bands)
        reference = getattr(self.models[0], "drift", None)
        if drift is None and drift_window_ms is not None and reference is not None:
            drift = DriftMonitor(reference, self.models[0].version, window_ms=drift_window_ms)
        self.drift = drift
        self.clock = clock
        self._drift_rows: list[DriftRow] = []
        # resolved once: rule ids and versions do not change while streaming
        self._rules = [(m, f"anomaly.{m.name}", m.version,
                        m.threshold if threshold is None else threshold) for m in self.models]

    @staticmethod
    def latest_per_address(updates: Sequence[AddressUpdate]) -> list[AddressUpdate]:
        """One update per address: the one with the highest feature ``ts`` (the later one on ties)."""
        latest: dict[str, AddressUpdate] = {}
        for u in updates:
            prev = latest.get(u.address)
            if prev is None or u.features.ts >= prev.features.ts:
                latest[u.address] = u
        return list(latest.values())

    def score_updates(self, updates: Sequence[AddressUpdate]) -> list[Alert]:
        """Alerts for the addresses in this micro-batch whose calibrated score reaches the threshold."""
        return self.score_rows(self.latest_per_address(updates))[0]

    def score_rows(self, rows: Sequence[AddressUpdate]) -> tuple[list[Alert], list[float]]:
        """Score ``rows`` as given (no deduplication): alerts, and each row's calibrated score from
        the FIRST model, in row order (what rule alerts combine into their risk score).

        One ``score_batch`` call per model per ``batch_size`` rows. Every detector scores a row
        independently of the other rows in its call, so results do not depend on batching.
        """
        alerts: list[Alert] = []
        primary: list[float] = []
        for start in range(0, len(rows), self.batch_size):
            chunk = list(rows[start:start + self.batch_size])
            X = np.array([u.features.values for u in chunk], dtype=np.float64)
            if self.drift is not None:
                self._drift_rows += self.drift.observe(X, [u.features.ts for u in chunk])
            for k, (model, rule_id, version, threshold) in enumerate(self._rules):
                raw = model.score_batch(X)
                scores = model.calibrate(raw)
                if k == 0:
                    primary += scores.tolist()
                hits = np.flatnonzero(scores >= threshold)
                if hits.size:
                    alerts += self._alerts(model, rule_id, version, chunk, X, raw, scores, hits)
        return alerts, primary

    def take_drift_rows(self, flush: bool = False) -> list[DriftRow]:
        """Drift rows of windows closed so far (for ClickHouse ``model_drift``); clears the buffer.

        ``flush=True`` also closes the current window (end of input).
        """
        if flush and self.drift is not None:
            self._drift_rows += self.drift.flush()
        rows, self._drift_rows = self._drift_rows, []
        return rows

    def _alerts(self, model: Scorable, rule_id: str, version: str, chunk: list[AddressUpdate],
                X: np.ndarray, raw: np.ndarray, scores: np.ndarray, hits: np.ndarray) -> list[Alert]:
        explanations = model.explain(X[hits], self.top_k)
        now = self.clock()
        out = []
        for i, top in zip(hits.tolist(), explanations):
            u, score = chunk[i], float(scores[i])
            t = u.transfer
            severity = severity_for(score, self.bands)
            details = {"score": round(score, 4), "raw_score": float(raw[i]), "model_version": version,
                       "detector": getattr(model, "detector", model.name),
                       "top_features": [c.as_dict() for c in top]}
            lead = top[0].name if top else "features"
            out.append(Alert(
                alert_id=alert_id(rule_id, u.address, t.tx_id), ts=t.ts, detected_at=now,
                block_number=t.block_number, tx_id=t.tx_id, address=u.address, rule_id=rule_id,
                rule_version=version, severity=severity, risk_score=risk_score(None, score),
                status="pending" if t.source == "mempool" else "confirmed", source=t.source,
                title=f"Anomalous address activity ({model.name}, score {score:.2f}; top: {lead})",
                tags=("anomaly",), details=orjson.dumps(details).decode()))
        return out
