"""Save and load fitted models: a joblib artifact plus a human-readable JSON model card.

Layout: ``save(model, out_dir)`` writes ``out_dir/<name>-<version>/detector.joblib`` (the pickled
detector adapter, nothing else) and ``card.json`` (``versioned=False``: ``out_dir/<name>/``, the
stable path a configuration names, replaced on retraining; the version is in the card) (everything needed to transform, calibrate,
explain and watch drift, plus provenance). The version id is content-derived: the first 12 hex
digits of sha256(artifact bytes + canonical card JSON without ``version``/``created_at``), so the
same seed and data give the same version, and any change of either file is detected on load.

``load(path)`` validates *before* unpickling (a pickle from another library version can crash or,
worse, load and score differently) and turns every problem into one :class:`ModelError` that names
the file: missing file, unreadable or corrupt card/artifact, feature list different from the
running ``FEATURE_NAMES``, other Python/numpy/scikit-learn/pyod major.minor version. It ends with
a one-row smoke score so nothing fails later, mid-stream. Only load models you trust: joblib
artifacts are pickles.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from pipeline.anomaly.calibration import QuantileTable
from pipeline.anomaly.detectors import DetectorAdapter
from pipeline.anomaly.drift import DriftReference
from pipeline.anomaly.model import AnomalyModel, Ensemble, TrainingInfo
from pipeline.anomaly.transform import FeatureTransform
from pipeline.errors import ModelError
from pipeline.records import FEATURE_NAMES

log = logging.getLogger(__name__)

CARD_FORMAT = 1
ARTIFACT = "detector.joblib"
CARD = "card.json"
_UNHASHED = ("version", "created_at")


def library_versions() -> dict[str, str]:
    """Versions that decide whether a pickled detector behaves the same (recorded in the card)."""
    import pyod
    import sklearn

    return {"python": platform.python_version(), "numpy": np.__version__,
            "sklearn": sklearn.__version__, "pyod": pyod.__version__, "joblib": joblib.__version__}


def _canonical(card: dict[str, Any]) -> bytes:
    body = {k: v for k, v in card.items() if k not in _UNHASHED}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _version_of(artifact: bytes, card: dict[str, Any]) -> str:
    return hashlib.sha256(artifact + b"\0" + _canonical(card)).hexdigest()[:12]


def _build_card(model: AnomalyModel, artifact: bytes) -> dict[str, Any]:
    if not model.fitted or model.calibration is None or model.drift is None:
        raise ModelError(f"model {model.name!r} is not fitted; nothing to save")
    cal = model.calibration
    summary = {f"p{q:g}": round(cal.value_at(q / 100), 6) for q in (50, 90, 99, 99.9)}
    info = model.info
    return {
        "format": CARD_FORMAT,
        "name": model.name,
        "detector": model.detector,
        "version": "",
        "created_at": "",
        "seed": model.seed,
        "contamination": model.contamination,
        "threshold": model.threshold,
        "params": model.adapter.params,
        "max_fit_rows": model.adapter.max_fit_rows,
        "fit_rows": model.adapter.fit_rows,
        "features": list(model.feature_names),
        "training": {"rows": info.rows, "first_ts": info.first_ts, "last_ts": info.last_ts,
                     "first_block": info.first_block, "last_block": info.last_block,
                     "source": info.source},
        "libraries": library_versions(),
        "transform": model.transform.to_card(),
        "score_summary": summary | {"max": float(cal.xs[-1])},
        "calibration": cal.to_card(),
        "train_medians": model.train_medians.tolist(),
        "feature_quantiles": {n: t.to_card() for n, t in zip(model.feature_names, model.feature_tables)},
        "drift_bins": model.drift.to_card(),
        "artifact": ARTIFACT,
        "artifact_sha256": hashlib.sha256(artifact).hexdigest(),
    }


def fingerprint(model: AnomalyModel) -> tuple[str, bytes, dict[str, Any]]:
    """``(version, artifact bytes, card)`` of a fitted model, without writing anything."""
    buf = io.BytesIO()
    joblib.dump(model.adapter, buf)
    artifact = buf.getvalue()
    card = _build_card(model, artifact)
    card["version"] = _version_of(artifact, card)
    return card["version"], artifact, card


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save(model: AnomalyModel, out_dir: str | Path, *, versioned: bool = True) -> Path:
    """Write artifact + card under ``out_dir/<name>-<version>/`` (or ``out_dir/<name>/``); return it.

    The artifact is written before the card, so a reader racing a retrain sees either the old
    card (whose version check then fails: one clear ModelError) or the complete new pair.
    """
    version, artifact, card = fingerprint(model)
    card["created_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    target = Path(out_dir) / (f"{model.name}-{version}" if versioned else model.name)
    target.mkdir(parents=True, exist_ok=True)
    _write_atomic(target / ARTIFACT, artifact)
    _write_atomic(target / CARD, json.dumps(card, indent=1, allow_nan=False).encode() + b"\n")
    model._version = version
    log.info("saved model %s version %s to %s", model.name, version, target)
    return target


def _major_minor(v: str) -> tuple[str, ...]:
    return tuple(v.split(".")[:2])


def _check_compatible(card: dict[str, Any], card_path: Path) -> None:
    features = card["features"]
    if list(features) != list(FEATURE_NAMES):
        diff = next((i for i, (a, b) in enumerate(zip(features, FEATURE_NAMES)) if a != b),
                    min(len(features), len(FEATURE_NAMES)))
        have = features[diff] if diff < len(features) else "<end>"
        want = FEATURE_NAMES[diff] if diff < len(FEATURE_NAMES) else "<end>"
        raise ModelError(f"{card_path}: feature list does not match this pipeline's FEATURE_NAMES "
                         f"(model has {len(features)}, pipeline {len(FEATURE_NAMES)}; position {diff}: "
                         f"{have!r} vs {want!r}); retrain the model")
    running = library_versions()
    libs = ["python", "numpy", "sklearn"] + ([] if card["detector"] == "iforest" else ["pyod"])
    bad = [f"{lib} {card['libraries'].get(lib, '?')} (running {running[lib]})" for lib in libs
           if _major_minor(str(card["libraries"].get(lib, ""))) != _major_minor(running[lib])]
    if bad:
        raise ModelError(f"{card_path}: trained with other library versions: {', '.join(bad)}; "
                         "retrain the model with the installed versions")


def _read_card(card_path: Path) -> dict[str, Any]:
    try:
        card = json.loads(card_path.read_bytes())
    except FileNotFoundError:
        raise ModelError(f"{card_path}: model card not found") from None
    except (OSError, ValueError) as err:
        raise ModelError(f"{card_path}: model card is not readable JSON ({err})") from None
    if not isinstance(card, dict):
        raise ModelError(f"{card_path}: model card is not a JSON object")
    required = ("format", "name", "detector", "version", "features", "libraries", "transform",
                "calibration", "feature_quantiles", "train_medians", "drift_bins", "artifact")
    missing = [k for k in required if k not in card]
    if missing:
        raise ModelError(f"{card_path}: model card lacks field(s) {', '.join(missing)}")
    if card["format"] != CARD_FORMAT:
        raise ModelError(f"{card_path}: model card format {card['format']!r}, expected {CARD_FORMAT}")
    return card


def load(path: str | Path) -> AnomalyModel:
    """Load and validate a saved model (its directory or its ``card.json``); ModelError if unusable."""
    path = Path(path)
    card_path = path / CARD if path.is_dir() or path.suffix != ".json" else path
    if not card_path.parent.exists():
        raise ModelError(f"{path}: model directory not found")
    card = _read_card(card_path)
    _check_compatible(card, card_path)
    artifact_path = card_path.parent / str(card["artifact"])
    try:
        artifact = artifact_path.read_bytes()
    except OSError as err:
        raise ModelError(f"{artifact_path}: model artifact not readable ({err.strerror or err})") from None
    if _version_of(artifact, card) != card["version"]:
        raise ModelError(f"{artifact_path}: artifact or card is corrupt or was modified "
                         f"(content does not match version {card['version']!r})")
    try:
        adapter = joblib.load(io.BytesIO(artifact))
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad model file
        raise ModelError(f"{artifact_path}: cannot unpickle detector ({type(err).__name__}: {err})") from None
    if not isinstance(adapter, DetectorAdapter) or adapter.name != card["detector"]:
        raise ModelError(f"{artifact_path}: artifact is not a {card['detector']!r} detector")
    try:
        model = _assemble(card, adapter)
        model.score_batch(model.train_medians[None, :])  # smoke test now, not mid-stream
    except Exception as err:  # noqa: BLE001 - whatever breaks here must break now, not mid-stream
        raise ModelError(f"{card_path}: model card is inconsistent ({type(err).__name__}: {err})") from None
    model._version = card["version"]
    log.info("loaded model %s (%s) version %s from %s", model.name, model.detector, model.version, card_path)
    return model


def _assemble(card: dict[str, Any], adapter: DetectorAdapter) -> AnomalyModel:
    names = tuple(card["features"])
    model = AnomalyModel(card["detector"], name=card["name"], seed=card["seed"],
                         contamination=card["contamination"], threshold=card["threshold"],
                         feature_names=names, max_fit_rows=card["max_fit_rows"], params=card["params"])
    model.adapter = adapter
    model.transform = FeatureTransform.from_card(names, card["transform"])
    model.calibration = QuantileTable.from_card(card["calibration"])
    model.feature_tables = [QuantileTable.from_card(card["feature_quantiles"][n]) for n in names]
    model.train_medians = np.asarray(card["train_medians"], dtype=np.float64)
    model.drift = DriftReference.from_card(names, card["drift_bins"])
    model.info = TrainingInfo(**card["training"])
    return model


def load_ensemble(paths: Sequence[str | Path], *, threshold: float | None = None) -> Ensemble:
    """Load several saved models as one ``ensemble`` (mean of calibrated scores).

    Members must share the feature list (checked by :func:`load`) and should share the training
    data, since explanations and drift bins come from the first member.
    """
    if not paths:
        raise ModelError("an ensemble needs at least one model path")
    return Ensemble([load(p) for p in paths], threshold=threshold)
