"""The post-commit hook in the real dataflow: every alert chained once, with evidence, over replays."""

from __future__ import annotations

from pipeline.analytics import build_analytics
from pipeline.assemble import analytics_spec
from pipeline.audit.chain import Kind
from pipeline.audit.check import verify_clickhouse
from pipeline.audit.hook import audit_hook
from pipeline.config import load_settings
from pipeline.runner import replay
from pipeline.storage.clickhouse import connect


def test_replayed_run_chains_each_alert_once_with_its_evidence(chdb_dsn, tmp_path):
    from pipeline.simulate import SimConfig, parse_rates, simulate

    simulate(SimConfig(blocks=60, seed=5, rates=parse_rates("all=20")), tmp_path, progress=False)
    settings = load_settings(env={}, overrides={"clickhouse.dsn": chdb_dsn})
    spec = analytics_spec(settings)
    for _ in range(2):  # the second run is a replay of the same input
        hook = audit_hook(chdb_dsn, spec.ruleset, spec.scorer)
        replay([str(tmp_path / "blocks.jsonl.gz")], settings, progress=False,
               analytics=build_analytics(spec), on_commit=hook)
        hook.close()
    c = connect(chdb_dsn)
    alerts = {r[0] for r in c.query("SELECT alert_id FROM alerts FINAL").result_rows}
    assert len(alerts) > 5
    kinds = c.query("SELECT kind, count(), uniqExact(subject) FROM audit_log GROUP BY kind").result_rows
    by_kind = {k: (n, u) for k, n, u in kinds}
    assert by_kind[Kind.ALERT_CREATED] == (len(alerts), len(alerts))
    assert by_kind[Kind.RULES_LOADED][0] == len(spec.ruleset.rules)
    assert Kind.ALERT_STATUS_CHANGED not in by_kind
    evidence = c.query("SELECT alert_id, length(JSONExtractArrayRaw(triggers)), neighbourhood_rows, "
                       "JSONExtractString(definition, 'version') FROM evidence FINAL").result_rows
    assert {r[0] for r in evidence} == alerts
    assert all(r[1] >= 1 and r[2] >= 1 and r[3] for r in evidence), [r for r in evidence if not r[2]]
    assert verify_clickhouse(c, c.database).ok
