"""Save and load fitted models: an artifact of plain arrays plus a human-readable JSON model card.

Layout: ``save(model, out_dir)`` writes ``out_dir/<name>-<version>/detector.npz`` (the detector's
weights as numeric arrays, :mod:`pipeline.anomaly.arrays`) and ``card.json`` (everything needed to
transform, calibrate, explain and watch drift, plus provenance); ``versioned=False`` writes
``out_dir/<name>/``, the stable path a configuration names, replaced on retraining (the version is
in the card). The model's digest is sha256(artifact bytes + canonical card JSON without
``version``/``created_at``/``sha256``); the version id is its first 12 hex digits, so the same seed
and data give the same version, and any change of either file is detected on load.

Why arrays and not a pickle: ``joblib.load`` runs code named by the file before anything can check
it, and a version stored next to the artifact proves nothing to whoever can rewrite both. Loading
here never unpickles: the card is JSON, the artifact is parsed as numeric arrays and validated by
the scorer that uses them. Models written by the pickle format (card format 1) are refused with the
command that retrains them. Against a *replaced* model (one that cannot run code but could blind
the detector), pin its digest in the settings (``analytics.model_sha256``, printed by ``train``):
``load(path, sha256=...)`` refuses any other model before parsing it.

``load(path)`` turns every problem into one :class:`ModelError` that names the file: missing file,
oversized, unreadable or corrupt card/artifact, feature list different from the running
``FEATURE_NAMES``, other numpy/scikit-learn/pyod major.minor version. It ends with a one-row smoke
score so nothing fails later, mid-stream.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.anomaly.arrays import ArtifactError, read_arrays, write_arrays
from pipeline.anomaly.calibration import QuantileTable
from pipeline.anomaly.detectors import DetectorAdapter
from pipeline.anomaly.drift import DriftReference
from pipeline.anomaly.model import AnomalyModel, Ensemble, TrainingInfo
from pipeline.anomaly.transform import FeatureTransform
from pipeline.errors import ModelError
from pipeline.records import FEATURE_NAMES

log = logging.getLogger(__name__)

CARD_FORMAT = 2  # 1: a pickled detector.joblib (refused: it runs code at load)
ARTIFACT = "detector.npz"
CARD = "card.json"
MAX_CARD_BYTES = 16 << 20  # shipped cards are ~30 KB
MAX_ARTIFACT_BYTES = 512 << 20  # shipped artifacts are 0.01-3.2 MB
_UNHASHED = ("version", "created_at", "sha256")


def library_versions() -> dict[str, str]:
    """Versions that decide whether a detector scores the same as when trained (recorded in the card)."""
    import pyod
    import sklearn

    return {"python": platform.python_version(), "numpy": np.__version__,
            "sklearn": sklearn.__version__, "pyod": pyod.__version__}


def _canonical(card: dict[str, Any]) -> bytes:
    body = {k: v for k, v in card.items() if k not in _UNHASHED}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def digest(artifact: bytes, card: dict[str, Any]) -> str:
    """The model's SHA-256 (artifact + card); what ``analytics.model_sha256`` pins."""
    return hashlib.sha256(artifact + b"\0" + _canonical(card)).hexdigest()


def _version_of(artifact: bytes, card: dict[str, Any]) -> str:
    return digest(artifact, card)[:12]


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
    artifact = write_arrays(model.adapter.to_arrays())
    card = _build_card(model, artifact)
    card["sha256"] = digest(artifact, card)
    card["version"] = card["sha256"][:12]
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
        have = str(features[diff])[:40] if diff < len(features) else "<end>"
        want = FEATURE_NAMES[diff] if diff < len(FEATURE_NAMES) else "<end>"
        raise ModelError(f"{card_path}: feature list does not match this pipeline's FEATURE_NAMES "
                         f"(model has {len(features)}, pipeline {len(FEATURE_NAMES)}; position {diff}: "
                         f"{have!r} vs {want!r}); retrain the model")
    running = library_versions()
    libs = ["python", "numpy", "sklearn"] + ([] if card["detector"] == "iforest" else ["pyod"])
    bad = [f"{lib} {str(card['libraries'].get(lib, '?'))[:20]} (running {running[lib]})" for lib in libs
           if _major_minor(str(card["libraries"].get(lib, ""))) != _major_minor(running[lib])]
    if bad:
        raise ModelError(f"{card_path}: trained with other library versions: {', '.join(bad)}; "
                         "retrain the model with the installed versions")


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "format": int, "name": str, "detector": str, "version": str, "features": list, "libraries": dict,
    "transform": dict, "calibration": dict, "feature_quantiles": dict, "train_medians": list,
    "drift_bins": dict, "artifact": str}


