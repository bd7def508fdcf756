"""The supervised scorer: fit, calibrated scores, explanations, data-only persistence, wiring."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest

from pipeline.anomaly.supervised import Forest, SupervisedModel
from pipeline.anomaly.supervised_scorer import RULE_ID, CompositeScorer, SupervisedScorer
from pipeline.anomaly.supervised_store import ARTIFACT, CARD, content_version, load, save
from pipeline.errors import ModelError
from pipeline.operators.scoring import ScoringStage
from tests.anomaly.anomaly_data import COL, make_update, normal_features, real_addresses

SMALL = {"max_iter": 30, "min_samples_leaf": 10}
DRIVER = "usd_out"


def labelled(n: int = 3000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Ordinary rows; a random 10 % get a large ``usd_out`` and are the labelled ones."""
    rng = np.random.default_rng(seed)
    X = normal_features(n, seed)
    y = (rng.uniform(size=n) < 0.1).astype(np.int8)
    X[y == 1, COL[DRIVER]] = rng.lognormal(11.0, 0.5, int(y.sum()))
    return X, y


@pytest.fixture(scope="module")
def fitted() -> tuple[SupervisedModel, np.ndarray, np.ndarray]:
    X, y = labelled()
    return SupervisedModel(seed=5, params=SMALL).fit(X, y, groups=np.arange(len(y))), X, y


def test_fit_separates_and_calibrates(fitted):
    model, X, y = fitted
    p = model.score_batch(X)
    assert ((0 <= p) & (p <= 1)).all()
    hit = p >= model.threshold
    assert (hit & (y == 1)).sum() / y.sum() > 0.9
    assert (hit & (y == 0)).sum() < 0.05 * (y == 0).sum()
    assert 0 < model.threshold <= 1


def test_flattened_trees_match_sklearn():
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = labelled(800, seed=9)
    X[::7, 0] = np.nan  # missing values take the side the trees learned
    est = HistGradientBoostingClassifier(max_iter=10, random_state=0, early_stopping=False).fit(X, y)
    forest = Forest.from_sklearn(est)
    forest.check(X.shape[1])
    np.testing.assert_allclose(1 / (1 + np.exp(-forest.raw(X))), est.predict_proba(X)[:, 1], atol=1e-12)


def test_same_seed_same_model_other_seed_other_split():
    X, y = labelled(1500)
    a = SupervisedModel(seed=1, params=SMALL).fit(X, y)
    b = SupervisedModel(seed=1, params=SMALL).fit(X, y)
    c = SupervisedModel(seed=2, params=SMALL).fit(X, y)
    assert np.array_equal(a.score_batch(X), b.score_batch(X))
    assert a.fit_info["fit_rows"] != c.fit_info["fit_rows"]


def test_explanation_names_the_feature_that_drives_the_label(fitted):
    model, X, y = fitted
    pos = X[(y == 1) & (model.score_batch(X) >= model.threshold)][:20]
    explained = model.explain(pos, top_k=3)
    assert len(explained) == len(pos) and all(len(top) <= 3 for top in explained)
    assert all(top and top[0].name == DRIVER and top[0].delta > 0 for top in explained)
    assert explained[0][0].train_median == pytest.approx(np.median(X[:, COL[DRIVER]]), rel=0.2)


def test_fit_refuses_one_class():
    X, _ = labelled(200)
    with pytest.raises(ValueError, match="both 0 and 1"):
        SupervisedModel().fit(X, np.zeros(200))


