"""A supervised scorer beside the unsupervised detectors: gradient-boosted trees on labelled rows.

Why: IsolationForest/HBOS/ECOD say "unusual", which a busy exchange wallet is every hour. Where
labels exist (the simulated suite's ``labels.csv``, or a deployment's own analyst dispositions) a
classifier learns what *laundering* looks like in the same feature vectors (``FEATURE_NAMES``).

- Fitting: scikit-learn ``HistGradientBoostingClassifier`` (seeded, no early stopping, so the same
  rows and seed give the same trees) on the rows of ~75 % of the addresses; the other addresses'
  rows are held out (split by address, so one busy address cannot sit on both sides) to fit an
  isotonic calibration of the probability and to choose the alert threshold (best F1 there).
- Scoring needs no scikit-learn object: the fitted trees are flattened into plain arrays
  (:class:`Forest`) evaluated with numpy, so an artifact is data only -- ``np.savez`` / ``np.load(
  allow_pickle=False)`` in :mod:`pipeline.anomaly.supervised_store`, never pickle.
- Explanations: per row, the drop in calibrated probability when one feature is replaced by its
  training median; the top 3 positive contributions name what drove the score.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.records import FEATURE_NAMES

DEFAULT_PARAMS: dict[str, Any] = {"max_iter": 150, "learning_rate": 0.1, "max_leaf_nodes": 31,
                                  "min_samples_leaf": 40, "l2_regularization": 1.0}
HOLDOUT_SHARE = 0.25  # share of addresses held out for calibration and the threshold


@dataclass(frozen=True, slots=True)
class Contribution:
    """How much one feature raised one row's probability (``delta``) against its training median."""

    name: str
    value: float
    train_median: float
    delta: float  # p(row) - p(row with this feature at the training median)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "train_median": self.train_median,
                "delta": round(self.delta, 4)}


