"""``train-gbm --from-dispositions``: labels from analyst reviews joined with stored features (chDB)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import run_pipeline
from pipeline.anomaly.supervised_data import read_dispositions
from pipeline.anomaly.supervised_store import load
from pipeline.audit.store import COLUMNS
from pipeline.records import FEATURE_NAMES, Alert
from pipeline.sinks.writer import ClickHouseWriter
from pipeline.storage.clickhouse import open_storage

T0 = 1_714_000_000_000
USD_OUT = FEATURE_NAMES.index("usd_out")


def _features(rng: np.random.Generator, bad: bool) -> list[float]:
    v = rng.lognormal(2.0, 1.0, len(FEATURE_NAMES))
    v[USD_OUT] = rng.lognormal(12.0, 0.3) if bad else rng.lognormal(4.0, 0.5)
    return v.tolist()


@pytest.fixture
def reviewed(chdb_dsn):
    """120 alerted addresses, a third confirmed bad (large usd_out at the alert's block); each also has
    a later feature row with the opposite look, which the ASOF join must not pick."""
    client, dsn = open_storage(chdb_dsn)
    db = dsn.database
    rng = np.random.default_rng(4)
    w = ClickHouseWriter(client, db)
    alerts, feats, disp = [], [], []
    for i in range(120):
        addr, block, bad = f"TAddr{i:029d}", 1000 + i, i % 3 == 0
        aid = f"alert{i:04d}"
        alerts.append(Alert(aid, T0 + i, T0 + i, block, f"tx{i}", addr, "r.x", "v1", "high", 75.0,
                            "confirmed", "block", "x", (), "{}"))
        feats.append((addr, T0 + i - 3000, block - 1, *_features(rng, bad)))
        feats.append((addr, T0 + i + 60_000, block + 20, *_features(rng, not bad)))
        verdict = "true_positive" if bad else "false_positive"
        disp.append((aid, T0 + 10_000, "close", verdict, "ana", "", f"r{i}"))
    # not labels: an ack only, a needs_review; and one closed false positive reopened as true positive
    disp += [("alert0001", T0 + 5_000, "ack", "", "ana", "", "ack1"),
             ("alert0002", T0 + 20_000, "close", "needs_review", "ana", "", "nr2"),
             ("alert0004", T0 + 30_000, "close", "true_positive", "bob", "second look", "tp4")]
    w.add("alerts", alerts)
    w.add("address_features", feats)
    w.flush()
    client.insert(f"{db}.dispositions", disp, column_names=COLUMNS["dispositions"])
    client.close()
    return chdb_dsn


def test_read_dispositions_labels_latest_close_with_features_at_the_alert(reviewed):
    data = read_dispositions(reviewed)
    labels = dict(zip(data.addresses, data.y.tolist()))
    assert len(labels) == len(data.y) == 119  # alert0002 is only "needs_review" now
    assert "TAddr" + "2".zfill(29) not in labels
    assert labels["TAddr" + "4".zfill(29)] == 1 and labels["TAddr" + "5".zfill(29)] == 0
    assert labels["TAddr" + "3".zfill(29)] == 1
    big = data.X[:, USD_OUT] > 20_000  # the row at or before the alert, not the later one
    expected = np.array([int(a[5:]) % 3 == 0 for a in data.addresses])
    assert np.array_equal(big, expected)


def test_train_gbm_from_dispositions_writes_a_model_that_learned_them(reviewed, tmp_path, capsys):
    out = tmp_path / "gbm"
    code = run_pipeline.main(["train-gbm", "--from-dispositions", "--clickhouse", reviewed, "--out", str(out),
                              "--param", "max_iter=20", "--param", "min_samples_leaf=5", "--no-progress"])
    assert code == 0
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["source"] == "dispositions" and card["training"]["rows"] == 119
    assert "version " + card["version"] in capsys.readouterr().out
    data = read_dispositions(reviewed)
    p = load(out).score_batch(data.X)
    assert p[data.y == 1].min() > p[data.y == 0].max()


def test_from_dispositions_needs_a_database(tmp_path, capsys):
    code = run_pipeline.main(["train-gbm", "--from-dispositions", "--out", str(tmp_path)])
    assert code != 0
    assert "--clickhouse" in capsys.readouterr().err
