"""The full analytics in the real dataflow: determinism across worker counts, alerts in storage."""

import pytest

from pipeline.config import load_settings
from pipeline.runner import replay
from pipeline.storage.clickhouse import connect


@pytest.fixture(scope="module")
def sim_chain(tmp_path_factory):
    from pipeline.simulate import SimConfig, parse_rates, simulate

    out = tmp_path_factory.mktemp("sim")
    simulate(SimConfig(blocks=120, seed=5, rates=parse_rates("all=20")), out, progress=False)
    return out


def _run(dsn, chain, workers):
    settings = load_settings(env={}, overrides={"clickhouse.dsn": dsn, "pipeline.workers": workers})
    replay([str(chain / "blocks.jsonl.gz")], settings, progress=False)
    c = connect(dsn)
    alerts = c.query("SELECT alert_id, rule_id, address, tx_id, severity, round(risk_score, 3), details "
                     "FROM alerts FINAL ORDER BY alert_id").result_rows
    features = c.query("SELECT * FROM address_features FINAL ORDER BY address, ts").result_rows
    return alerts, features


def test_one_and_two_workers_give_identical_alerts_and_features(chdb_dsn, sim_chain):
    alerts_1, features_1 = _run(chdb_dsn, sim_chain, 1)
    alerts_2, features_2 = _run(chdb_dsn + "_w2", sim_chain, 2)
    assert len(alerts_1) > 20 and len(features_1) > 1000
    assert {r[1] for r in alerts_1} >= {"structure.mule_pass_through", "sanctioned_direct"}
    assert alerts_1 == alerts_2
    assert features_1 == features_2


def test_alerts_follow_the_contract_and_replays_do_not_duplicate_them(chdb_dsn, sim_chain):
    alerts, _ = _run(chdb_dsn, sim_chain, 1)
    c = connect(chdb_dsn)
    rows = c.query("SELECT status, source, severity, risk_score, ts <= detected_at, length(tags) "
                   "FROM alerts FINAL").result_rows
    assert all(r[0] == "confirmed" and r[1] == "block" for r in rows)
    assert all(r[2] in ("info", "low", "medium", "high", "critical") and 0 < r[3] <= 100 and r[4] for r in rows)
    again, _ = _run(chdb_dsn, sim_chain, 1)
    assert [a[0] for a in again] == [a[0] for a in alerts]
