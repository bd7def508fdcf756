"""Feature transform shared by fit and score: log1p on heavy-tailed columns, then robust scaling.

Why: counts and USD volumes span many orders of magnitude (one exchange hot wallet moves more in
a minute than most addresses in a year). On the raw scale a distance- or histogram-based detector
sees only those few giants. ``log1p`` makes a tenfold change weigh the same everywhere; robust
scaling ``(x - median) / scale`` then puts every column on one unit so LOF distances are
meaningful and so :meth:`FeatureTransform.transform` *is* the robust z-score that explanations
report. The transform is fitted once on the training matrix, stored in the model card and applied
identically when scoring.

Columns transformed with ``log1p`` (negative values are clipped to 0 first; NaN -> 0,
+inf -> a large finite value): every count, volume and duration in :data:`LOG1P_FEATURES`.
Left linear: bounded ratios and scores (``pass_through_ratio``, ``exposure_score``) and the small
categorical-like ``watch_hops`` (0..3, 9 = none).

``scale`` is the interquartile range of the transformed column; where that is 0 (a column that is
mostly zero, such as ``permission_changes``) the standard deviation is used, and 1.0 where the
column is constant, so no division by zero ever happens and a rare non-zero value still stands out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

LOG1P_FEATURES: frozenset[str] = frozenset({
    "tx_in_count", "tx_out_count", "usd_in", "usd_out", "distinct_in", "distinct_out",
    "fan_in_10m", "fan_out_10m", "pass_through_delay_s", "age_s", "zero_value_in", "dust_in",
    "lookalike_count", "cycle_count", "approvals_unlimited", "failed_out", "permission_changes",
})

_POSINF = 1e300  # finite stand-in for +inf; log1p of it is ~690


class FeatureTransform:
    """``log1p`` (selected columns) then ``(x - median) / scale``, column by column."""

    def __init__(self, feature_names: Sequence[str]) -> None:
        self.feature_names: tuple[str, ...] = tuple(feature_names)
        self.log_mask = np.array([n in LOG1P_FEATURES for n in self.feature_names], dtype=bool)
        self.center: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def _log(self, X: np.ndarray) -> np.ndarray:
        X = np.nan_to_num(np.asarray(X, dtype=np.float64), nan=0.0, posinf=_POSINF, neginf=-_POSINF)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(f"expected a (n, {len(self.feature_names)}) matrix, got shape {X.shape}")
        out = X.copy()
        if self.log_mask.any():
            out[:, self.log_mask] = np.log1p(np.maximum(X[:, self.log_mask], 0.0))
        return out

    def fit(self, X: np.ndarray) -> FeatureTransform:
        L = self._log(X)
        q1, med, q3 = np.percentile(L, [25, 50, 75], axis=0)
        scale = q3 - q1
        std = L.std(axis=0)
        scale = np.where(scale > 0, scale, np.where(std > 0, std, 1.0))
        self.center, self.scale = med, scale
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Robust z-scores of ``X`` in the log space; what detectors consume and explain reports."""
        if self.center is None or self.scale is None:
            raise RuntimeError("FeatureTransform.transform called before fit")
        return (self._log(X) - self.center) / self.scale

    def to_card(self) -> dict[str, Any]:
        assert self.center is not None and self.scale is not None
        return {
            "log1p": [n for n, m in zip(self.feature_names, self.log_mask) if m],
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
        }

    @classmethod
    def from_card(cls, feature_names: Sequence[str], card: dict[str, Any]) -> FeatureTransform:
        t = cls(feature_names)
        t.log_mask = np.array([n in set(card["log1p"]) for n in t.feature_names], dtype=bool)
        t.center = np.asarray(card["center"], dtype=np.float64)
        t.scale = np.asarray(card["scale"], dtype=np.float64)
        if t.center.shape != (len(t.feature_names),) or t.scale.shape != t.center.shape:
            raise ValueError("transform center/scale length does not match the feature list")
        return t
