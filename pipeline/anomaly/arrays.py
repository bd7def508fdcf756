"""Fitted detectors as plain numeric arrays: what a model artifact holds, and all it can hold.

Why: a pickled detector (``joblib.load``) runs whatever code the file names while it loads, before
any check can look at it, and the version in ``card.json`` is no defence because whoever can
replace the artifact can recompute the card. So an artifact is a zip of ``.npy`` arrays (the
``np.savez`` layout, stored uncompressed with fixed timestamps, so the same model gives the same
bytes and the same version), and :func:`read_arrays` accepts only numeric dtypes (no object
arrays: no pickle anywhere), checks every declared size against the bytes really there before
allocating, and hands the arrays to scorers that validate them before use:

* **IsolationForest** (:class:`ForestScorer`): scikit-learn's own ``Tree`` objects rebuilt from the
  node arrays, after checking that every child index points forward inside its tree and every
  split names a real feature (``Tree.apply`` does not bounds-check, so a crafted index would read
  outside the node table), plus each node's path length; the score is sklearn's
  ``-score_samples``: ``2 ** (-sum of path lengths / (n_trees * c(max_samples)))``, summed in tree
  order as sklearn does, so the scores are identical;
* **HBOS** (:class:`HistogramScorer`): bin edges and densities per feature, scored with pyod's
  formula (``_calculate_outlier_scores``), vectorised;
* **ECOD / COPOD** (:class:`EcdfScorer`): the sorted training columns and the sign of each
  column's skewness (they were already scored that way, see :mod:`pipeline.anomaly.detectors`);
* **LOF** (:class:`LofScorer`): the (subsampled) reference rows, refitted at load: LOF has no
  randomness, so the refit is the same model.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

MAX_ARRAYS = 64  # members of one artifact; ours have at most 13
_KINDS = frozenset("biuf")  # bool, signed, unsigned, float: nothing that can hold an object
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: content-derived versions stay stable


class ArtifactError(ValueError):
    """The artifact is not a well-formed set of numeric arrays of the expected shapes."""


# -- the container -----------------------------------------------------------------------------
def write_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    """A deterministic ``.npz`` (zip of ``.npy``, stored) of numeric arrays."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            a = np.asarray(arrays[name], order="C")
            if a.dtype.kind not in _KINDS or a.dtype.fields is not None:
                raise ArtifactError(f"array {name!r}: dtype {a.dtype} is not numeric")
            member = io.BytesIO()
            np.lib.format.write_array(member, a, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def read_arrays(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of an artifact written by :func:`write_arrays` (or ``np.savez``), checked first.

    Raises :class:`ArtifactError` for anything else: not a zip, compressed or oddly named members,
    a dtype that is not plain numeric (an object array would be a pickle), a header declaring more
    data than the member holds.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ARRAYS:
                raise ArtifactError(f"{len(infos)} members; at most {MAX_ARRAYS}")
            return {info.filename[:-4]: _read_member(zf, info, len(data)) for info in infos}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as err:
        if isinstance(err, ArtifactError):
            raise
        raise ArtifactError(f"not an array archive ({type(err).__name__}: {str(err)[:100]})") from None


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, archive_size: int) -> np.ndarray:
    name = info.filename
    if not name.endswith(".npy") or "/" in name or "\\" in name or len(name) > 68:
        raise ArtifactError(f"unexpected member {name[:68]!r}")
    if info.compress_type != zipfile.ZIP_STORED or info.file_size > archive_size:
        raise ArtifactError(f"{name}: members must be stored uncompressed")
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=4096)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=4096)
        else:
            raise ArtifactError(f"{name}: .npy format {version} not supported")
        if dtype.kind not in _KINDS or dtype.fields is not None or dtype.hasobject:
            raise ArtifactError(f"{name}: dtype {str(dtype)[:40]} is not plain numeric")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > info.file_size:
            raise ArtifactError(f"{name}: header declares {nbytes} bytes, the member holds {info.file_size}")
        raw = f.read(nbytes)
    if len(raw) != nbytes:
        raise ArtifactError(f"{name}: truncated")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def _get(arrays: Mapping[str, np.ndarray], name: str, ndim: int, kind: str = "f") -> np.ndarray:
    if name not in arrays:
        raise ArtifactError(f"array {name!r} is missing")
    a = np.asarray(arrays[name])
    if a.ndim != ndim or a.dtype.kind not in kind:
        raise ArtifactError(f"array {name!r}: expected {ndim}-d {kind}, got {a.ndim}-d {a.dtype}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ArtifactError(f"array {name!r}: non-finite values")
    return np.array(a, dtype=np.float64 if kind == "f" else np.int64, order="C")


def _scalar(arrays: Mapping[str, np.ndarray], name: str) -> float:
    return float(_get(arrays, name, 0))


# -- IsolationForest ---------------------------------------------------------------------------
class ForestScorer:
    """sklearn IsolationForest scoring from node arrays: ``-score_samples``, exactly."""

    _NODE_ARRAYS = ("left", "right", "feature", "threshold", "missing_left", "path")

    def __init__(self, arrays: Mapping[str, np.ndarray], n_features: int) -> None:
        from sklearn.tree._tree import NODE_DTYPE, Tree

        left, right, feature = (_get(arrays, k, 1, "iu") for k in ("left", "right", "feature"))
        threshold, path = _get(arrays, "threshold", 1), _get(arrays, "path", 1)
        missing_left = _get(arrays, "missing_left", 1, "biu")
        offsets = _get(arrays, "offsets", 1, "iu")
        self.denominator = _scalar(arrays, "denominator")
        n = len(left)
        if any(len(a) != n for a in (right, feature, threshold, path, missing_left)):
            raise ArtifactError("node arrays differ in length")
        if len(offsets) < 2 or offsets[0] != 0 or offsets[-1] != n or np.any(np.diff(offsets) < 1):
            raise ArtifactError("tree offsets do not partition the nodes")
        self.n_features = n_features
        self.arrays = {"left": left, "right": right, "feature": feature, "threshold": threshold,
                       "missing_left": missing_left.astype(np.uint8), "path": path, "offsets": offsets,
                       "denominator": np.float64(self.denominator)}
        self.trees: list[Any] = []
        self.paths: list[np.ndarray] = []
        for t, (lo, hi) in enumerate(zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)):
            m = hi - lo
            lc, rc, ft = left[lo:hi], right[lo:hi], feature[lo:hi]
            leaf = lc == -1
            idx = np.arange(m)
            if not np.array_equal(leaf, rc == -1) or (leaf[0] and m != 1):
                raise ArtifactError(f"tree {t}: inconsistent leaves")
            inner = ~leaf
            li, ri, at = lc[inner], rc[inner], idx[inner]
            if np.any((li <= at) | (li >= m) | (ri <= at) | (ri >= m)):
                raise ArtifactError(f"tree {t}: a child index points backwards or outside the tree")
            if np.any((ft[inner] < 0) | (ft[inner] >= n_features)):
                raise ArtifactError(f"tree {t}: a split names a feature that does not exist")
            nodes = np.zeros(m, dtype=NODE_DTYPE)
            nodes["left_child"], nodes["right_child"] = lc, rc
            nodes["feature"] = np.where(leaf, -2, ft)
            nodes["threshold"] = np.where(leaf, -2.0, threshold[lo:hi])
            nodes["missing_go_to_left"] = missing_left[lo:hi]
            tree = Tree(n_features, np.array([1], dtype=np.intp), 1)
            tree.__setstate__({"max_depth": _depth(lc, rc), "node_count": m, "nodes": nodes,
                               "values": np.zeros((m, 1, 1))})
            self.trees.append(tree)
            self.paths.append(path[lo:hi])

    @classmethod
    def from_estimator(cls, est: Any) -> ForestScorer:
        """From a fitted ``sklearn.ensemble.IsolationForest`` (its private per-tree path tables)."""
        from sklearn.ensemble._iforest import _average_path_length

        lefts, rights, feats, thrs, miss, paths, offsets = [], [], [], [], [], [], [0]
        per_tree = zip(est.estimators_, est.estimators_features_, est._decision_path_lengths,
                       est._average_path_length_per_tree, strict=True)
        for tree, features, depth, avg in per_tree:
            t = tree.tree_
            subset = est._max_features != est.n_features_in_
            lefts.append(t.children_left)
            rights.append(t.children_right)
            mapped = np.asarray(features)[t.feature] if subset else t.feature  # into the full feature list
            feats.append(np.where(t.children_left == -1, 0, mapped))
            thrs.append(t.threshold)
            miss.append(t.missing_go_to_left)
            paths.append(depth + avg - 1.0)  # what sklearn adds per sample reaching this leaf
            offsets.append(offsets[-1] + t.node_count)
        denominator = len(est.estimators_) * _average_path_length([est._max_samples])[0]
        arrays = {"left": np.concatenate(lefts), "right": np.concatenate(rights),
                  "feature": np.concatenate(feats), "threshold": np.concatenate(thrs),
                  "missing_left": np.concatenate(miss),
                  "path": np.concatenate(paths), "offsets": np.asarray(offsets, dtype=np.int64),
                  "denominator": np.float64(denominator)}
        return cls(arrays, est.n_features_in_)

    def score(self, Z: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(Z, dtype=np.float32)  # sklearn compares float32 inputs
        depths = np.zeros(len(X))
        for tree, path in zip(self.trees, self.paths, strict=True):
            depths += path[tree.apply(X)]
        if self.denominator == 0:
            return np.ones(len(X))
        return 2 ** (-depths / self.denominator)


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """Depth of a tree whose children always follow their parent (checked by the caller)."""
    depth = np.zeros(len(left), dtype=np.int64)
    for i in np.flatnonzero(left != -1).tolist():  # parents before children
        depth[left[i]] = depth[right[i]] = depth[i] + 1
    return int(depth.max())


# -- HBOS --------------------------------------------------------------------------------------
class HistogramScorer:
    """pyod HBOS ``decision_function`` from per-feature bin edges and densities."""

    def __init__(self, arrays: Mapping[str, np.ndarray], n_features: int) -> None:
        edges, dens = _get(arrays, "edges", 1), _get(arrays, "density", 1)
        offsets = _get(arrays, "bin_offsets", 1, "iu")
        self.alpha, self.tol = _scalar(arrays, "alpha"), _scalar(arrays, "tol")
        if len(offsets) != n_features + 1 or offsets[0] != 0 or offsets[-1] != len(dens) \
                or np.any(np.diff(offsets) < 1) or len(edges) != len(dens) + n_features:
            raise ArtifactError("histogram offsets do not match the feature count")
        if np.any(dens < 0) or not (0 < self.alpha < 1 and 0 < self.tol < 1):
            raise ArtifactError("histogram densities must be >= 0, alpha and tol in (0, 1)")
        self.columns: list[tuple[np.ndarray, np.ndarray]] = []
        for i in range(n_features):
            d = dens[offsets[i]:offsets[i + 1]]
            e = edges[offsets[i] + i:offsets[i + 1] + i + 1]
            if np.any(np.diff(e) < 0):
                raise ArtifactError(f"feature {i}: bin edges are not sorted")
            self.columns.append((e, np.log2(d + self.alpha)))
        self.arrays = {"edges": edges, "density": dens, "bin_offsets": offsets,
                       "alpha": np.float64(self.alpha), "tol": np.float64(self.tol)}

    @classmethod
    def from_estimator(cls, est: Any) -> HistogramScorer:
        """From a fitted pyod HBOS (static or ``"auto"`` bins)."""
        hists = list(est.hist_.T) if isinstance(est.hist_, np.ndarray) else list(est.hist_)
        edges = list(est.bin_edges_.T) if isinstance(est.bin_edges_, np.ndarray) else list(est.bin_edges_)
        offsets = np.concatenate([[0], np.cumsum([len(h) for h in hists])]).astype(np.int64)
        arrays = {"edges": np.concatenate(edges), "density": np.concatenate(hists), "bin_offsets": offsets,
                  "alpha": np.float64(est.alpha), "tol": np.float64(est.tol)}
        return cls(arrays, len(hists))

    def score(self, Z: np.ndarray) -> np.ndarray:
        Z = np.asarray(Z, dtype=np.float64)
        out = np.empty(Z.shape)
        for i, (e, logd) in enumerate(self.columns):
            x = Z[:, i]
            nb = len(logd)
            inds = np.digitize(x, e, right=True)
            col = logd[np.clip(inds - 1, 0, nb - 1)]
            low, high = inds == 0, inds == nb + 1
            floor = logd.min()
            col[low] = np.where(e[0] - x[low] <= (e[1] - e[0]) * self.tol, logd[0], floor)
            col[high] = np.where(x[high] - e[-1] <= (e[-1] - e[-2]) * self.tol, logd[nb - 1], floor)
            out[:, i] = col
        return np.sum(out, axis=1) * -1


# -- ECOD / COPOD ------------------------------------------------------------------------------
class EcdfScorer:
    """ECOD/COPOD scores of new rows against the sorted training columns (batch-independent)."""

    def __init__(self, name: str, arrays: Mapping[str, np.ndarray], n_features: int) -> None:
        self.name = name
        self.sorted = _get(arrays, "sorted", 2)
        self.skew_sign = _get(arrays, "skew_sign", 1)
        if self.sorted.shape[1] != n_features or self.skew_sign.shape != (n_features,) \
                or len(self.sorted) < 2:
            raise ArtifactError("ECDF columns do not match the feature count")
        if np.any(np.diff(self.sorted, axis=0) < 0) or not np.isin(self.skew_sign, (-1.0, 0.0, 1.0)).all():
            raise ArtifactError("ECDF columns must be sorted and skew signs -1, 0 or 1")
        self.arrays = {"sorted": self.sorted, "skew_sign": self.skew_sign}

    def score(self, Z: np.ndarray, in_reference: bool = False) -> np.ndarray:
        return ecdf_scores(self.name, self.sorted, self.skew_sign, Z, in_reference)


def ecdf_scores(name: str, sorted_cols: np.ndarray, skew_sign: np.ndarray, Z: np.ndarray,
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


# -- LOF ---------------------------------------------------------------------------------------
class LofScorer:
    """pyod LOF (novelty) refitted on the stored reference rows: deterministic, so the same model."""

    def __init__(self, arrays: Mapping[str, np.ndarray], n_features: int, contamination: float,
                 params: Mapping[str, Any], estimator: Any = None) -> None:
        self.reference = _get(arrays, "reference", 2)
        if self.reference.shape[1] != n_features or len(self.reference) < 3:
            raise ArtifactError("LOF reference rows do not match the feature count")
        if estimator is None:
            from pyod.models.lof import LOF

            estimator = LOF(contamination=contamination, novelty=True, **dict(params)).fit(self.reference)
        self.estimator = estimator
        self.arrays = {"reference": self.reference}

    def score(self, Z: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator.decision_function(Z), dtype=np.float64)
