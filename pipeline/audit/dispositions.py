"""Analyst actions on alerts (ack, close with a disposition) and the reads behind ``alerts``.

An action is written twice on purpose: to the audit chain first (the trail is what is proven),
then to ``dispositions`` (history kept; the latest per alert, by time, is the alert's review
state). Both writes are idempotent on the action's record id, so a retried command is harmless.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from pipeline.audit.chain import FIELDS
from pipeline.audit.facts import disposition_record
from pipeline.audit.keys import Signing
from pipeline.audit.store import COLUMNS, AuditAppender
from pipeline.errors import ConfigError, InputError
from pipeline.records import FEATURE_NAMES, SEVERITIES

ACTIONS = ("ack", "close")
DISPOSITIONS = ("true_positive", "false_positive", "needs_review")
ALERT_STATUSES = ("pending", "confirmed", "dropped")
REVIEW_STATES = ("open", "acked", "closed")
_ALERT_COLS = ("alert_id", "ts", "detected_at", "block_number", "tx_id", "address", "rule_id",
               "rule_version", "severity", "risk_score", "status", "source", "title", "tags", "details")
_MS = {"ts", "detected_at"}


def _select(cols: tuple[str, ...], prefix: str = "") -> str:
    return ", ".join(f"toUnixTimestamp64Milli({prefix}{c}) AS {c}" if c in _MS else f"{prefix}{c}" for c in cols)


def record_action(client: Any, database: str, alert_id: str, action: str, analyst: str,
                  disposition: str = "", note: str = "", at: int | None = None,
                  signing: Signing | None = None) -> dict[str, Any]:
    """Chain and store one analyst action (the head signed with ``signing``); returns it.
    Unknown alert -> ``InputError``."""
    if action not in ACTIONS:
        raise ConfigError(f"action {action!r}: expected one of {', '.join(ACTIONS)}")
    if action == "close" and disposition not in DISPOSITIONS:
        raise ConfigError(f"--disposition {disposition!r}: expected one of {', '.join(DISPOSITIONS)}")
    if not analyst.strip():
        raise ConfigError("--by: the analyst's name is required")
    found = client.query(f"SELECT address FROM {database}.alerts WHERE alert_id = %(a)s LIMIT 1",
                         parameters={"a": alert_id}).result_rows
    if not found:
        raise InputError(f"alert {alert_id}: not found in {database}.alerts")
    at = at if at is not None else time.time_ns() // 1_000_000
    rec = disposition_record(alert_id, found[0][0], action, disposition, analyst, note, at)
    appender = AuditAppender(client, database, signing=signing)
    rows = appender.append([rec])
    appender.close()
    client.insert(f"{database}.dispositions", [(alert_id, at, action, disposition, analyst, note, rec.record_id)],
                  column_names=COLUMNS["dispositions"])
    return {"alert_id": alert_id, "action": action, "disposition": disposition, "analyst": analyst,
            "note": note, "at": at, "record_id": rec.record_id, "seq": rows[0].seq if rows else None}


_LATEST = ("SELECT alert_id, argMax(action, at) AS action, argMax(disposition, at) AS disposition, "
           "argMax(analyst, at) AS analyst, toUnixTimestamp64Milli(max(at)) AS reviewed_at "
           "FROM {db}.dispositions FINAL GROUP BY alert_id")


def list_alerts(client: Any, database: str, status: str | None = None, severity: str | None = None,
                rule: str | None = None, address: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Newest alerts first, each with its latest review (action, disposition, analyst, time)."""
    where, params = ["1"], {"limit": int(limit)}
    if severity:
        if severity not in SEVERITIES:
            raise ConfigError(f"--severity {severity!r}: expected one of {', '.join(SEVERITIES)}")
        where.append("severity = %(sev)s")
        params["sev"] = severity
    if rule:
        where.append("rule_id = %(rule)s")
        params["rule"] = rule
    if address:
        where.append("address = %(addr)s")
        params["addr"] = address
    review = ""
    if status:
        if status in ALERT_STATUSES:
            where.append("status = %(st)s")
            params["st"] = status
        elif status in REVIEW_STATES:
            review = {"open": "WHERE d.action = ''", "acked": "WHERE d.action = 'ack'",
                      "closed": "WHERE d.action = 'close'"}[status]
        else:
            raise ConfigError(f"--status {status!r}: expected one of "
                              f"{', '.join(ALERT_STATUSES + REVIEW_STATES)}")
    cols = ("alert_id", "ts", "address", "rule_id", "severity", "risk_score", "status", "title")
    sql = (f"SELECT {_select(cols, 'a.')}, d.action, d.disposition, d.analyst, d.reviewed_at FROM "
           f"(SELECT * FROM {database}.alerts FINAL WHERE {' AND '.join(where)}) AS a "
           f"LEFT JOIN ({_LATEST.format(db=database)}) AS d ON a.alert_id = d.alert_id "
           f"{review} ORDER BY ts DESC, alert_id LIMIT %(limit)s")
    names = (*cols, "action", "disposition", "analyst", "reviewed_at")
    return [dict(zip(names, r)) for r in client.query(sql, parameters=params).result_rows]