def _read_capped(path: Path, limit: int, what: str) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise ModelError(f"{path}: {what} not found") from None
    except OSError as err:
        raise ModelError(f"{path}: {what} not readable ({err.strerror or err})") from None
    if len(data) > limit:
        raise ModelError(f"{path}: {what} is larger than {limit:,} bytes")
    return data


def _read_card(card_path: Path) -> dict[str, Any]:
    data = _read_capped(card_path, MAX_CARD_BYTES, "model card")
    try:
        card = json.loads(data)
    except (ValueError, RecursionError) as err:
        raise ModelError(f"{card_path}: model card is not readable JSON ({str(err)[:100]})") from None
    if not isinstance(card, dict):
        raise ModelError(f"{card_path}: model card is not a JSON object")
    missing = [k for k in _FIELDS if k not in card]
    if missing:
        raise ModelError(f"{card_path}: model card lacks field(s) {', '.join(missing)}")
    if card["format"] == 1:
        raise ModelError(f"{card_path}: model card format 1 names a pickled artifact, which can run code "
                         "when loaded; it is not loaded. Retrain: run_pipeline.py train (models/README.md)")
    if card["format"] != CARD_FORMAT:
        raise ModelError(f"{card_path}: model card format {str(card['format'])[:20]!r}, "
                         f"expected {CARD_FORMAT}")
    wrong = [k for k, t in _FIELDS.items() if not isinstance(card[k], t)]
    if wrong:
        raise ModelError(f"{card_path}: model card field(s) of the wrong type: {', '.join(wrong)}")
    if card["artifact"] != ARTIFACT:
        raise ModelError(f"{card_path}: model card names artifact {card['artifact'][:60]!r}, "
                         f"expected {ARTIFACT!r}")
    return card


def load(path: str | Path, *, sha256: str = "") -> AnomalyModel:
    """Load and validate a saved model (its directory or its ``card.json``); ModelError if unusable.

    ``sha256`` (setting ``analytics.model_sha256``): when given, the model's digest must equal it,
    checked before the artifact is parsed.
    """
    path = Path(path)
    card_path = path / CARD if path.is_dir() or path.suffix != ".json" else path
    if not card_path.parent.exists():
        raise ModelError(f"{path}: model directory not found")
    card = _read_card(card_path)
    _check_compatible(card, card_path)
    artifact_path = card_path.parent / ARTIFACT
    artifact = _read_capped(artifact_path, MAX_ARTIFACT_BYTES, "model artifact")
    actual = digest(artifact, card)
    if sha256 and actual != sha256:
        raise ModelError(f"{card_path}: model digest {actual} is not the one pinned in "
                         f"analytics.model_sha256 ({sha256}); a replaced model is not loaded")
    if actual[:12] != card["version"]:
        raise ModelError(f"{artifact_path}: artifact or card is corrupt or was modified "
                         f"(content does not match version {card['version'][:20]!r})")
    try:
        arrays = read_arrays(artifact)
        adapter = DetectorAdapter.from_arrays(
            card["detector"], arrays, len(FEATURE_NAMES), seed=card.get("seed", 0),
            contamination=card.get("contamination", 0.01), max_fit_rows=card.get("max_fit_rows"),
            params=card.get("params") or {}, fit_rows=card.get("fit_rows", 0))
    except (ArtifactError, ValueError, TypeError) as err:
        raise ModelError(f"{artifact_path}: not a valid {card['detector'][:20]!r} model artifact "
                         f"({str(err)[:200]})") from None
    try:
        model = _assemble(card, adapter)
        model.score_batch(model.train_medians[None, :])  # smoke test now, not mid-stream
    except Exception as err:  # noqa: BLE001 - whatever breaks here must break now, not mid-stream
        raise ModelError(f"{card_path}: model card is inconsistent "
                         f"({type(err).__name__}: {str(err)[:200]})") from None
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
