"""Population stability index (PSI) per feature: live windows vs the training distribution.

Why: an anomaly model is only as good as the match between what it was trained on and what it now
sees. PSI per feature, per event-time window, shows a dashboard *which* input moved and when, so
the operator knows the model needs retraining before its alert rate says so.

Bins are fixed at training time from the training deciles of each raw feature, right-closed:
``(-inf, e0], (e0, e1], ..., (e_last, +inf)``; tied deciles are merged, so a mostly-zero feature
gets the bins "= 0" and "> 0" instead of ten empty ones. The expected share of each bin is counted
on the training rows (not assumed 10 %). PSI = sum((a - e) * ln(a / e)) with both shares floored
at :data:`PSI_EPS`. Rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 retrain.

:class:`DriftMonitor` keeps one fixed ``(features x bins)`` count array for the current tumbling
event-time window (memory never grows with the stream) and emits :class:`DriftRow` s for the
``model_drift`` ClickHouse table when a later window starts, or on :meth:`DriftMonitor.flush`.
Rows arriving for an already-closed window (late events) are counted in the current window.
PSI is not additive across partitions: feed one monitor per model from one partition, or accept
one row set per worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

PSI_EPS = 1e-4
DECILES = np.linspace(0.1, 0.9, 9)


class DriftRow(NamedTuple):
    """One row of ClickHouse ``model_drift``; times are event-time ms (UTC)."""

    window_start: int
    window_end: int
    model_version: str
    feature: str
    psi: float
    n: int


def psi(expected: np.ndarray, actual_counts: np.ndarray, eps: float = PSI_EPS) -> float:
    """PSI of observed bin counts against expected bin shares (0.0 when they match)."""
    total = float(np.sum(actual_counts))
    if total <= 0:
        return 0.0
    e = np.maximum(np.asarray(expected, dtype=np.float64), eps)
    a = np.maximum(np.asarray(actual_counts, dtype=np.float64) / total, eps)
    return float(np.sum((a - e) * np.log(a / e)))


class DriftReference:
    """Per-feature bin edges and expected bin shares from the training rows."""

    def __init__(self, feature_names: Sequence[str], edges: Sequence[np.ndarray],
                 expected: Sequence[np.ndarray]) -> None:
        self.feature_names = tuple(feature_names)
        self.edges = [np.asarray(e, dtype=np.float64) for e in edges]
        self.expected = [np.asarray(p, dtype=np.float64) for p in expected]
        if not (len(self.edges) == len(self.expected) == len(self.feature_names)):
            raise ValueError("drift reference: edges/expected do not match the feature list")
        for e, p in zip(self.edges, self.expected):
            if p.shape != (len(e) + 1,):
                raise ValueError("drift reference: need one more expected share than edges")
        self.n_bins = max(len(p) for p in self.expected)

    @classmethod
    def from_training(cls, feature_names: Sequence[str], X: np.ndarray) -> DriftReference:
        edges, expected = [], []
        for j in range(X.shape[1]):
            col = X[:, j]
            e = np.unique(np.quantile(col, DECILES))
            counts = np.bincount(np.searchsorted(e, col, side="left"), minlength=len(e) + 1)
            edges.append(e)
            expected.append(counts / max(len(col), 1))
        return cls(feature_names, edges, expected)

    def bin_counts(self, X: np.ndarray) -> np.ndarray:
        """``(features x n_bins)`` counts of the rows of raw matrix ``X``."""
        out = np.zeros((len(self.edges), self.n_bins), dtype=np.int64)
        for j, e in enumerate(self.edges):
            c = np.bincount(np.searchsorted(e, X[:, j], side="left"), minlength=len(e) + 1)
            out[j, : len(c)] += c
        return out

    def to_card(self) -> dict[str, Any]:
        return {name: {"edges": e.tolist(), "expected": p.tolist()}
                for name, e, p in zip(self.feature_names, self.edges, self.expected)}

    @classmethod
    def from_card(cls, feature_names: Sequence[str], card: dict[str, Any]) -> DriftReference:
        return cls(feature_names, [card[n]["edges"] for n in feature_names],
                   [card[n]["expected"] for n in feature_names])


class DriftMonitor:
    """Accumulates live bin counts per tumbling event-time window and emits PSI rows."""

    def __init__(self, reference: DriftReference, model_version: str, *,
                 window_ms: int = 3_600_000, min_rows: int = 1) -> None:
        if window_ms <= 0:
            raise ValueError("window_ms must be positive")
        self.reference = reference
        self.model_version = model_version
        self.window_ms = int(window_ms)
        self.min_rows = int(min_rows)
        self._window: int | None = None  # current window id (ts // window_ms)
        self._counts = np.zeros((len(reference.edges), reference.n_bins), dtype=np.int64)
        self._n = 0

    def observe(self, X: np.ndarray, ts: Sequence[int] | np.ndarray) -> list[DriftRow]:
        """Count a batch of raw feature rows at event times ``ts``; return rows of closed windows."""
        X = np.asarray(X, dtype=np.float64)
        wids = np.asarray(ts, dtype=np.int64) // self.window_ms
        rows: list[DriftRow] = []
        for wid in np.unique(wids).tolist():
            if self._window is None:
                self._window = wid
            elif wid > self._window:
                rows += self.flush()
                self._window = wid
            sel = X[wids == wid]
            self._counts += self.reference.bin_counts(sel)
            self._n += len(sel)
        return rows

    def flush(self) -> list[DriftRow]:
        """Emit the current window (if it has enough rows) and reset the counts."""
        rows: list[DriftRow] = []
        if self._window is not None and self._n >= self.min_rows:
            start = self._window * self.window_ms
            for j, name in enumerate(self.reference.feature_names):
                k = len(self.reference.expected[j])
                rows.append(DriftRow(start, start + self.window_ms, self.model_version, name,
                                     psi(self.reference.expected[j], self._counts[j, :k]), self._n))
        self._counts[:] = 0
        self._n = 0
        return rows
