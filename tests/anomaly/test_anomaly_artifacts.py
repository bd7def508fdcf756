"""Finding 7 of issue 21: a model file must not be able to run code, nor a replaced one to load.

The reported attack: a ``detector.joblib`` whose pickle carries a ``__reduce__`` payload ran when the
model was loaded, and recomputing the card's version next to it made the swap look legitimate. Each
test below builds such a payload, first proves that it *does* run when unpickled, then shows that
loading the model directory refuses it without running it (the marker file is never created).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pipeline.anomaly.arrays import ArtifactError, ForestScorer, HistogramScorer, read_arrays, write_arrays
from pipeline.anomaly.detectors import DetectorAdapter
from pipeline.anomaly.model import AnomalyModel
from pipeline.anomaly.persistence import ARTIFACT, CARD, digest, load, save
from pipeline.config import load_settings
from pipeline.errors import ConfigError, ModelError
from pipeline.records import FEATURE_NAMES
from tests.anomaly.anomaly_data import normal_features

ROOT = Path(__file__).resolve().parents[2]


class Payload:
    """Unpickling this runs ``touch MARKER``: what an attacker's ``__reduce__`` would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def _armed(marker: Path) -> bytes:
    """The payload's pickle, after proving it runs when unpickled (so the tests below mean something)."""
    data = pickle.dumps(Payload(marker))
    pickle.loads(data)  # the point: what joblib.load did
    assert marker.exists()
    marker.unlink()
    return data


