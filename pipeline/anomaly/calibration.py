"""Map raw detector scores (and raw feature values) to their quantile in the training data.

Why: every detector has its own raw scale (IsolationForest's path-length score in (0, 1], HBOS a
sum of log densities, LOF a ratio...). Analysts, thresholds and the ensemble need one scale, so a
calibrated score is *the percentage of training rows that scored lower*: 99.0 means "more anomalous
than 99 % of what the model was trained on". The table stores the training score quantiles at
:data:`SCORE_LEVELS` (1 % steps, then 0.05 % steps above the 99th percentile where thresholds live)
and maps a new score by linear interpolation. Scores below the training minimum map to 0, above the
training maximum to 100.

Ties (many training rows with the same score, typical of mostly-zero feature vectors) are collapsed
to one point at their mid-rank, so the table is strictly increasing and the mapping monotonic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SCORE_LEVELS: np.ndarray = np.unique(np.concatenate([np.linspace(0.0, 0.99, 100),
                                                     np.linspace(0.99, 1.0, 21)]).round(6))
FEATURE_LEVELS: np.ndarray = np.linspace(0.0, 1.0, 101).round(6)


class QuantileTable:
    """A monotone step-free map ``value -> quantile in [0, 1]`` built from a sample's quantiles."""

    __slots__ = ("xs", "ys")

    def __init__(self, xs: np.ndarray, ys: np.ndarray) -> None:
        self.xs = np.asarray(xs, dtype=np.float64)
        self.ys = np.asarray(ys, dtype=np.float64)
        if self.xs.ndim != 1 or self.xs.shape != self.ys.shape or self.xs.size == 0:
            raise ValueError("quantile table needs two equal, non-empty 1-d arrays")
        if np.any(np.diff(self.xs) <= 0) or np.any(np.diff(self.ys) < 0):
            raise ValueError("quantile table must be strictly increasing in value")

    @classmethod
    def from_sample(cls, sample: np.ndarray, levels: np.ndarray) -> QuantileTable:
        values = np.quantile(np.asarray(sample, dtype=np.float64), levels)
        return cls.from_quantiles(values, levels)

    @classmethod
    def from_quantiles(cls, values: np.ndarray, levels: np.ndarray) -> QuantileTable:
        """Collapse tied quantile values to their mean level (mid-rank) so ``xs`` strictly increases."""
        values = np.maximum.accumulate(np.asarray(values, dtype=np.float64))
        xs, inverse = np.unique(values, return_inverse=True)
        ys = np.bincount(inverse, weights=levels) / np.bincount(inverse)
        return cls(xs, ys)

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        return np.interp(x, self.xs, self.ys, left=0.0, right=1.0)

    def value_at(self, level: float) -> float:
        """Inverse lookup (e.g. the median at 0.5), interpolating between stored points."""
        return float(np.interp(level, self.ys, self.xs))

    def to_card(self) -> dict[str, Any]:
        return {"values": self.xs.tolist(), "levels": self.ys.tolist()}

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> QuantileTable:
        return cls(np.asarray(card["values"]), np.asarray(card["levels"]))


def calibrate(table: QuantileTable, raw: np.ndarray) -> np.ndarray:
    """Raw scores -> 0..100 (percent of training rows scoring lower), vectorised."""
    return 100.0 * table(np.asarray(raw, dtype=np.float64))
