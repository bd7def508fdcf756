"""The detectors we support, behind one tiny adapter: ``fit(Z)``, ``decision(Z)``, ``train_scores``.

Why an adapter: scikit-learn's IsolationForest says "lower is more anomalous" through
``score_samples`` while pyod says "higher is more anomalous" through ``decision_function``; LOF
must not calibrate on in-sample scores (each training point is its own nearest neighbour) but on
pyod's leave-one-out ``decision_scores_``. The adapters hide that, so the model above them has one
rule: **raw score, higher = more anomalous**. Adapters are what gets pickled.

Cost notes (2-core machine, 20 features): IsolationForest ~5-10 ms per call up to a few hundred
rows; HBOS < 1 ms; LOF ~10-50 ms per 256 rows and it grows with the reference set, so LOF is
fitted on a seeded subsample of at most ``max_fit_rows`` rows (:data:`DEFAULT_MAX_FIT_ROWS`).

ECOD and COPOD: pyod's ``decision_function`` appends the batch to the whole training matrix and
recomputes every column's ECDF (~100-200 ms per call at 20k training rows), and a row's score then
depends on the other rows of the same call. We fit with pyod (its training scores calibrate the
model) but score new rows with :func:`_ecdf_scores`, the same formula evaluated against the stored
sorted training columns: each row is placed in the training ECDF as if it were the only new row,
``F(x) = (#train <= x + 1) / (n + 1)``, and the tail direction uses the training skewness. That is
pyod's single-row result (up to the skewness of n+1 vs n rows), identical for any batch size or
composition, and costs a binary search per value (well under 1 ms per 256 rows).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# pyod state we never score with: ECOD/COPOD scratch + training copy, per-training-row outputs
_SCRATCH = ("U_l", "U_r", "U_skew", "O", "X_train")  # deleted
_PER_ROW = ("decision_scores_", "labels_")  # emptied (pyod's check_is_fitted wants them present)
_ECDF = frozenset({"ecod", "copod"})
DETECTORS: tuple[str, ...] = ("iforest", "hbos", "ecod", "copod", "lof")
DEFAULT_MAX_FIT_ROWS: dict[str, int | None] = {
    "iforest": None, "hbos": None, "ecod": 20_000, "copod": 20_000, "lof": 10_000,
}


def _build(name: str, seed: int, contamination: float, params: dict[str, Any]) -> Any:
    if name == "iforest":
        from sklearn.ensemble import IsolationForest

        kw = {"n_estimators": 100, "n_jobs": 1} | params
        return IsolationForest(contamination=contamination, random_state=seed, **kw)
    if name == "hbos":
        from pyod.models.hbos import HBOS

        return HBOS(contamination=contamination, **params)
    if name == "ecod":
        from pyod.models.ecod import ECOD

        return ECOD(contamination=contamination, **params)
    if name == "copod":
        from pyod.models.copod import COPOD

        return COPOD(contamination=contamination, **params)
    if name == "lof":
        from pyod.models.lof import LOF

        return LOF(contamination=contamination, novelty=True, **params)
    raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")


class DetectorAdapter:
    """One fitted estimator with the uniform "higher = more anomalous" interface."""

    def __init__(self, name: str, *, seed: int = 0, contamination: float = 0.01,
                 max_fit_rows: int | None = -1, params: dict[str, Any] | None = None) -> None:
        if name not in DETECTORS:
            raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
        if not 0.0 < contamination <= 0.5:
            raise ValueError(f"contamination must be in (0, 0.5], got {contamination}")
        self.name = name
        self.seed = int(seed)
        self.contamination = float(contamination)
        self.max_fit_rows = DEFAULT_MAX_FIT_ROWS[name] if max_fit_rows == -1 else max_fit_rows
        self.params = dict(params or {})
        self.estimator: Any = None
        self.fit_rows = 0
        self._train_scores: np.ndarray | None = None
        self._sorted = np.empty((0, 0))  # ECOD/COPOD: sorted training columns
        self._skew_sign = np.empty(0)

    def fit(self, Z: np.ndarray) -> DetectorAdapter:
        """Fit on the transformed matrix, on a seeded subsample when ``max_fit_rows`` caps it."""
        if self.max_fit_rows is not None and len(Z) > self.max_fit_rows:
            rng = np.random.default_rng(self.seed)
            idx = np.sort(rng.choice(len(Z), size=self.max_fit_rows, replace=False))
            log.info("%s: fitting on a %d-row subsample of %d rows", self.name, len(idx), len(Z))
            Z = Z[idx]
        est = _build(self.name, self.seed, self.contamination, self.params)
        est.fit(Z)
        self.estimator, self.fit_rows = est, len(Z)
        if self.name in _ECDF:
            from scipy.stats import skew

            self._sorted = np.sort(Z, axis=0)
            # a constant column has no skewness (NaN in scipy and, through it, in pyod's scores):
            # treat it as symmetric, which scores both tails
            self._skew_sign = np.nan_to_num(np.sign(skew(Z, axis=0)), nan=0.0)
        if self.name == "iforest":
            self._train_scores = -est.score_samples(Z)
        elif self.name in _ECDF:  # as pyod's fit, without its NaN on constant columns
            self._train_scores = _ecdf_scores(self.name, self._sorted, self._skew_sign, Z, in_reference=True)
        else:  # pyod's own training scores: leave-one-out for LOF, reference-only for ECOD/COPOD
            self._train_scores = np.asarray(est.decision_scores_, dtype=np.float64)
        return self

    @property
    def train_scores(self) -> np.ndarray:
        """Raw scores of the rows the estimator was fitted on (used only for calibration)."""
        if self._train_scores is None:
            raise RuntimeError(f"{self.name}: train_scores before fit")
        return self._train_scores

    def decision(self, Z: np.ndarray) -> np.ndarray:
        """Raw anomaly scores for a transformed batch: ONE estimator call, whatever the batch size."""
        if self.estimator is None:
            raise RuntimeError(f"{self.name}: decision before fit")
        if self.name == "iforest":
            return -self.estimator.score_samples(Z)
        if self.name in _ECDF:
            return _ecdf_scores(self.name, self._sorted, self._skew_sign, Z)
        return np.asarray(self.estimator.decision_function(Z), dtype=np.float64)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle only what scoring needs, so the artifact (and the version) is content-stable.

        Training scores live in the card (as the calibration table). pyod's ECOD/COPOD keep
        per-call scratch matrices (``U_l``, ``U_r``, ``U_skew``, ``O``) that ``decision_function``
        overwrites on every call, and a copy of the training matrix (``X_train``) that our
        :func:`_ecdf_scores` replaces with the sorted columns; every pyod model keeps one score
        and one label per training row (``decision_scores_``, ``labels_``), already summarised by
        the calibration table. Left in, they would bloat the artifact (HBOS: 3 MB for 200k rows)
        and make its bytes depend on the last batch scored.
        """
        state = self.__dict__.copy()
        state["_train_scores"] = None
        est = state.get("estimator")
        if est is not None and any(hasattr(est, a) for a in _SCRATCH + _PER_ROW):
            est = copy.copy(est)
            for a in _SCRATCH:
                if hasattr(est, a):
                    delattr(est, a)
            for a in _PER_ROW:
                if hasattr(est, a):
                    setattr(est, a, np.empty(0))
            state["estimator"] = est
        return state