@pytest.fixture(scope="module")
def saved(train_X: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = AnomalyModel("iforest", seed=5, params={"n_estimators": 20}).fit(train_X)
    return save(model, tmp_path_factory.mktemp("models"))


def _forge(src: Path, dst: Path, artifact: bytes, name: str = ARTIFACT, **card_changes: object) -> Path:
    """A copy of a model whose artifact is replaced and whose card is recomputed to match it."""
    dst.mkdir()
    card = json.loads((src / CARD).read_text()) | card_changes
    card["artifact"] = name
    card["sha256"] = digest(artifact, card)
    card["version"] = card["sha256"][:12]
    (dst / name).write_bytes(artifact)
    (dst / CARD).write_text(json.dumps(card))
    return dst


def test_a_pickled_model_with_a_reduce_payload_is_refused_without_running_it(saved: Path, tmp_path: Path):
    marker = tmp_path / "pwned"
    evil = _forge(saved, tmp_path / "evil", _armed(marker), name="detector.joblib", format=1)
    with pytest.raises(ModelError, match=r"card.json: model card format 1 names a pickled artifact"):
        load(evil)
    renamed = _forge(saved, tmp_path / "renamed", _armed(marker))  # the pickle as today's detector.npz
    with pytest.raises(ModelError, match=r"detector.npz: not a valid 'iforest' model artifact \(not an arr"):
        load(renamed)
    named = _forge(saved, tmp_path / "named", _armed(marker), name="detector.joblib")  # a card naming it
    with pytest.raises(ModelError, match=r"card.json: model card names artifact 'detector.joblib'"):
        load(named)
    assert not marker.exists()


def test_a_pickle_inside_the_array_archive_is_refused_without_running_it(saved: Path, tmp_path: Path) -> None:
    """The same payload as an object array in the ``.npz`` (what ``np.load(allow_pickle=True)`` runs)."""
    marker = tmp_path / "pwned"
    _armed(marker)
    arrays = read_arrays((saved / ARTIFACT).read_bytes())
    buf = io.BytesIO()
    np.savez(buf, **(arrays | {"left": np.array([Payload(marker)], dtype=object)}))  # np.save pickles it
    evil = _forge(saved, tmp_path / "evil", buf.getvalue())
    with pytest.raises(ModelError, match=r"not a valid 'iforest' model artifact \(left.npy: dtype object"):
        load(evil)
    assert not marker.exists()


def test_the_shipped_models_are_arrays_with_their_calibration(tmp_path: Path) -> None:
    for name in ("iforest", "hbos", "ecod"):
        card = json.loads((ROOT / "models" / name / CARD).read_text())
        assert card["format"] == 2 and card["artifact"] == ARTIFACT and not (ROOT / "models" / name /
                                                                             "detector.joblib").exists()
        model = load(ROOT / "models" / name, sha256=card["sha256"])
        assert model.version == card["version"] and card["training"]["rows"] == 200_000
        # the calibration table is the training distribution of the model's own raw scores
        assert model.calibration is not None and len(model.calibration.xs) > 50


def test_a_pinned_digest_refuses_any_other_model(saved: Path, tmp_path: Path) -> None:
    card = json.loads((saved / CARD).read_text())
    assert load(saved, sha256=card["sha256"]).version == card["version"]
    other = AnomalyModel("iforest", seed=6, params={"n_estimators": 20}).fit(normal_features(400, seed=1))
    swapped = save(other, tmp_path)  # a valid model, correctly versioned: only the pin tells them apart
    with pytest.raises(ModelError, match=r"is not the one pinned in analytics.model_sha256"):
        load(swapped, sha256=card["sha256"])
    (tmp_path / "t.toml").write_text('[analytics]\nmodel_sha256 = "abc"\n')
    with pytest.raises(ConfigError, match=r"analytics.model_sha256: expected 64 lower-case hex digits"):
        load_settings(str(tmp_path / "t.toml"), env={})


# -- the container ---------------------------------------------------------------------------
def test_archives_are_deterministic_and_numeric_only() -> None:
    arrays = {"b": np.arange(5), "a": np.linspace(0, 1, 3), "s": np.float64(2.5)}
    assert write_arrays(arrays) == write_arrays(dict(reversed(list(arrays.items()))))
    back = read_arrays(write_arrays(arrays))
    assert back.keys() == arrays.keys() and all(np.array_equal(back[k], arrays[k]) for k in arrays)
    assert back["s"].shape == ()
    with pytest.raises(ArtifactError, match="is not numeric"):
        write_arrays({"x": np.array(["text"])})


def _npy_member(header_shape: tuple, data: bytes) -> bytes:
    head = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": header_shape}
    np.lib.format.write_array_header_1_0(head, header)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.npy", head.getvalue() + data)
    return buf.getvalue()


@pytest.mark.parametrize("archive,why", [
    (_npy_member((10**12,), b"\0" * 80), "header declares 8000000000000 bytes, the member holds"),
    (b"PK\x03\x04 not really a zip", "not an array archive"),
])
def test_forged_headers_are_refused_before_allocating(archive: bytes, why: str) -> None:
    with pytest.raises(ArtifactError, match=why):
        read_arrays(archive)


def test_compressed_members_are_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.npy", b"\0" * 1000)
    with pytest.raises(ArtifactError, match="stored uncompressed"):
        read_arrays(buf.getvalue())


# -- the scorers: same scores as the libraries, and hostile arrays refused ----------------------
def test_forest_scorer_equals_sklearn_and_refuses_out_of_range_children(train_X: np.ndarray) -> None:
    params = {"n_estimators": 25, "max_features": 0.5}  # a feature subset per tree, mapped back
    adapter = DetectorAdapter("iforest", seed=3, params=params).fit(train_X)
    rows = np.random.default_rng(2).normal(size=(300, len(FEATURE_NAMES))) * 2
    assert np.array_equal(adapter.decision(rows), -adapter.estimator.score_samples(rows))
    arrays = adapter.to_arrays()
    bad = dict(arrays, left=arrays["left"].copy())
    bad["left"][0] = 10**9  # Tree.apply would read far outside the node table
    with pytest.raises(ArtifactError, match="child index points backwards or outside the tree"):
        ForestScorer(bad, len(FEATURE_NAMES))
    bad = dict(arrays, feature=arrays["feature"].copy())
    bad["feature"][0] = len(FEATURE_NAMES)
    with pytest.raises(ArtifactError, match="names a feature that does not exist"):
        ForestScorer(bad, len(FEATURE_NAMES))


@pytest.mark.parametrize("n_bins", [10, "auto"])
def test_histogram_scorer_equals_pyod(train_X: np.ndarray, n_bins: int | str) -> None:
    adapter = DetectorAdapter("hbos", params={"n_bins": n_bins}).fit(train_X)
    rows = np.vstack([train_X[:50] * 1.5, np.random.default_rng(4).normal(size=(50, len(FEATURE_NAMES))) * 9])
    assert np.allclose(adapter.decision(rows), adapter.estimator.decision_function(rows), rtol=1e-12, atol=0)
    stored = read_arrays(write_arrays(adapter.to_arrays()))
    loaded = DetectorAdapter.from_arrays("hbos", stored, len(FEATURE_NAMES))
    assert np.array_equal(loaded.decision(rows), adapter.decision(rows))
    with pytest.raises(ArtifactError, match="alpha and tol"):
        HistogramScorer(dict(adapter.to_arrays(), alpha=np.float64(3.0)), len(FEATURE_NAMES))
