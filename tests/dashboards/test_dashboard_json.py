"""Every dashboard: loads, unique uids and titles, datasource only through ${datasource}, macros expand."""

import json
import re

import pytest

from pipeline.report.dashboards import DEFAULT_DIR, PLUGIN_TYPE, load_dashboards
from pipeline.report.macros import TimeRange, expand, utc

EXPECTED = {"tronrisk-wall", "tronrisk-triage", "tronrisk-compliance", "tronrisk-health"}
RNG = TimeRange(utc("2024-04-24T22:57:00Z"), utc("2024-04-24T23:04:28Z"))


def _datasource_refs(node, path="$"):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "datasource":
                yield path, v
            yield from _datasource_refs(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _datasource_refs(v, f"{path}[{i}]")


def test_every_dashboard_loads_with_a_unique_uid_and_title():
    boards = load_dashboards()
    assert {b.uid for b in boards} == EXPECTED
    assert len({b.title for b in boards}) == len(boards) and all(b.title.startswith("TRON risk") for b in boards)
    for b in boards:
        assert len(b.uid) <= 40 and re.fullmatch(r"[a-z0-9-]+", b.uid)
        ids = [p.id for p in b.panels]
        assert len(ids) == len(set(ids)) and all(i > 0 for i in ids), b.path
        assert all(p.title for p in b.panels), b.path
        assert sum(p.has_query for p in b.panels) >= 2, b.path


def test_datasources_are_only_the_variable():
    for path in sorted(DEFAULT_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        (ds_var,) = [v for v in doc["templating"]["list"] if v["type"] == "datasource"]
        assert ds_var["name"] == "datasource" and ds_var["query"] == PLUGIN_TYPE
        refs = list(_datasource_refs(doc["panels"])) + list(_datasource_refs(doc["templating"]["list"]))
        assert len(refs) >= 2 * sum(1 for p in doc["panels"] if p.get("targets"))
        for where, ref in refs:
            assert ref == {"type": PLUGIN_TYPE, "uid": "${datasource}"}, f"{path.name} {where}: {ref}"
        for panel in doc["panels"]:
            for t in panel.get("targets", []):
                assert t["datasource"]["uid"] == "${datasource}" and t["editorType"] == "sql"
                assert t["queryType"] in ("table", "timeSeries")


def test_wall_display_auto_refreshes_with_big_numbers():
    (wall,) = [b for b in load_dashboards() if b.uid == "tronrisk-wall"]
    assert wall.raw["refresh"] in ("10s", "30s", "1m")
    stats = [p for p in wall.panels if p.type == "stat"]
    assert len(stats) >= 4
    assert all(p.raw["options"]["text"]["valueSize"] >= 48 for p in stats)
    assert {"timeseries", "piechart", "bargauge", "barchart"} <= {p.type for p in wall.panels}


def test_triage_is_filterable_and_drills_down_to_the_address():
    (triage,) = [b for b in load_dashboards() if b.uid == "tronrisk-triage"]
    assert {"severity", "rule", "status", "disposition", "address"} <= set(triage.variables)
    table = triage.panel("Alerts")
    for var in ("severity", "rule", "status", "disposition", "address"):
        assert f"${{{var}:percentencode}}" in table.sql  # see test_injection.py
    links = json.dumps(table.raw["fieldConfig"]["overrides"])
    assert "var-address=${__value.raw}" in links and "/d/tronrisk-triage/" in links
    for title in ("Address features", "Transfers of the address", "Evidence", "Evidence bundles"):
        assert "decodeURLComponent('${address:percentencode}') AS subject" in triage.panel(title).sql


@pytest.mark.parametrize("board", sorted(EXPECTED))
def test_every_panel_uses_the_plugin_macros_and_expands_completely(board):
    (b,) = [d for d in load_dashboards() if d.uid == board]
    used = set()
    for p in b.panels:
        if not p.has_query:
            continue
        used |= set(re.findall(r"\$__(\w+)", p.sql))
        values = {**b.variables, "address": "TXYZ"}
        sql = expand(p.sql, RNG, values)
        assert not re.search(r"\$[\w{]", sql), f"{p.title}: {sql}"  # a regex's end anchor may stay
        assert "${datasource}" not in p.sql
    assert "timeFilter" in used
    if board in ("tronrisk-wall", "tronrisk-health"):
        assert {"timeInterval", "interval_s"} & used