def _ecdf_scores(name: str, sorted_cols: np.ndarray, skew_sign: np.ndarray, Z: np.ndarray,
                 in_reference: bool = False) -> np.ndarray:
    """ECOD/COPOD outlier scores of each row of ``Z`` against the training ECDF (batch-independent).

    ``in_reference``: the rows are the training rows themselves (F = #<=x / n, as pyod's fit);
    otherwise each row joins the reference on its own (F = (#<=x + 1) / (n + 1)).
    """
    n = sorted_cols.shape[0]
    le = np.empty(Z.shape, dtype=np.float64)
    ge = np.empty(Z.shape, dtype=np.float64)
    for j in range(Z.shape[1]):
        col = sorted_cols[:, j]
        le[:, j] = np.searchsorted(col, Z[:, j], side="right")
        ge[:, j] = n - np.searchsorted(col, Z[:, j], side="left")
    extra = 0.0 if in_reference else 1.0
    u_l = -np.log((le + extra) / (n + extra))
    u_r = -np.log((ge + extra) / (n + extra))
    u_skew = u_l * -1 * np.sign(skew_sign - 1) + u_r * np.sign(skew_sign + 1)
    if name == "ecod":
        o = np.maximum(np.maximum(u_l, u_r), u_skew)
    else:  # copod
        o = np.maximum(u_skew, (u_l + u_r) / 2)
    return o.sum(axis=1)
