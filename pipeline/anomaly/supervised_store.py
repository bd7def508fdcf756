"""Save and load a :class:`~pipeline.anomaly.supervised.SupervisedModel` as data that cannot run code.

Why not pickle/joblib: loading a pickle runs whatever code it names, so a model directory would be
as trusted as the program. Here a model is ``model.npz`` (plain numeric and string arrays, read
with ``allow_pickle=False``) plus ``card.json`` (what it is, how it was trained, validation figures).

The version is a content hash of every array (name, dtype, shape, bytes) -- not of the zip file,
whose member timestamps change on every save. The card records it; loading recomputes it and
refuses a model whose arrays do not match their card, whose node arrays are not a well-formed
forest, or whose feature list is not this pipeline's.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.anomaly.supervised import Forest, SupervisedModel
from pipeline.errors import ModelError
from pipeline.records import FEATURE_NAMES

ARTIFACT = "model.npz"
CARD = "card.json"
FORMAT = "tronrisk-gbm-1"


def _arrays(model: SupervisedModel) -> dict[str, np.ndarray]:
    if model.forest is None:
        raise ValueError("cannot save an unfitted model")
    return model.forest.arrays() | {
        "iso_x": model.iso_x, "iso_y": model.iso_y, "alert_threshold": np.array([model.threshold]),
        "train_medians": model.train_medians, "feature_names": np.array(model.feature_names, dtype=str),
        "seed": np.array([model.seed], dtype=np.int64)}


def content_version(arrays: dict[str, np.ndarray]) -> str:
    """blake2b-128 over the sorted arrays' names, dtypes, shapes and bytes."""
    h = hashlib.blake2b(FORMAT.encode(), digest_size=16)
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save(model: SupervisedModel, out: str | Path, card_extra: dict[str, Any] | None = None) -> Path:
    """Write ``model.npz`` and ``card.json`` under ``out`` (created); sets ``model.version``."""
    import sklearn

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays = _arrays(model)
    model.version = content_version(arrays)
    tmp = out / (ARTIFACT + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    tmp.replace(out / ARTIFACT)
    card = {"name": model.name, "format": FORMAT, "version": model.version, "detector": model.detector,
            "seed": model.seed, "params": model.params, "threshold": model.threshold,
            "features": list(model.feature_names), "training": model.fit_info,
            "libraries": {"scikit-learn": sklearn.__version__, "numpy": np.__version__}}
    card.update(card_extra or {})
    write_card(out, card)
    return out


def write_card(out: Path, card: dict[str, Any]) -> None:
    (out / CARD).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")


def read_card(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    p = p / CARD if p.is_dir() else p
    try:
        card = json.loads(p.read_text())
    except (OSError, ValueError) as err:
        raise ModelError(f"{p}: cannot read the model card: {err}") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise ModelError(f"{p}: not a supervised model card (format {FORMAT!r} expected)")
    return card


def load(path: str | Path) -> SupervisedModel:
    """The model in directory ``path`` (or the directory of a card path); ``ModelError`` if refused."""
    p = Path(path)
    d = p if p.is_dir() else p.parent
    card = read_card(d)
    try:
        with np.load(d / ARTIFACT, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError) as err:
        raise ModelError(f"{d / ARTIFACT}: cannot read model arrays ({err})") from None
    version = content_version(arrays)
    if version != card.get("version"):
        raise ModelError(f"{d / ARTIFACT}: content hash {version} does not match the card's version "
                         f"{card.get('version')}; the artifact was altered or belongs to another card")
    names = tuple(str(n) for n in arrays.get("feature_names", []))
    if names != FEATURE_NAMES:
        raise ModelError(f"{d}: model was trained on another feature list than this pipeline's "
                         "FEATURE_NAMES; retrain it")
    try:
        forest = Forest(*(arrays[f] for f in Forest.FIELDS), baseline=float(arrays["baseline"][0]))
        forest.check(len(names))
        model = SupervisedModel(seed=int(arrays["seed"][0]), params=card.get("params") or {})
        model.forest = forest
        model.iso_x, model.iso_y = arrays["iso_x"].astype(np.float64), arrays["iso_y"].astype(np.float64)
        model.threshold = float(arrays["alert_threshold"][0])
        model.train_medians = arrays["train_medians"].astype(np.float64)
    except (KeyError, IndexError, ValueError, TypeError) as err:
        raise ModelError(f"{d / ARTIFACT}: not a well-formed model ({err})") from None
    if (len(model.iso_x) == 0 or len(model.iso_x) != len(model.iso_y)
            or len(model.train_medians) != len(names)):
        raise ModelError(f"{d / ARTIFACT}: calibration or medians have the wrong shape")
    if not 0.0 <= model.threshold <= 1.0:
        raise ModelError(f"{d / ARTIFACT}: threshold {model.threshold} is not a probability")
    model.fit_info = card.get("training", {})
    model.version = version
    return model
