"""Dashboard variables cannot inject SQL (finding 9): formats as Grafana applies them, and the
review's crafted address replayed against every triage panel on real ClickHouse (chDB).

The finding: the triage dashboard pasted ``'${address}'`` into its SQL; a crafted value read the
analysts' names and notes from ``dispositions``. Grafana's ``sqlstring`` format is not enough for
ClickHouse either (it doubles ``'`` but leaves ``\\``, and ClickHouse reads ``\\'`` as an escaped
quote), so every variable goes through ``percentencode`` — output alphabet ``[A-Za-z0-9-_.~%]`` —
and is decoded by ClickHouse, and the address is used only if it is a base58 TRON address.
"""

from __future__ import annotations

import re

import pytest

from pipeline.report.dashboards import load_dashboards
from pipeline.report.macros import ALL, MacroError, TimeRange, expand, format_value, utc
from pipeline.report.queries import run_panel

LEAK = "UNION ALL SELECT at AS ts, analyst AS rule_id, disposition AS severity, 0 AS risk, note AS title, " \
       "alert_id AS details FROM dispositions --"
QUOTE = f"x' {LEAK}"  # the review's value
BACKSLASH = f"x\\' {LEAK}"  # the same through sqlstring
# The Evidence panel as it was before the fix, and as it would be with sqlstring alone.
OLD_EVIDENCE = ("SELECT ts, rule_id, severity, round(risk_score) AS risk, title, details\nFROM alerts FINAL\n"
                "WHERE address = '${address}' AND $__timeFilter(ts)\nORDER BY ts DESC\nLIMIT 100")
SQLSTRING_EVIDENCE = OLD_EVIDENCE.replace("'${address}'", "${address:sqlstring}")
ANALYSTS = {"ana", "bob"}
NOTES = {"confirmed with the exchange", "known market maker"}


def test_formats_match_grafanas_format_registry():
    assert format_value("it's \"x\"", "sqlstring") == "'it''s \\\"x\\\"'"
    assert format_value(["a'b", "c"], "sqlstring") == "'a''b','c'"
    assert format_value("it's", "singlequote") == "'it\\'s'"
    assert format_value("a b'()*!~é\\", "percentencode") == "a%20b%27%28%29%2A%21~%C3%A9%5C"
    assert format_value(["high", "critical"], "percentencode") == "%7Bhigh%2Ccritical%7D"
    assert format_value(["a", "b"], "csv") == "a,b" and format_value(["a", "b"], "pipe") == "a|b"
    assert format_value(["a", "b"], None) == "'a','b'" and format_value("T1", None) == "T1"  # the plugin's own
    assert format_value(ALL, "percentencode") == "%7B%7D"
    with pytest.raises(MacroError, match="unknown variable format :sqlstrng"):
        format_value("x", "sqlstrng")


@pytest.mark.parametrize("value", [QUOTE, BACKSLASH, "T' OR 1=1 --", "\\", "'", "%27", "T" + "1" * 33 + "'"])
def test_percentencode_leaves_nothing_that_can_end_a_clickhouse_string(value):
    assert re.fullmatch(r"[A-Za-z0-9\-_.~%]*", format_value(value, "percentencode"))


def _references(sql: str) -> list[tuple[int, str, str]]:
    return [(m.start(), m.group(1) or m.group(3), m.group(2) or "")
            for m in re.finditer(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)", sql)]


def test_every_variable_in_every_panel_is_percent_encoded_and_the_address_constrained():
    checked = 0
    for board in load_dashboards():
        for panel in board.panels:
            for at, name, fmt in _references(panel.sql):
                if name == "datasource":
                    continue
                before = panel.sql[:at]
                if fmt == "" and re.search(r"\$__conditionalAll\([^$]*,\s*$", before):
                    continue  # the variable named as $__conditionalAll's second argument: never interpolated
                assert fmt == "percentencode" and before.endswith("decodeURLComponent('"), \
                    f"{board.uid} {panel.title!r}: ${name} must be decodeURLComponent('${{{name}:percentencode}}')"
                checked += 1
            if "address:percentencode" in panel.sql:
                assert "match(subject, '^T[1-9A-HJ-NP-Za-km-z]{33}$')" in panel.sql, panel.title
    assert checked >= 10


def test_finding_9_the_crafted_address_read_dispositions_before_the_fix(client, run):
    """The payload is live: against the old SQL (and against sqlstring alone) it leaks."""
    for sql, value in ((OLD_EVIDENCE, QUOTE), (SQLSTRING_EVIDENCE, BACKSLASH)):
        rows = client.query(expand(sql, run.data, {"address": value})).result_rows
        assert ANALYSTS <= {r[1] for r in rows} and NOTES <= {r[4] for r in rows}, sql


TRIAGE = [p for b in load_dashboards() if b.uid == "tronrisk-triage" for p in b.panels if p.has_query]


@pytest.mark.parametrize("panel", TRIAGE, ids=[p.title for p in TRIAGE])
@pytest.mark.parametrize("value", [QUOTE, BACKSLASH], ids=["quote", "backslash"])
def test_finding_9_the_crafted_address_reads_nothing_now(client, run, panel, value):
    (board,) = [b for b in load_dashboards() if b.uid == "tronrisk-triage"]
    data = run_panel(client, panel, run.wide, {**board.variables, "address": value})
    cells = {c for r in data.rows for c in r if isinstance(c, str)}
    assert not (cells & (ANALYSTS | NOTES)), f"{panel.title}: {data.sql}"
    if panel.title != "Alerts":
        assert data.rows == []  # not a TRON address: matches nothing
    else:
        assert "dispositions --" not in data.sql.split("decodeURLComponent('", 1)[0]


def test_crafted_multi_values_read_nothing_either(client, run):
    (board,) = [b for b in load_dashboards() if b.uid == "tronrisk-triage"]
    table = board.panel("Alerts")
    values = {**board.variables, "address": "", "severity": ["high", QUOTE], "rule": [BACKSLASH],
              "status": ["confirmed') OR 1=1 --"], "disposition": [ALL]}
    data = run_panel(client, table, run.data, values)
    assert data.rows == []  # no rule or status is called that
    only_high = run_panel(client, table, run.data, {**values, "rule": ALL, "status": ALL})
    assert only_high.rows and {r[1] for r in only_high.rows} == {"high"}  # the crafted severity selects nothing


def test_a_real_address_still_drills_down(client, run):
    (board,) = [b for b in load_dashboards() if b.uid == "tronrisk-triage"]
    rng = TimeRange(utc(run.data.start), utc(run.data.end))
    data = run_panel(client, board.panel("Transfers of the address"), rng, {**board.variables, "address": run.address})
    assert data.rows and all(run.address in (r[3], run.address) for r in data.rows)
