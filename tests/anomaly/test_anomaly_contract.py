"""One contract test applied to every detector: score, calibrate, explain, classify, persist."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.anomaly.detectors import DETECTORS
from pipeline.anomaly.model import AnomalyModel, Ensemble
from pipeline.anomaly.persistence import load, save
from tests.anomaly.anomaly_data import normal_features, outliers


@pytest.fixture(scope="module", params=DETECTORS)
def model(request: pytest.FixtureRequest, train_X: np.ndarray) -> AnomalyModel:
    return AnomalyModel(request.param, seed=11, threshold=99.0).fit(train_X)


def test_outliers_score_higher_than_normal_rows(model: AnomalyModel) -> None:
    fresh = model.score(normal_features(200, seed=2))
    out, _ = outliers()
    scores = model.score(out)
    # IsolationForest is the weakest here (a split must pick one of the few moved features among 20),
    # so every outlier must beat the 90th percentile and on average the 95th.
    assert scores.min() > np.percentile(fresh, 90), (model.detector, scores, np.percentile(fresh, 90))
    assert scores.mean() > np.percentile(fresh, 95), (model.detector, scores, np.percentile(fresh, 95))
    both = np.concatenate([fresh, scores])
    assert np.array_equal(model.classify(both), both >= 99.0)
    assert model.classify(fresh).mean() < 0.1


def test_calibration_is_monotonic_and_bounded(model: AnomalyModel) -> None:
    assert model.calibration is not None
    lo, hi = model.calibration.xs[0], model.calibration.xs[-1]
    grid = np.linspace(lo - abs(lo) - 1, hi + abs(hi) + 1, 2001)
    cal = model.calibrate(grid)
    assert np.all(np.diff(cal) >= 0)
    assert cal[0] == 0.0 and cal[-1] == 100.0
    s = model.score(normal_features(50, seed=3))
    assert ((s >= 0) & (s <= 100)).all()


def test_explain_names_the_perturbed_feature(model: AnomalyModel) -> None:
    out, perturbed = outliers()
    for row, moved in zip(model.explain(out, top_k=4), perturbed):
        assert {c.name for c in row[: len(moved)]} == moved
        assert all(c.quantile == 1.0 and c.z > 3 for c in row[: len(moved)])
        assert [abs(c.z) for c in row] == sorted((abs(c.z) for c in row), reverse=True)
    top = model.explain(out[:1], top_k=3)[0]
    usd_out = next(c for c in top if c.name == "usd_out")
    assert usd_out.value == 5e8 and usd_out.train_median == pytest.approx(148, rel=0.2)


def test_save_load_round_trip_gives_identical_scores(model: AnomalyModel, tmp_path: Path) -> None:
    X = np.vstack([normal_features(30, seed=4), outliers()[0]])
    path = save(model, tmp_path)
    assert path.name == f"{model.name}-{model.version}"
    loaded = load(path)
    assert loaded.version == model.version and loaded.detector == model.detector
    assert np.array_equal(loaded.score_batch(X), model.score_batch(X))
    assert np.array_equal(loaded.score(X), model.score(X))
    assert loaded.explain(X[-1:], 1) == model.explain(X[-1:], 1)


def test_version_is_stable_for_same_seed_and_data(model: AnomalyModel, train_X: np.ndarray) -> None:
    again = AnomalyModel(model.detector, seed=11, threshold=99.0).fit(train_X)
    assert again.version == model.version
    other_data = AnomalyModel(model.detector, seed=11, threshold=99.0).fit(train_X[:-1])
    assert other_data.version != model.version


def test_ensemble_is_mean_of_calibrated_scores(train_X: np.ndarray) -> None:
    members = [AnomalyModel(d, seed=11).fit(train_X) for d in ("iforest", "hbos")]
    ens = Ensemble(members, threshold=90.0)
    X = np.vstack([normal_features(20, seed=5), outliers()[0]])
    expected = (members[0].score(X) + members[1].score(X)) / 2
    assert np.allclose(ens.score(X), expected)
    assert ens.classify(ens.score(X))[-len(outliers()[0]):].all()
    assert len(ens.version) == 12 and ens.version != Ensemble(members[:1]).version


def test_scores_do_not_depend_on_the_batch(model: AnomalyModel) -> None:
    X = np.vstack([normal_features(40, seed=6), outliers()[0]])
    whole = model.score_batch(X)
    one_by_one = np.concatenate([model.score_batch(X[i:i + 1]) for i in range(len(X))])
    reversed_ = model.score_batch(X[::-1])[::-1]
    assert np.allclose(whole, one_by_one, rtol=1e-12, atol=1e-12)
    assert np.allclose(whole, reversed_, rtol=1e-12, atol=1e-12)


def test_stable_directory_is_replaced_on_retrain(train_X: np.ndarray, tmp_path: Path) -> None:
    first = AnomalyModel("hbos", seed=1).fit(train_X)
    p1 = save(first, tmp_path, versioned=False)
    second = AnomalyModel("hbos", seed=1).fit(train_X[:-5])
    p2 = save(second, tmp_path, versioned=False)
    assert p1 == p2 == tmp_path / "hbos"
    assert load(p2).version == second.version != first.version


@pytest.mark.parametrize("detector", DETECTORS)
def test_constant_feature_columns_still_score(detector: str, train_X: np.ndarray) -> None:
    """Real windows often have features that never fire (permission_changes all 0): no NaN."""
    X = train_X.copy()
    X[:, -3:] = 0.0
    m = AnomalyModel(detector, seed=2).fit(X)
    probe = np.vstack([X[:5], outliers()[0]])
    probe[-1, -1] = 3.0  # the constant feature fires
    s = m.score(probe)
    assert np.isfinite(s).all() and s[-1] > np.median(s[:5])


def test_empty_batch_scores_to_empty(model: AnomalyModel) -> None:
    assert model.score(np.empty((0, model.transform.center.shape[0]))).shape == (0,)
    assert model.score_batch(np.array([])).shape == (0,)