def show_alert(client: Any, database: str, alert_id: str) -> dict[str, Any]:
    """Everything an analyst needs about one alert: evidence, transfers, features, history."""
    rows = client.query(f"SELECT {_select(_ALERT_COLS)} FROM {database}.alerts FINAL "
                        "WHERE alert_id = %(a)s", parameters={"a": alert_id}).result_rows
    if not rows:
        raise InputError(f"alert {alert_id}: not found in {database}.alerts")
    alert = dict(zip(_ALERT_COLS, rows[0]))
    try:
        alert["details"] = orjson.loads(alert["details"]) if alert["details"] else {}
    except orjson.JSONDecodeError:
        pass
    from pipeline.audit.evidence import _SELECT, TRANSFER_COLUMNS

    transfers = [dict(zip(TRANSFER_COLUMNS, r)) for r in client.query(
        f"SELECT {_SELECT} FROM {database}.transfers WHERE tx_id = %(t)s LIMIT 1 BY id",
        parameters={"t": alert["tx_id"]}).result_rows]
    feats = client.query(
        f"SELECT toUnixTimestamp64Milli(ts), block_number, {', '.join(FEATURE_NAMES)} FROM "
        f"{database}.address_features WHERE address = %(a)s AND ts <= fromUnixTimestamp64Milli("
        "toInt64(%(t)s), 'UTC') ORDER BY ts DESC LIMIT 1",
        parameters={"a": alert["address"], "t": alert["ts"]}).result_rows
    features = ({"ts": feats[0][0], "block_number": feats[0][1], "values": dict(zip(FEATURE_NAMES, feats[0][2:]))}
                if feats else None)
    ev = client.query(
        f"SELECT triggers, definition, features, neighbourhood, neighbourhood_rows, "
        f"toUnixTimestamp64Milli(created_at) FROM {database}.evidence FINAL WHERE alert_id = %(a)s",
        parameters={"a": alert_id}).result_rows
    evidence = None
    if ev:
        evidence = {"triggers": orjson.loads(ev[0][0]), "definition": orjson.loads(ev[0][1]),
                    "features": orjson.loads(ev[0][2]), "neighbourhood": orjson.loads(ev[0][3]),
                    "neighbourhood_rows": ev[0][4], "created_at": ev[0][5]}
    history = [dict(zip(("at", "action", "disposition", "analyst", "note", "record_id"), r)) for r in client.query(
        f"SELECT toUnixTimestamp64Milli(at), action, disposition, analyst, note, record_id FROM "
        f"{database}.dispositions FINAL WHERE alert_id = %(a)s ORDER BY at", parameters={"a": alert_id}).result_rows]
    cols = ", ".join("toUnixTimestamp64Milli(ts)" if f == "ts" else f for f in FIELDS[:8])
    audit = [dict(zip(FIELDS[:8], r)) for r in client.query(
        f"SELECT {cols} FROM {database}.audit_log WHERE subject = %(a)s ORDER BY seq",
        parameters={"a": alert_id}).result_rows]
    return {"alert": alert, "review": history[-1] if history else None, "history": history,
            "transfers": transfers, "features": features, "evidence": evidence, "audit": audit}
