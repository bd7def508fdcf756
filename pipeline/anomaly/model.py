"""One small model API shared by every detector (river-style): fit, score a batch, explain, classify.

``AnomalyModel`` = feature transform + one detector adapter + calibration table + the training
distribution it needs to explain and to watch for drift. Scores are computed for a whole matrix in
one detector call (:meth:`AnomalyModel.score_batch`); the decision (:meth:`classify`) is separate
from the score and uses the configured ``threshold`` on the calibrated 0-100 scale.

Explanations are model-agnostic on purpose: for each row, the features furthest from the training
distribution, measured as the robust z-score ``(log1p?(x) - median) / IQR`` of the transform (see
:mod:`pipeline.anomaly.transform`), plus the quantile of the raw value among training rows. That is
what an analyst can act on ("usd_out is 6.2 IQRs above a typical address, above 99.9 % of
training rows") and it costs two vectorised numpy passes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from pipeline.anomaly.calibration import FEATURE_LEVELS, SCORE_LEVELS, QuantileTable, calibrate
from pipeline.anomaly.detectors import DetectorAdapter
from pipeline.anomaly.drift import DriftReference
from pipeline.anomaly.transform import FeatureTransform
from pipeline.records import FEATURE_NAMES

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeatureContribution:
    """How far one feature of one row is from the training distribution."""

    name: str
    value: float         # the raw feature value
    train_median: float  # the raw training median
    z: float             # robust z in the transformed space: (t(x) - median) / scale
    quantile: float      # share of training rows with a value <= x (0..1, mid-rank on ties)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "train_median": self.train_median,
                "z": round(self.z, 3), "quantile": round(self.quantile, 5)}


@dataclass(frozen=True, slots=True)
class TrainingInfo:
    """Where the training rows came from; goes into the model card."""

    rows: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    first_block: int | None = None
    last_block: int | None = None
    source: str = ""


class Scorable(Protocol):
    """What :class:`pipeline.anomaly.scorer.AnomalyScorer` needs from a model or an ensemble."""

    name: str
    threshold: float
    feature_names: tuple[str, ...]

    @property
    def version(self) -> str: ...
    def score_batch(self, X: np.ndarray) -> np.ndarray: ...
    def calibrate(self, raw: np.ndarray) -> np.ndarray: ...
    def explain(self, X: np.ndarray, top_k: int = 3) -> list[list[FeatureContribution]]: ...


class AnomalyModel:
    """A fitted (or to-be-fitted) detector with calibration and explanations.

    >>> import numpy as np
    >>> X = np.random.default_rng(0).lognormal(size=(300, len(FEATURE_NAMES)))
    >>> m = AnomalyModel("iforest", seed=1).fit(X)
    >>> s = m.calibrate(m.score_batch(X[:5]))
    >>> bool(((0 <= s) & (s <= 100)).all())
    True
    """

    def __init__(self, detector: str = "iforest", *, name: str | None = None, seed: int = 0,
                 contamination: float = 0.01, threshold: float = 99.0,
                 feature_names: Sequence[str] = FEATURE_NAMES, max_fit_rows: int | None = -1,
                 params: dict[str, Any] | None = None) -> None:
        if not 0.0 <= threshold <= 100.0:
            raise ValueError(f"threshold is on the calibrated 0-100 scale, got {threshold}")
        self.adapter = DetectorAdapter(detector, seed=seed, contamination=contamination,
                                       max_fit_rows=max_fit_rows, params=params)
        self.detector = detector
        self.name = name or detector
        self.seed = int(seed)
        self.contamination = float(contamination)
        self.threshold = float(threshold)
        self.feature_names: tuple[str, ...] = tuple(feature_names)
        self.transform = FeatureTransform(self.feature_names)
        self.calibration: QuantileTable | None = None
        self.feature_tables: list[QuantileTable] = []
        self.train_medians = np.zeros(len(self.feature_names))
        self.drift: DriftReference | None = None
        self.info = TrainingInfo()
        self._version: str | None = None  # set by pipeline.anomaly.persistence (content-derived)

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X: np.ndarray, *, info: TrainingInfo | None = None) -> AnomalyModel:
        """Fit transform, detector, calibration and training statistics on raw feature rows."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names) or len(X) < 10:
            raise ValueError(f"need at least 10 rows of {len(self.feature_names)} features, got {X.shape}")
        Z = self.transform.fit(X).transform(X)
        self.adapter.fit(Z)
        if not np.isfinite(self.adapter.train_scores).all():
            raise ValueError(f"{self.detector}: non-finite training scores; cannot calibrate")
        self.calibration = QuantileTable.from_sample(self.adapter.train_scores, SCORE_LEVELS)
        self.feature_tables = [QuantileTable.from_sample(X[:, j], FEATURE_LEVELS)
                               for j in range(X.shape[1])]
        self.train_medians = np.median(X, axis=0)
        self.drift = DriftReference.from_training(self.feature_names, X)
        self.info = info if info is not None else TrainingInfo(rows=len(X))
        self._version = None
        return self

    @property
    def fitted(self) -> bool:
        return self.calibration is not None

    @property
    def version(self) -> str:
        """Content-derived version id; computed (and cached) from the artifact and card."""
        if self._version is None:
            from pipeline.anomaly.persistence import fingerprint

            self._version = fingerprint(self)[0]
        return self._version

    # -- scoring ---------------------------------------------------------------------------
    def score_batch(self, X: np.ndarray) -> np.ndarray:
        """Raw scores (higher = more anomalous) for every row, in one detector call."""
        X = np.asarray(X, dtype=np.float64)
        if X.size == 0:
            return np.empty(0, dtype=np.float64)
        return self.adapter.decision(self.transform.transform(X))

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Raw scores -> 0..100 against the training score distribution (monotonic)."""
        if self.calibration is None:
            raise RuntimeError(f"{self.name}: calibrate before fit")
        return calibrate(self.calibration, raw)

    def score(self, X: np.ndarray) -> np.ndarray:
        """Calibrated 0..100 scores; a convenience over ``calibrate(score_batch(X))``."""
        return self.calibrate(self.score_batch(X))

    def classify(self, scores: np.ndarray) -> np.ndarray:
        """The decision, separate from the score: calibrated score >= ``threshold``."""
        return np.asarray(scores) >= self.threshold

    def explain(self, X: np.ndarray, top_k: int = 3) -> list[list[FeatureContribution]]:
        """For each row, the ``top_k`` features with the largest |robust z| (ties: feature order)."""
        X = np.asarray(X, dtype=np.float64)
        Z = self.transform.transform(X)
        order = np.argsort(-np.abs(Z), axis=1, kind="stable")[:, :top_k]
        quant = np.column_stack([t(X[:, j]) for j, t in enumerate(self.feature_tables)])
        names, med = self.feature_names, self.train_medians
        return [[FeatureContribution(names[j], float(X[i, j]), float(med[j]), float(Z[i, j]),
                                     float(quant[i, j])) for j in row]
                for i, row in enumerate(order.tolist())]


class Ensemble:
    """Mean of the members' calibrated scores; behaves as one model named ``ensemble``.

    Its "raw" score already is on the 0-100 scale (a mean of percentiles), so ``calibrate`` only
    clips. Explanations come from the first member (members share the training data).
    """

    def __init__(self, members: Sequence[AnomalyModel], *, name: str = "ensemble",
                 threshold: float | None = None) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        names = {m.feature_names for m in members}
        if len(names) != 1:
            raise ValueError("ensemble members were trained on different feature lists")
        self.members = list(members)
        self.name = name
        self.detector = "ensemble"
        self.feature_names = members[0].feature_names
        self.threshold = float(threshold if threshold is not None else members[0].threshold)

    @property
    def drift(self) -> DriftReference | None:
        """Training bins of the first member (members share the training data)."""
        return self.members[0].drift

    @property
    def version(self) -> str:
        joined = "+".join(f"{m.name}:{m.version}" for m in self.members)
        return hashlib.blake2b(joined.encode(), digest_size=6).hexdigest()

    def score_batch(self, X: np.ndarray) -> np.ndarray:
        return np.mean([m.score(X) for m in self.members], axis=0)

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(raw, dtype=np.float64), 0.0, 100.0)

    def score(self, X: np.ndarray) -> np.ndarray:
        return self.calibrate(self.score_batch(X))

    def classify(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores) >= self.threshold

    def explain(self, X: np.ndarray, top_k: int = 3) -> list[list[FeatureContribution]]:
        return self.members[0].explain(X, top_k)