def test_save_load_identical_scores_and_version(fitted, tmp_path):
    model, X, _ = fitted
    save(model, tmp_path / "a")
    save(model, tmp_path / "b")
    loaded = load(tmp_path / "a")
    assert np.array_equal(loaded.score_batch(X), model.score_batch(X))
    assert loaded.threshold == model.threshold
    assert loaded.explain(X[:5]) == model.explain(X[:5])
    card = json.loads((tmp_path / "b" / CARD).read_text())
    assert loaded.version == model.version == card["version"]  # content hash: same trees, same id
    with np.load(tmp_path / "a" / ARTIFACT, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def _rewrite(path, **changes) -> None:
    with np.load(path / ARTIFACT, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    with open(path / ARTIFACT, "wb") as fh:
        np.savez(fh, **arrays)
    return arrays


def test_tampered_artifact_is_refused(fitted, tmp_path):
    model, _, _ = fitted
    save(model, tmp_path)
    value = model.forest.value.copy()
    value[np.flatnonzero(model.forest.is_leaf)[0]] += 5.0
    _rewrite(tmp_path, value=value)
    with pytest.raises(ModelError, match="content hash"):
        load(tmp_path)


def test_malformed_forest_is_refused_even_with_a_matching_card(fitted, tmp_path):
    model, _, _ = fitted
    save(model, tmp_path)
    left = model.forest.left.copy()
    left[np.flatnonzero(~model.forest.is_leaf)[0]] = 0  # a loop back to the root
    arrays = _rewrite(tmp_path, left=left)
    card = json.loads((tmp_path / CARD).read_text())
    card["version"] = content_version(arrays)
    (tmp_path / CARD).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="points backwards"):
        load(tmp_path)


def test_pickled_arrays_are_refused(fitted, tmp_path):
    model, _, _ = fitted
    save(model, tmp_path)
    _rewrite(tmp_path, seed=np.array([object()], dtype=object))
    with pytest.raises(ModelError, match="cannot read model arrays"):
        load(tmp_path)


def test_missing_model_is_one_line(tmp_path):
    with pytest.raises(ModelError, match="cannot read the model card"):
        load(tmp_path / "nope")


def _updates(X: np.ndarray, ts: int) -> list:
    addrs = real_addresses(len(X))
    return [make_update(a, x, ts, f"tx{ts}-{i}") for i, (a, x) in enumerate(zip(addrs, X))]


def test_scorer_alerts_carry_probability_and_top_features(fitted):
    model, X, y = fitted
    rows = _updates(np.vstack([X[y == 0][:30], X[y == 1][:3]]), 1_700_000_000_000)
    alerts, scores = SupervisedScorer(model, clock=lambda: 1).score_rows(rows)
    assert len(scores) == len(rows)
    flagged = {a.address for a in alerts}
    assert {r.address for r in rows[-3:]} <= flagged
    a = alerts[-1]
    d = orjson.loads(a.details)
    assert a.rule_id == RULE_ID and a.tags == () and a.rule_version == model.version
    assert d["probability"] >= model.threshold and d["top_features"][0]["name"] == DRIVER
    assert a.severity in ("low", "medium", "high") and 0 < a.risk_score < 95


class _Primary:
    """Stands in for the anomaly scorer: one fixed alert-free answer, to see the merge."""

    models = ()

    def score_rows(self, rows):
        return [], [42.0] * len(rows)


def test_composite_keeps_primary_scores_and_cooldown_is_per_address(fitted):
    model, X, y = fitted
    composite = CompositeScorer(_Primary(), SupervisedScorer(model, clock=lambda: 1))
    stage = ScoringStage(composite, min_rows=1, cooldown_ms=3_600_000)
    pos = X[y == 1][:2]
    seen = []
    for k, ts in enumerate((1_700_000_000_000, 1_700_000_600_000, 1_700_004_000_000)):
        rows = _updates(pos, ts)
        stage.expect(rows[0].transfer.block_number, len(rows), k)
        stage.add(rows[0].transfer.block_number, rows, [])
        scored = stage.take()
        seen.append(sorted(a.address for a in scored.alerts if a.rule_id == RULE_ID))
    assert seen[0] == sorted(real_addresses(2)) and seen[1] == [] and seen[2] == seen[0]
    assert composite.score_rows(_updates(pos, 1))[1] == [42.0, 42.0]
