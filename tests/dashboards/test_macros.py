"""The macro expansion matches grafana-clickhouse-datasource (pkg/macros/macros.go, CHDatasource.ts)."""

import pytest

from pipeline.report.macros import ALL, MacroError, TimeRange, expand, utc

RNG = TimeRange(utc("2024-04-24T23:00:00Z"), utc("2024-04-24T23:10:00.250Z"))
FROM, TO = 1713999600, 1714000200


@pytest.mark.parametrize(("sql", "want"), [
    ("$__timeFilter(ts)", f"ts >= toDateTime({FROM}) AND ts <= toDateTime({TO})"),
    ("$__timeFilter_ms(ts)", f"ts >= fromUnixTimestamp64Milli({FROM}000) AND ts <= fromUnixTimestamp64Milli({TO}250)"),
    ("$__fromTime, $__toTime", f"toDateTime({FROM}), toDateTime({TO})"),
    ("$__fromTime_ms", f"fromUnixTimestamp64Milli({FROM}000)"),
    ("$__dateFilter(d)", "d >= toDate('2024-04-24') AND d <= toDate('2024-04-24')"),
    ("$__timeInterval(ts)", "toStartOfInterval(toDateTime(ts), INTERVAL 15 second)"),
    ("$__timeInterval_ms(ts)", "toStartOfInterval(toDateTime64(ts, 3), INTERVAL 15000 millisecond)"),
    ("x / $__interval_s", "x / 15"),
    ("$__timeFilter(toDateTime(ts, 'UTC'))", f"toDateTime(ts, 'UTC') >= toDateTime({FROM}) AND toDateTime(ts, 'UTC') <= toDateTime({TO})"),
])
def test_time_macros(sql, want):
    assert expand(sql, RNG) == want


def test_interval_follows_the_range_unless_given():
    assert TimeRange(RNG.start, RNG.end, interval_s=60).interval() == 60
    day = TimeRange(utc("2024-04-24T00:00:00Z"), utc("2024-04-25T00:00:00Z"))
    assert day.interval() == 3600 and RNG.interval() == 15


@pytest.mark.parametrize(("value", "want"), [
    (ALL, "1=1"), ([ALL], "1=1"), ("", "1=1"), (None, "1=1"),
    (["high"], "severity IN ('high')"), (["high", "critical"], "severity IN ('high','critical')"),
])
def test_conditional_all_and_multi_value_formatting(value, want):
    assert expand("$__conditionalAll(severity IN (${severity}), $severity)", RNG, {"severity": value}) == want


def test_single_value_is_bare_text_as_in_grafana():
    assert expand("address = '${address}' OR a = '$address'", RNG, {"address": "TAbc"}) == "address = 'TAbc' OR a = 'TAbc'"


@pytest.mark.parametrize(("sql", "message"), [
    ("$__timeFiltr(ts)", "unknown macro $__timeFiltr"),
    ("$__timeFilter", "needs 1 argument"),
    ("$__timeFilter(a, b)", "takes 1 argument"),
    ("$__timeFilter(ts", "unbalanced"),
    ("x = ${nope}", "unknown template variable $nope"),
    ("$__conditionalAll(x IN (${s}), $missing)", "unknown variable"),
])
def test_errors_name_the_problem(sql, message):
    with pytest.raises(MacroError, match=message.replace("$", r"\$")):
        expand(sql, RNG, {"s": ALL})


def test_time_range_must_be_utc_and_ordered():
    with pytest.raises(ValueError, match="before it starts"):
        TimeRange(RNG.end, RNG.start)
    with pytest.raises(MacroError, match="ISO 8601"):
        utc("yesterday")
    assert utc(1714000200).isoformat() == "2024-04-24T23:10:00+00:00"
    assert utc("1714000200000") == utc(1714000200)
