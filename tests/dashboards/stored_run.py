"""One small simulated run stored in chDB, shared by the dashboard and report tests.

150 simulated blocks (7.5 minutes, crossing an hour boundary so a model-drift window closes) plus
two unusable lines (so dead letters exist) are replayed through the full pipeline into a database
of the session's chDB directory, once per test session (~15 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.report.macros import TimeRange

HOUR_MS = 3_600_000
START_TS = 1_714_000_002_000 // HOUR_MS * HOUR_MS - 180_000  # 3 minutes before an hour boundary
_cache: dict[Path, StoredRun] = {}


@dataclass(frozen=True)
class StoredRun:
    dsn: str
    data: TimeRange  # the event-time range of the stored blocks
    wide: TimeRange  # data range up to now: covers wall-clock columns (dead_letters.seen_at) too
    address: str  # the address with the most alerts, for the drill-down variables


def stored_run(chdb_dir: Path, tmp: Path) -> StoredRun:
    if chdb_dir in _cache:
        return _cache[chdb_dir]
    from pipeline.config import load_settings
    from pipeline.report.queries import data_range
    from pipeline.runner import replay
    from pipeline.simulate import SimConfig, simulate
    from pipeline.storage.clickhouse import connect

    simulate(SimConfig(blocks=150, seed=7, start_ts=START_TS), tmp, progress=False)
    bad = tmp / "bad.jsonl"
    bad.write_text('{"not a block": true}\nthis is not json\n')
    dsn = f"chdb://{chdb_dir}?database=dashboards_sim"
    settings = load_settings(env={}, overrides={"clickhouse.dsn": dsn})
    replay([str(tmp / "blocks.jsonl.gz"), str(bad)], settings, progress=False)
    client = connect(dsn)
    data = data_range(client)
    address = client.query("SELECT address FROM alerts FINAL GROUP BY address "
                           "ORDER BY count() DESC, address LIMIT 1").result_rows[0][0]
    _compliance_and_live_rows(client, "dashboards_sim", address)
    wide = TimeRange(data.start - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=1))
    _cache[chdb_dir] = StoredRun(dsn, data, wide, address)
    return _cache[chdb_dir]


def _compliance_and_live_rows(client, db: str, address: str) -> None:
    """Rows a replay does not make: analyst actions and an export (through the audit package's own
    functions), ticket deliveries, evidence bundles and live-source health (as their writers store them)."""
    from pipeline.audit.dispositions import record_action
    from pipeline.audit.facts import export_record
    from pipeline.audit.store import AuditAppender

    alerts = client.query("SELECT alert_id, ts, address, rule_id, rule_version FROM alerts FINAL "
                          "ORDER BY risk_score DESC, alert_id LIMIT 6").result_rows
    record_action(client, db, alerts[0][0], "close", "ana", "true_positive", "confirmed with the exchange")
    record_action(client, db, alerts[1][0], "close", "ana", "false_positive", "known market maker")
    record_action(client, db, alerts[2][0], "ack", "bob")
    appender = AuditAppender(client, db)
    appender.append([export_record("ab" * 32, {"rows": 3, "format": "jsonl"}, "auditor")])
    appender.close()
    now = datetime.now(UTC)
    client.insert(f"{db}.ticket_outbox", [
        (f"webhook:{a[0]}", "webhook", "serious", a[0], a[0], a[1], a[2], "critical", "{}",
         state, 1, now, "" if state == "delivered" else "HTTP 503", "", "", now, 2)
        for a, state in zip(alerts, ("delivered", "delivered", "retry", "dead", "pending", "delivered"), strict=True)],
        column_names=["item_key", "destination", "route", "group_id", "alert_id", "ts", "address", "severity",
                      "payload", "state", "attempts", "next_attempt_at", "last_error", "external_id",
                      "external_url", "updated_at", "version"])
    client.insert(f"{db}.tickets", [
        (now - timedelta(seconds=k), f"webhook:{a[0]}", "webhook", a[0], a[0], "create", 1, outcome,
         status, "" if outcome == "delivered" else f"HTTP {status}", "", "", 120)
        for k, (a, outcome, status) in enumerate(zip(alerts[:3], ("delivered", "retry", "dead"), (201, 503, 500),
                                                     strict=True))],
        column_names=["attempted_at", "item_key", "destination", "group_id", "alert_id", "action", "attempt",
                      "outcome", "http_status", "error", "external_id", "external_url", "duration_ms"])
    mine = client.query(f"SELECT alert_id, ts, rule_id, rule_version FROM {db}.alerts FINAL "
                        "WHERE address = %(a)s", parameters={"a": address}).result_rows
    client.insert(f"{db}.evidence", [
        (a[0], a[1], address, a[2], a[3], now, '[{"tx_id": "x"}]', "{}", '{"exposure_score": 0.0}', "[]", 12)
        for a in mine],
        column_names=["alert_id", "ts", "address", "rule_id", "rule_version", "created_at", "triggers",
                      "definition", "features", "neighbourhood", "neighbourhood_rows"])
    client.insert(f"{db}.source_health", [
        ("node", now - timedelta(seconds=10 * k), 61200200, 61200181, 61200181 - k, 19 + k, 57.0 + 3 * k,
         3.1, 150, 2, 1, 0, 1, True, "HTTP 429 Too Many Requests")
        for k in range(5)],
        column_names=["source", "at", "head", "target", "last_height", "lag_blocks", "lag_s", "blocks_per_s",
                      "items_total", "errors_total", "reconnects_total", "gaps_total", "reorgs_total",
                      "connected", "last_error"])
