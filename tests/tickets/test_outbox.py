"""outbox_rows: pure, deterministic, grouped by subject window, and matching the table's DDL."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.tickets import load_routing_text, outbox_rows
from pipeline.tickets.outbox import COLUMNS, OUTBOX_COLUMNS, OutboxItem
from tests.tickets.conftest import ENV, T0, make_alert, routing_yaml

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600_000


def routing(routes: str, disabled: str = ""):
    text = routing_yaml("http://127.0.0.1:9").split("routes:")[0] + "routes:\n" + routes
    if disabled:
        text = text.replace(f"  {disabled}: {{kind:", f"  {disabled}: {{enabled: false, kind:")
    return load_routing_text(text, "routing.yaml", ENV)


def by_dest(rows: list[tuple]) -> dict[str, list[OutboxItem]]:
    out: dict[str, list[OutboxItem]] = {}
    for r in rows:
        item = OutboxItem(*r)
        out.setdefault(item.destination, []).append(item)
    return out


def test_rows_are_deterministic_and_carry_the_alert():
    r = routing("  - {destinations: [hook, jira], match: {min_severity: high}}\n")
    alerts = [make_alert(i, detected_at=T0 + 5) for i in range(3)] + [make_alert(9, severity="low")]
    rows = outbox_rows(alerts, r)
    assert rows == outbox_rows(alerts, r) and len(rows) == 6  # the low alert opens nothing
    items = by_dest(rows)
    assert {i.alert_id for i in items["hook"]} == {a.alert_id for a in alerts[:3]}
    assert all(i.group_id == i.alert_id and i.state == "pending" and i.version == 0 for i in items["jira"])
    assert items["hook"][0].alert() == alerts[0]  # the payload round-trips to the same record
    assert len({i.item_key for i in items["hook"] + items["jira"]}) == 6  # one key per destination and alert
    assert all(len(r) == len(OUTBOX_COLUMNS) for r in rows)


def test_subject_groups_use_tumbling_event_time_windows():
    r = routing("  - {destinations: [jira], group: subject, window: 1h}\n")
    start = (T0 // HOUR + 1) * HOUR  # a window boundary
    alerts = [make_alert(1, address="TA", ts=start), make_alert(2, address="TA", ts=start + HOUR - 10),
              make_alert(3, address="TB", ts=start), make_alert(4, address="TA", ts=start + HOUR)]
    gids = [i.group_id for i in by_dest(outbox_rows(alerts, r))["jira"]]
    assert gids[0] == gids[1]  # same address, same window: one ticket
    assert len(set(gids)) == 3  # another address, or the next window, is another ticket
    other_route = routing("  - {name: other, destinations: [jira], group: subject, window: 1h}\n")
    assert by_dest(outbox_rows(alerts[:1], other_route))["jira"][0].group_id != gids[0]


def test_first_matching_route_wins_unless_it_continues():
    routes = ("  - {name: page, match: {min_severity: critical}, destinations: [pd], continue: CONT}\n"
              "  - {name: cases, destinations: [pd, jira]}\n")
    crit, high = make_alert(1, severity="critical"), make_alert(2, severity="high")
    stop = by_dest(outbox_rows([crit, high], routing(routes.replace("CONT", "false"))))
    assert [i.route for i in stop["pd"]] == ["page", "cases"] and [i.alert_id for i in stop["jira"]] == [high.alert_id]
    cont = by_dest(outbox_rows([crit, high], routing(routes.replace("CONT", "true"))))
    assert [i.route for i in cont["pd"]] == ["page", "cases"]  # pd once per alert, by the first route
    assert [i.alert_id for i in cont["jira"]] == [crit.alert_id, high.alert_id]


def test_disabled_destinations_get_no_rows():
    r = routing("  - {destinations: [hook, gh]}\n", disabled="gh")
    assert set(by_dest(outbox_rows([make_alert(1)], r))) == {"hook"}


def test_rule_action_routes_real_alerts_from_the_default_pack(tmp_path):
    """Real mainnet blocks through the real rules: only rules declaring ``ticket`` open tickets."""
    from pipeline.rules import load_ruleset
    from pipeline.watchlists import load_watchlists
    from tests.rules.conftest import build_mainnet_updates

    updates = build_mainnet_updates()
    target = next(u for u in updates if u.transfer.kind == "trc20_transfer" and u.role == "receiver")
    (tmp_path / "sanctions.txt").write_text(target.counterparty + "\n")
    (tmp_path / "sanctions.yaml").write_text("label: test sanctions\nseverity: critical\n")
    rs = load_ruleset([ROOT / "rules"], load_watchlists(tmp_path))
    alerts = rs.evaluate(updates)
    assert any(a.rule_id == "sanctioned_direct" for a in alerts)
    assert any(a.rule_id not in rs.ticket_rule_ids for a in alerts)  # so the filter has something to drop
    r = routing("  - {match: {rule_action: true}, destinations: [jira], group: subject, window: 6h}\n")
    rows = outbox_rows(alerts, r.with_ticket_rules(rs.ticket_rule_ids))
    assert rows and {OutboxItem(*row).alert().rule_id for row in rows} <= rs.ticket_rule_ids
    assert len(rows) == sum(a.rule_id in rs.ticket_rule_ids for a in alerts)


@pytest.mark.parametrize("table", ["ticket_outbox", "tickets"])
def test_columns_match_the_migration(storage, table):
    described = [row[0] for row in storage.query(f"DESCRIBE TABLE {storage.database}.{table}").result_rows]
    assert tuple(described) == COLUMNS[table]
