"""AnomalyScorer: one score call per batch, dedup by address, alerts that follow the contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.anomaly.drift import DriftMonitor
from pipeline.anomaly.model import AnomalyModel
from pipeline.anomaly.risk import risk_score
from pipeline.anomaly.scorer import AnomalyScorer, alert_id, severity_for
from pipeline.errors import ModelError
from pipeline.records import SEVERITIES, AddressUpdate
from tests.anomaly.anomaly_data import make_update, normal_features, outliers, real_addresses


class CountingModel(AnomalyModel):
    """A real model that counts its score_batch calls and the rows they carried."""

    calls: list[int]

    def score_batch(self, X: np.ndarray) -> np.ndarray:
        self.calls.append(len(X))
        return super().score_batch(X)


@pytest.fixture(scope="module")
def model(train_X: np.ndarray) -> CountingModel:
    m = CountingModel("iforest", seed=3, threshold=99.0, params={"n_estimators": 30}).fit(train_X)
    m.calls = []
    return m


def _updates(n: int, seed: int, start_ts: int = 1_713_139_200_000) -> list[AddressUpdate]:
    X = normal_features(n, seed)
    return [make_update(f"T{seed}addr{i:05d}", X[i], start_ts + i * 3000, f"{seed:02x}{i:062x}")
            for i in range(n)]


def test_one_score_call_per_batch(model: CountingModel) -> None:
    model.calls.clear()
    updates = _updates(700, seed=21)
    updates += updates[:300]  # the same addresses touched again: still 700 rows
    AnomalyScorer(model, batch_size=256).score_updates(updates)
    assert model.calls == [256, 256, 188]
    model.calls.clear()
    AnomalyScorer(model, batch_size=1000).score_updates(updates)
    assert model.calls == [700]
    model.calls.clear()
    assert AnomalyScorer(model).score_updates([]) == [] and model.calls == []


def test_latest_update_per_address_is_scored_and_cited(model: CountingModel) -> None:
    addr = real_addresses(1)[0]
    out, _ = outliers()
    calm = normal_features(1, seed=30)[0]
    early = make_update(addr, calm, 1_000_000, "aa" * 32)
    late = make_update(addr, out[1], 1_003_000, "bb" * 32)
    alerts = AnomalyScorer(model, threshold=90.0).score_updates([early, late])
    assert [a.tx_id for a in alerts] == ["bb" * 32]
    # order within the batch does not matter, event time does
    assert [a.tx_id for a in AnomalyScorer(model, threshold=90.0).score_updates([late, early])] == ["bb" * 32]


def test_alerts_follow_the_contract(model: CountingModel) -> None:
    addrs = real_addresses(6)
    out, moved = outliers()
    calm = normal_features(2, seed=31)
    rows = [*out, *calm]
    updates = [make_update(a, r, 1_713_139_200_000 + i, f"{i:064x}", source="mempool" if i == 0 else "block")
               for i, (a, r) in enumerate(zip(addrs, rows))]
    scorer = AnomalyScorer(model, threshold=90.0, top_k=3, clock=lambda: 42)
    alerts = scorer.score_updates(updates)
    scores = model.score(np.array(rows))
    assert {a.address for a in alerts} == {addrs[i] for i in np.flatnonzero(scores >= 90.0)}
    assert addrs[0] in {a.address for a in alerts}
    for a in alerts:
        d = json.loads(a.details)
        i = addrs.index(a.address)
        assert a.rule_id == "anomaly.iforest" and a.rule_version == model.version == d["model_version"]
        assert a.alert_id == alert_id("anomaly.iforest", a.address, a.tx_id) and len(a.alert_id) == 32
        assert a.tx_id == f"{i:064x}" and a.ts == 1_713_139_200_000 + i and a.detected_at == 42
        assert a.severity in SEVERITIES and a.severity == severity_for(d["score"])
        assert a.risk_score == risk_score(None, d["score"])
        assert d["score"] == pytest.approx(scores[i], abs=1e-4) and d["raw_score"] > 0
        assert a.tags == ("anomaly",)
        assert (a.status, a.source) == (("pending", "mempool") if i == 0 else ("confirmed", "block"))
        assert len(d["top_features"]) == 3 and set(d["top_features"][0]) == {
            "name", "value", "train_median", "z", "quantile"}
        if i < len(moved):
            assert d["top_features"][0]["name"] in moved[i]
    again = AnomalyScorer(model, threshold=90.0, top_k=3, clock=lambda: 7).score_updates(updates)
    assert [a.alert_id for a in again] == [a.alert_id for a in alerts]


def test_severity_bands() -> None:
    assert [severity_for(s) for s in (50, 99.0, 99.5, 99.9, 99.99, 100)] == [
        "info", "low", "low", "medium", "high", "high"]


def test_drift_rows_come_out_of_the_scorer(model: CountingModel) -> None:
    assert model.drift is not None
    mon = DriftMonitor(model.drift, model.version, window_ms=3_600_000)
    scorer = AnomalyScorer(model, drift=mon)
    scorer.score_updates(_updates(50, seed=40, start_ts=0))
    assert scorer.take_drift_rows() == []
    scorer.score_updates(_updates(5, seed=41, start_ts=3_600_000))
    rows = scorer.take_drift_rows()
    assert len(rows) == 20 and rows[0].n == 50 and rows[0].model_version == model.version
    assert scorer.take_drift_rows() == []


def test_model_with_other_feature_list_is_refused(train_X: np.ndarray) -> None:
    names = [f"f{i}" for i in range(train_X.shape[1])]
    other = AnomalyModel("hbos", feature_names=names).fit(train_X)
    with pytest.raises(ModelError, match="another feature list"):
        AnomalyScorer(other)


def test_score_rows_returns_every_rows_score_in_order(model: CountingModel) -> None:
    updates = _updates(30, seed=50)
    alerts, scores = AnomalyScorer(model, threshold=95.0, batch_size=7).score_rows(updates)
    expected = model.score(np.array([u.features.values for u in updates]))
    assert np.allclose(scores, expected)
    assert {a.address for a in alerts} == {u.address for u, s in zip(updates, scores) if s >= 95.0}


def test_default_drift_monitor_flushes_at_the_end(model: CountingModel) -> None:
    scorer = AnomalyScorer(model, drift_window_ms=60_000)
    scorer.score_updates(_updates(12, seed=51, start_ts=0))
    assert scorer.take_drift_rows() == []
    rows = scorer.take_drift_rows(flush=True)
    assert len(rows) == 20 and {r.n for r in rows} == {12} and rows[0].window_end - rows[0].window_start == 60_000
    assert AnomalyScorer(model, drift_window_ms=None).drift is None


def test_ensemble_scores_as_one_rule(train_X: np.ndarray, tmp_path: Path) -> None:
    from pipeline.anomaly.persistence import load_ensemble, save

    paths = [save(AnomalyModel(d, seed=4).fit(train_X), tmp_path) for d in ("iforest", "copod")]
    ens = load_ensemble(paths, threshold=90.0)
    out, _ = outliers()
    updates = [make_update(a, r, 1_713_139_200_000 + i, f"{i:064x}") for i, (a, r) in
               enumerate(zip(real_addresses(4), out))]
    scorer = AnomalyScorer(ens, drift_window_ms=60_000)
    alerts = scorer.score_updates(updates)
    assert alerts and {a.rule_id for a in alerts} == {"anomaly.ensemble"}
    assert {a.rule_version for a in alerts} == {ens.version}
    assert json.loads(alerts[0].details)["detector"] == "ensemble"
    assert len(scorer.take_drift_rows(flush=True)) == 20
    with pytest.raises(ModelError, match="at least one model"):
        load_ensemble([])
