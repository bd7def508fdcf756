"""The detectors we support, behind one tiny adapter: ``fit(Z)``, ``decision(Z)``, ``train_scores``.

Why an adapter: scikit-learn's IsolationForest says "lower is more anomalous" through
``score_samples`` while pyod says "higher is more anomalous" through ``decision_function``; LOF
must not calibrate on in-sample scores (each training point is its own nearest neighbour) but on
pyod's leave-one-out ``decision_scores_``. The adapters hide that, so the model above them has one
rule: **raw score, higher = more anomalous**. What an adapter saves is plain arrays
(:mod:`pipeline.anomaly.arrays`): nothing in a model file can run code.

Cost notes (2-core machine, 20 features): IsolationForest ~5-10 ms per call up to a few hundred
rows; HBOS < 1 ms; LOF ~10-50 ms per 256 rows and it grows with the reference set, so LOF is
fitted on a seeded subsample of at most ``max_fit_rows`` rows (:data:`DEFAULT_MAX_FIT_ROWS`).

ECOD and COPOD: pyod's ``decision_function`` appends the batch to the whole training matrix and
recomputes every column's ECDF (~100-200 ms per call at 20k training rows), and a row's score then
depends on the other rows of the same call. We fit with pyod but score new rows (and the training
rows, for calibration) with :func:`~pipeline.anomaly.arrays.ecdf_scores`, the same formula
evaluated against the stored sorted training columns: each row is placed in the training ECDF as if
it were the only new row, ``F(x) = (#train <= x + 1) / (n + 1)``, and the tail direction uses the
training skewness. That is pyod's single-row result (up to the skewness of n+1 vs n rows),
identical for any batch size or composition, and costs a binary search per value (well under 1 ms
per 256 rows).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.anomaly.arrays import EcdfScorer, ForestScorer, HistogramScorer, LofScorer

log = logging.getLogger(__name__)

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
    """One fitted detector with the uniform "higher = more anomalous" interface.

    What scores is a plain-array scorer (:mod:`pipeline.anomaly.arrays`), built from the fitted
    estimator right after ``fit`` and rebuilt from the artifact's arrays by :meth:`from_arrays`:
    a freshly trained model and a loaded one score through the same code. ``estimator`` (the
    library object) exists only in the process that fitted it (and for LOF, which is refitted).
    """

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
        self.scorer: Any = None
        self.fit_rows = 0
        self._train_scores: np.ndarray | None = None

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
        n = Z.shape[1]
        if self.name == "iforest":
            self.scorer = ForestScorer.from_estimator(est)
            self._train_scores = self.scorer.score(Z)  # = -est.score_samples(Z)
        elif self.name == "hbos":
            self.scorer = HistogramScorer.from_estimator(est)
            self._train_scores = np.asarray(est.decision_scores_, dtype=np.float64)
        elif self.name in _ECDF:
            from scipy.stats import skew

            # a constant column has no skewness (NaN in scipy and, through it, in pyod's scores):
            # treat it as symmetric, which scores both tails
            sign = np.nan_to_num(np.sign(skew(Z, axis=0)), nan=0.0)
            self.scorer = EcdfScorer(self.name, {"sorted": np.sort(Z, axis=0), "skew_sign": sign}, n)
            self._train_scores = self.scorer.score(Z, in_reference=True)  # as pyod's fit, without its NaN
        else:  # LOF: pyod's leave-one-out training scores (each row is its own nearest neighbour)
            self.scorer = LofScorer({"reference": np.asarray(Z, dtype=np.float64)}, n, self.contamination,
                                    self.params, estimator=est)
            self._train_scores = np.asarray(est.decision_scores_, dtype=np.float64)
        return self

    @property
    def train_scores(self) -> np.ndarray:
        """Raw scores of the rows the estimator was fitted on (used only for calibration)."""
        if self._train_scores is None:
            raise RuntimeError(f"{self.name}: train_scores before fit")
        return self._train_scores

    def decision(self, Z: np.ndarray) -> np.ndarray:
        """Raw anomaly scores for a transformed batch: ONE scorer call, whatever the batch size."""
        if self.scorer is None:
            raise RuntimeError(f"{self.name}: decision before fit")
        return self.scorer.score(Z)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """What the artifact stores: the scorer's arrays, nothing else (see :mod:`pipeline.anomaly.arrays`).

        Training scores live in the card (as the calibration table), so the artifact (and the
        version) depends only on the fitted model.
        """
        if self.scorer is None:
            raise RuntimeError(f"{self.name}: nothing to save before fit")
        return dict(self.scorer.arrays)

    @classmethod
    def from_arrays(cls, name: str, arrays: dict[str, np.ndarray], n_features: int, *, seed: int = 0,
                    contamination: float = 0.01, max_fit_rows: int | None = None,
                    params: dict[str, Any] | None = None, fit_rows: int = 0) -> DetectorAdapter:
        """A fitted adapter from an artifact's arrays; :class:`~pipeline.anomaly.arrays.ArtifactError`
        when they do not describe a valid ``name`` detector over ``n_features`` features."""
        adapter = cls(name, seed=seed, contamination=contamination, max_fit_rows=max_fit_rows, params=params)
        if name == "iforest":
            adapter.scorer = ForestScorer(arrays, n_features)
        elif name == "hbos":
            adapter.scorer = HistogramScorer(arrays, n_features)
        elif name in _ECDF:
            adapter.scorer = EcdfScorer(name, arrays, n_features)
        else:
            adapter.scorer = LofScorer(arrays, n_features, adapter.contamination, adapter.params)
            adapter.estimator = adapter.scorer.estimator
        adapter.fit_rows = fit_rows
        return adapter
