"""Bad model files give one ModelError naming the file; never a crash later, mid-stream."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.anomaly import persistence
from pipeline.anomaly.model import AnomalyModel, TrainingInfo
from pipeline.anomaly.persistence import ARTIFACT, CARD, load, save
from pipeline.errors import ModelError
from pipeline.records import FEATURE_NAMES


@pytest.fixture(scope="module")
def saved(train_X: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    info = TrainingInfo(rows=len(train_X), first_ts=1_713_139_200_000, last_ts=1_713_142_800_000,
                        first_block=60836289, last_block=60837489, source="test")
    model = AnomalyModel("iforest", seed=5, params={"n_estimators": 20}).fit(train_X, info=info)
    return save(model, tmp_path_factory.mktemp("models"))


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for name in (ARTIFACT, CARD):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def _edit_card(path: Path, **changes: object) -> None:
    card = json.loads((path / CARD).read_text())
    card.update(changes)
    (path / CARD).write_text(json.dumps(card))


def test_card_records_provenance(saved: Path) -> None:
    card = json.loads((saved / CARD).read_text())
    assert card["features"] == list(FEATURE_NAMES)
    assert card["training"] == {"rows": 400, "first_ts": 1_713_139_200_000, "last_ts": 1_713_142_800_000,
                                "first_block": 60836289, "last_block": 60837489, "source": "test"}
    assert set(card["libraries"]) >= {"python", "numpy", "sklearn", "pyod"}
    assert card["seed"] == 5 and card["contamination"] == 0.01 and card["threshold"] == 99.0
    assert saved.name == f"iforest-{card['version']}" and len(card["version"]) == 12
    assert "usd_in" in card["transform"]["log1p"] and "pass_through_ratio" not in card["transform"]["log1p"]
    assert card["score_summary"]["p50"] < card["score_summary"]["p99"] <= card["score_summary"]["max"]
    assert load(saved / CARD).version == card["version"]  # the card path works as well as the directory


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"nope.*not found"):
        load(tmp_path / "nope")


def test_missing_artifact(saved: Path, tmp_path: Path) -> None:
    p = _copy(saved, tmp_path / "m")
    (p / ARTIFACT).unlink()
    with pytest.raises(ModelError, match=rf"{ARTIFACT}: model artifact not found"):
        load(p)


def test_truncated_artifact(saved: Path, tmp_path: Path) -> None:
    p = _copy(saved, tmp_path / "m")
    data = (p / ARTIFACT).read_bytes()
    (p / ARTIFACT).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=rf"{ARTIFACT}: artifact or card is corrupt"):
        load(p)


def test_artifact_that_is_not_arrays_with_matching_hash(saved: Path, tmp_path: Path) -> None:
    p = _copy(saved, tmp_path / "m")
    (p / ARTIFACT).write_bytes(b"not an array archive at all")
    card = json.loads((p / CARD).read_text())
    _edit_card(p, version=persistence._version_of(b"not an array archive at all", card))
    with pytest.raises(ModelError, match=rf"{ARTIFACT}: not a valid 'iforest' model artifact \(not an array"):
        load(p)


def test_corrupt_card(saved: Path, tmp_path: Path) -> None:
    p = _copy(saved, tmp_path / "m")
    (p / CARD).write_text('{"format": 1, "name": ')
    with pytest.raises(ModelError, match=rf"{CARD}: model card is not readable JSON"):
        load(p)


def test_card_missing_fields(saved: Path, tmp_path: Path) -> None:
    p = _copy(saved, tmp_path / "m")
    (p / CARD).write_text('{"format": 1}')
    with pytest.raises(ModelError, match=rf"{CARD}: model card lacks field\(s\) name, detector"):
        load(p)


def test_wrong_feature_list(saved: Path, tmp_path: Path) -> None:
    p = _copy(saved, tmp_path / "m")
    swapped = list(FEATURE_NAMES)
    swapped[2], swapped[3] = swapped[3], swapped[2]
    _edit_card(p, features=swapped)
    with pytest.raises(ModelError, match=rf"{CARD}: feature list .* position 2: 'usd_out' vs 'usd_in'"):
        load(p)
    _edit_card(p, features=list(FEATURE_NAMES[:-1]))
    with pytest.raises(ModelError, match=r"model has 19, pipeline 20"):
        load(p)


def test_other_library_version(saved: Path, tmp_path: Path) -> None:
    p = _copy(saved, tmp_path / "m")
    card = json.loads((p / CARD).read_text())
    _edit_card(p, libraries=card["libraries"] | {"sklearn": "0.24.2"})
    with pytest.raises(ModelError, match=rf"{CARD}: trained with other library versions: sklearn 0.24.2"):
        load(p)


def test_edited_card_is_detected(saved: Path, tmp_path: Path) -> None:
    p = _copy(saved, tmp_path / "m")
    _edit_card(p, threshold=50.0)
    with pytest.raises(ModelError, match="corrupt or was modified"):
        load(p)


@pytest.mark.parametrize("detector", ["ecod", "copod"])
def test_ecdf_detectors_match_pyod_single_row_scores(detector: str, train_X: np.ndarray) -> None:
    """Our batch-independent ECOD/COPOD scoring equals pyod's decision_function on one row."""
    from pipeline.anomaly.detectors import DetectorAdapter

    adapter = DetectorAdapter(detector).fit(train_X)
    rows = train_X[:5] * 1.7
    ours = adapter.decision(rows)
    pyod_one = [adapter.estimator.decision_function(rows[i:i + 1])[0] for i in range(len(rows))]
    assert np.allclose(ours, pyod_one, rtol=1e-9)
    stored = adapter.to_arrays()
    assert set(stored) == {"sorted", "skew_sign"}  # the sorted columns, not pyod's copy of the training data
