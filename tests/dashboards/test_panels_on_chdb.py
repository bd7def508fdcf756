"""Every panel's SQL, expanded as Grafana would, runs on real ClickHouse (chDB) after a simulated
run and returns the columns its panel type needs, with rows. Nothing is skipped: a panel on a
missing table or column fails here."""

import pytest

from pipeline.report.dashboards import load_dashboards
from pipeline.report.macros import ALL
from pipeline.report.queries import is_numeric_type, is_time_type, run_panel

PANELS = [(b, p) for b in load_dashboards() for p in b.panels if p.has_query]


def _values(board, run):
    values = dict(board.variables)
    if "address" in values:
        values["address"] = run.address  # the drill-down panels need an address with history
    return values


def check_shape(panel, data):
    """The columns a Grafana panel of this type needs."""
    assert data.rows, f"{panel.title}: no rows for\n{data.sql}"
    numeric = [c for c, t in zip(data.columns, data.types, strict=True) if is_numeric_type(t)]
    text = [c for c, t in zip(data.columns, data.types, strict=True) if not is_numeric_type(t) and not is_time_type(t)]
    if panel.type == "timeseries":
        assert "time" in data.columns and is_time_type(data.types[data.columns.index("time")]), data.columns
        assert numeric, f"{panel.title}: a time series needs a numeric column: {data.columns}"
        times = data.column("time")
        assert times == sorted(times), f"{panel.title}: time must be ascending"
    elif panel.type == "stat":
        assert numeric and len(data.rows) == 1, (data.columns, len(data.rows))
    elif panel.type in ("piechart", "bargauge", "barchart"):
        assert text and numeric, f"{panel.title}: needs a label column and a value column: {data.types}"
        pattern = panel.raw["options"].get("reduceOptions", {}).get("fields", "")
        if pattern:
            assert pattern.strip("/^$") in numeric
        xfield = panel.raw["options"].get("xField")
        if xfield:
            assert xfield in text
    elif panel.type == "table":
        assert len(data.columns) >= 3
    else:
        pytest.fail(f"{panel.title}: panel type {panel.type} has no check")


@pytest.mark.parametrize(("board", "panel"), PANELS, ids=[f"{b.uid}:{p.title}" for b, p in PANELS])
def test_panel_runs_and_has_the_columns_its_type_needs(client, run, board, panel):
    rng = run.wide if board.uid in ("tronrisk-health", "tronrisk-compliance") else run.data
    check_shape(panel, run_panel(client, panel, rng, _values(board, run)))


def test_panels_also_run_over_the_wide_range(client, run):
    """A range spanning years (event time and wall clock) still expands and runs everywhere."""
    for board, panel in PANELS:
        run_panel(client, panel, run.wide, _values(board, run))


def test_triage_filters_narrow_the_alert_table(client, run):
    (b,) = [d for d in load_dashboards() if d.uid == "tronrisk-triage"]
    table = b.panel("Alerts")
    base = {**b.variables, "address": ""}
    everything = run_panel(client, table, run.data, base)
    assert base["severity"] == ALL and len(everything.rows) > 20
    critical = run_panel(client, table, run.data, {**base, "severity": ["critical"]})
    assert 0 < len(critical.rows) < len(everything.rows)  # the structural detectors raise high and critical
    assert set(critical.column("severity")) == {"critical"}
    rule = everything.column("rule_id")[0]
    one_rule = run_panel(client, table, run.data, {**base, "rule": [rule]})
    assert set(one_rule.column("rule_id")) == {rule}
    assert len(one_rule.rows) == everything.column("rule_id").count(rule)
    mine = run_panel(client, table, run.data, {**base, "address": run.address})
    assert mine.rows and set(mine.column("address")) == {run.address}
    closed = run_panel(client, table, run.data, {**base, "disposition": ["true_positive", "false_positive"]})
    assert sorted(closed.column("review")) == ["false_positive", "true_positive"]
    open_ = run_panel(client, table, run.data, {**base, "disposition": ["unreviewed"]})
    assert len(open_.rows) == len(everything.rows) - 3
    nothing = run_panel(client, table, run.data, {**base, "status": ["dropped"]})
    assert nothing.rows == []  # a replay confirms every alert


def test_wall_numbers_agree_with_the_tables(client, run):
    (wall,) = [d for d in load_dashboards() if d.uid == "tronrisk-wall"]
    by_sev = run_panel(client, wall.panel("Alerts in the last hour"), run.data, wall.variables)
    direct = dict(client.query("SELECT severity, count() FROM alerts FINAL GROUP BY severity").result_rows)
    for col, value in zip(by_sev.columns, by_sev.rows[0], strict=True):
        assert value == direct.get(col, 0), col  # the run is shorter than an hour
    life = run_panel(client, wall.panel("Pending vs confirmed"), run.data, wall.variables)
    assert dict(zip(life.columns, life.rows[0], strict=True))["confirmed"] == sum(direct.values())
    tps = run_panel(client, wall.panel("Transactions / s"), run.data, wall.variables).rows[0][0]
    assert 20 < tps < 2000
    over_time = run_panel(client, wall.panel("Alerts over time by rule"), run.data, wall.variables)
    assert sum(over_time.column("alerts")) == sum(direct.values())