class Forest:
    """Boosted trees as flat arrays; ``raw(X)`` is the log-odds, as sklearn's ``_raw_predict``.

    Node ``i``: leaf when ``is_leaf[i]`` (its ``value`` is added), else go to ``left[i]`` when
    ``X[:, feature[i]] <= threshold[i]`` (or the value is NaN and ``missing_left[i]``), otherwise
    ``right[i]``. ``roots`` are each tree's first node. Children always have larger indices than
    their parent (checked on load), so evaluation always ends.
    """

    FIELDS = ("feature", "threshold", "left", "right", "is_leaf", "value", "missing_left", "roots")

    def __init__(self, feature: np.ndarray, threshold: np.ndarray, left: np.ndarray, right: np.ndarray,
                 is_leaf: np.ndarray, value: np.ndarray, missing_left: np.ndarray, roots: np.ndarray,
                 baseline: float) -> None:
        self.feature = np.asarray(feature, dtype=np.int64)
        self.threshold = np.asarray(threshold, dtype=np.float64)
        self.left = np.asarray(left, dtype=np.int64)
        self.right = np.asarray(right, dtype=np.int64)
        self.is_leaf = np.asarray(is_leaf, dtype=bool)
        self.value = np.asarray(value, dtype=np.float64)
        self.missing_left = np.asarray(missing_left, dtype=bool)
        self.roots = np.asarray(roots, dtype=np.int64)
        self.baseline = float(baseline)

    @classmethod
    def from_sklearn(cls, est: Any) -> Forest:
        """Flatten a fitted binary ``HistGradientBoostingClassifier`` (numeric features only)."""
        parts, roots, offset = [], [], 0
        for (pred,) in est._predictors:
            nodes = pred.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported")
            roots.append(offset)
            parts.append((nodes["feature_idx"], nodes["num_threshold"],
                          nodes["left"].astype(np.int64) + offset, nodes["right"].astype(np.int64) + offset,
                          nodes["is_leaf"], nodes["value"], nodes["missing_go_to_left"]))
            offset += len(nodes)
        cols = [np.concatenate([p[k] for p in parts]) for k in range(7)]
        return cls(*cols, np.array(roots), baseline=float(np.ravel(est._baseline_prediction)[0]))

    def check(self, n_features: int) -> None:
        """Refuse arrays that could not come from a fitted forest (index out of range, loops)."""
        n = len(self.feature)
        if not all(len(getattr(self, f)) == n for f in self.FIELDS[:-1]) or n == 0:
            raise ValueError("node arrays differ in length or are empty")
        inner = ~self.is_leaf
        idx = np.arange(n)
        if ((self.feature[inner] < 0) | (self.feature[inner] >= n_features)).any():
            raise ValueError("a split names a feature outside the feature list")
        for child in (self.left, self.right):
            if ((child[inner] <= idx[inner]) | (child[inner] >= n)).any():
                raise ValueError("a split points backwards or outside the node arrays")
        if len(self.roots) == 0 or ((self.roots < 0) | (self.roots >= n)).any():
            raise ValueError("tree roots outside the node arrays")
        if not (np.isfinite(self.value).all() and np.isfinite(self.baseline)):
            raise ValueError("non-finite leaf values")

    def raw(self, X: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """Log-odds for every row: baseline + one leaf value per tree.

        All trees descend together, one level per step, on a (rows x trees) matrix of node indices,
        so the numpy calls number about the trees' depth, not trees x depth (rows in chunks to
        bound memory). Leaves are summed in tree order, as scikit-learn does.
        """
        X = np.asarray(X, dtype=np.float64)
        out = np.empty(len(X))
        for start in range(0, len(X), chunk):
            Xc = X[start:start + chunk]
            node = np.tile(self.roots, (len(Xc), 1))
            row = np.repeat(np.arange(len(Xc)), len(self.roots)).reshape(node.shape)
            active = ~self.is_leaf[node]
            while active.any():
                a = node[active]
                x = Xc[row[active], self.feature[a]]
                go_left = np.where(np.isnan(x), self.missing_left[a], x <= self.threshold[a])
                node[active] = np.where(go_left, self.left[a], self.right[a])
                active[active] = ~self.is_leaf[node[active]]
            leaves = self.value[node]
            acc = np.full(len(Xc), self.baseline)
            for t in range(leaves.shape[1]):
                acc += leaves[:, t]
            out[start:start + chunk] = acc
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {f: getattr(self, f) for f in self.FIELDS} | {"baseline": np.array([self.baseline])}


class SupervisedModel:
    """Fit on labelled feature rows; score batches as calibrated probabilities; explain; decide.

    >>> rng = np.random.default_rng(0)
    >>> X = rng.lognormal(size=(2000, len(FEATURE_NAMES)))
    >>> y = (X[:, 2] > 3).astype(int)
    >>> m = SupervisedModel(seed=1).fit(X, y, groups=np.arange(2000))
    >>> bool((m.score_batch(X[y == 1]).mean() > m.score_batch(X[y == 0]).mean()))
    True
    """

    name = "gbm"
    detector = "hist_gradient_boosting"

    def __init__(self, *, seed: int = 0, params: dict[str, Any] | None = None,
                 feature_names: tuple[str, ...] = FEATURE_NAMES, n_threads: int = 1) -> None:
        self.seed = int(seed)
        self.n_threads = int(n_threads)
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        self.feature_names = tuple(feature_names)
        self.forest: Forest | None = None
        self.iso_x = np.empty(0)  # isotonic calibration: raw probability -> calibrated, piecewise linear
        self.iso_y = np.empty(0)
        self.threshold = 0.5
        self.train_medians = np.zeros(len(self.feature_names))
        self.fit_info: dict[str, Any] = {}
        self.version = ""  # content hash, set by the store on save and load

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None,
            threshold: float | None = None) -> SupervisedModel:
        """Fit trees on ~75 % of the groups (addresses), calibrate and pick the threshold on the rest."""
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.isotonic import IsotonicRegression

        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y).astype(np.int64)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names) or len(X) != len(y):
            raise ValueError(f"need rows of {len(self.feature_names)} features and one label each, "
                             f"got X {X.shape}, y {y.shape}")
        if set(np.unique(y).tolist()) != {0, 1}:
            raise ValueError("labels must contain both 0 and 1")
        groups = np.arange(len(X)) if groups is None else np.asarray(groups)
        held = _holdout_mask(groups, self.seed)
        if y[held].min() == y[held].max() or y[~held].min() == y[~held].max():
            raise ValueError("too few labelled groups to hold some out for calibration")
        from threadpoolctl import threadpool_limits

        est = HistGradientBoostingClassifier(random_state=self.seed, early_stopping=False, **self.params)
        # OpenMP threads spin while they wait: on a shared, busy machine a 3,000-row fit took 15 s
        # with the default thread count and 0.05 s with one. One thread unless asked otherwise.
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            est.fit(X[~held], y[~held])
        self.forest = Forest.from_sklearn(est)
        raw_p = _sigmoid(self.forest.raw(X[held]))
        if not np.allclose(raw_p, est.predict_proba(X[held])[:, 1], atol=1e-9):
            raise AssertionError("flattened trees disagree with scikit-learn")  # a bug here, never input
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw_p, y[held])
        self.iso_x = np.asarray(iso.X_thresholds_, dtype=np.float64)
        self.iso_y = np.asarray(iso.y_thresholds_, dtype=np.float64)
        p = self.calibrate(raw_p)
        self.threshold = float(threshold) if threshold is not None else best_f1_threshold(p, y[held])
        self.train_medians = np.median(X[~held], axis=0)
        self.fit_info = {"rows": int(len(X)), "positives": int(y.sum()), "fit_rows": int((~held).sum()),
                         "holdout_rows": int(held.sum()), "holdout_groups_share": HOLDOUT_SHARE,
                         "trees": int(len(self.forest.roots))}
        return self

    # -- scoring ---------------------------------------------------------------------------
    def calibrate(self, raw_p: np.ndarray) -> np.ndarray:
        """Uncalibrated probability -> isotonic-calibrated probability (monotonic, 0..1)."""
        return np.interp(raw_p, self.iso_x, self.iso_y)

    def score_batch(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probability that each row belongs to a labelled (laundering) address."""
        if self.forest is None:
            raise ValueError("model is not fitted")
        X = np.asarray(X, dtype=np.float64)
        if X.size == 0:
            return np.empty(0)
        return self.calibrate(_sigmoid(self.forest.raw(X)))

    def explain(self, X: np.ndarray, top_k: int = 3) -> list[list[Contribution]]:
        """Per row, the ``top_k`` features whose replacement by the training median lowers the
        probability most (only features that raise it; fewer when fewer do)."""
        X = np.asarray(X, dtype=np.float64)
        n, d = X.shape
        if n == 0:
            return []
        base = self.score_batch(X)
        probes = np.repeat(X, d, axis=0)  # row i, feature j -> probes[i * d + j]
        j = np.tile(np.arange(d), n)
        probes[np.arange(n * d), j] = self.train_medians[j]
        delta = base[:, None] - self.score_batch(probes).reshape(n, d)
        out = []
        for i in range(n):
            order = np.argsort(-delta[i], kind="stable")[:top_k]
            out.append([Contribution(self.feature_names[k], float(X[i, k]), float(self.train_medians[k]),
                                     float(delta[i, k])) for k in order.tolist() if delta[i, k] > 0])
        return out


def best_f1_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """The probability cut with the best F1 on held-out rows (the lowest such cut on ties)."""
    cuts = np.unique(p)
    best, best_f1 = 0.5, -1.0
    pos = max(int(y.sum()), 1)
    for c in cuts[cuts > 0]:
        hit = p >= c
        tp = int((hit & (y == 1)).sum())
        f1 = 2 * tp / (int(hit.sum()) + pos)
        if f1 > best_f1:
            best, best_f1 = float(c), f1
    return best


def _holdout_mask(groups: np.ndarray, seed: int) -> np.ndarray:
    """Rows whose group hashes into the held-out share (stable across runs and machines)."""
    keys = {g: hashlib.blake2b(f"{seed}\x1f{g}".encode(), digest_size=8).digest() for g in np.unique(groups)}
    held = {g for g, k in keys.items() if int.from_bytes(k, "big") / 2**64 < HOLDOUT_SHARE}
    return np.fromiter((g in held for g in groups), dtype=bool, count=len(groups))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))
