"""Check the stored alerts and evidence bundles against what the audit chain says about them.

The chain proves its own records; the tables people read are ``alerts`` and ``evidence``. Each
chained alert record carries the alert's decision (status, severity, score, rule version) and the
SHA-256 of its ``details`` and of its evidence bundle, so ClickHouse can compare them row by row:

* an alert whose current status has no audit record is **unchained** (inserted behind the
  pipeline's back, or committed by a run that stopped before chaining it: the next start chains
  it as ``reconciled``);
* an alert whose severity, score, rule, or details differ from its latest record for that status
  was **modified** in ``alerts``;
* an evidence bundle whose digest differs from the one chained (or that is gone) was **modified**
  (or **removed**).

Both checks are single queries evaluated by ClickHouse, returning at most ``limit`` offenders:
memory does not grow with the tables.
"""

from __future__ import annotations

from typing import Any

from pipeline.audit.chain import Kind
from pipeline.audit.evidence import EVIDENCE_DIGEST_SQL
from pipeline.audit.verify import Problem

_ALERT_KINDS = f"('{Kind.ALERT_CREATED}', '{Kind.ALERT_STATUS_CHANGED}')"
_FIELDS = ("severity", "rule_id", "rule_version")


def check_alerts(client: Any, database: str, limit: int = 5) -> list[Problem]:
    """Stored alerts (``FINAL``) against the latest chained record for the same (alert, status)."""
    latest = (f"SELECT subject, JSONExtractString(payload, 'status') AS st, argMax(payload, seq) AS p, "
              f"max(seq) AS s, argMax(record_id, seq) AS rid FROM {database}.audit_log "
              f"WHERE kind IN {_ALERT_KINDS} GROUP BY subject, st")
    checks = ", ".join(f"JSONExtractString(c.p, '{f}') != a.{f}, '{f}'" for f in _FIELDS)
    what = (f"multiIf(c.s = 0, 'unchained', {checks}, "
            "abs(JSONExtractFloat(c.p, 'risk_score') - a.risk_score) > 0.01, 'risk_score', "
            "JSONHas(c.p, 'details_sha256') AND JSONExtractString(c.p, 'details_sha256') != "
            "lower(hex(SHA256(a.details))), 'details', '')")
    shown = ("multiIf(what = 'details', {d}, what = 'risk_score', {r}, what = 'severity', {sev}, "
             "what = 'rule_id', {rule}, what = 'rule_version', {ver}, '')")
    chained = shown.format(d="JSONExtractString(c.p, 'details_sha256')",
                           r="toString(JSONExtractFloat(c.p, 'risk_score'))",
                           sev="JSONExtractString(c.p, 'severity')", rule="JSONExtractString(c.p, 'rule_id')",
                           ver="JSONExtractString(c.p, 'rule_version')")
    stored = shown.format(d="lower(hex(SHA256(a.details)))", r="toString(a.risk_score)",
                          sev="toString(a.severity)", rule="toString(a.rule_id)", ver="a.rule_version")
    rows = client.query(
        f"SELECT a.alert_id, a.status, c.s, c.rid, {what} AS what, {chained} AS chained, {stored} AS stored "
        f"FROM (SELECT * FROM {database}.alerts FINAL) AS a LEFT JOIN ({latest}) AS c "
        "ON c.subject = a.alert_id AND c.st = a.status "
        f"WHERE what != '' ORDER BY a.ts, a.alert_id LIMIT {int(limit)}").result_rows
    out = []
    for alert_id, status, seq, rid, what, chained, stored in rows:
        if what == "unchained":
            out.append(Problem("unchained", 0, "", (
                f"unchained: alert {alert_id} (status {status}) is in {database}.alerts without an audit "
                "record: inserted behind the pipeline's back, or committed by a run that stopped before "
                "chaining it (the next pipeline start chains it, marked reconciled)")))
        else:
            out.append(Problem("modified", int(seq), rid, (
                f"modified: alert {alert_id} in {database}.alerts has {what} {stored!r}, but its audit "
                f"record seq {seq} (record_id {rid}) says {chained!r}")))
    return out


def check_evidence(client: Any, database: str, limit: int = 5) -> list[Problem]:
    """Evidence bundles against the digest chained in each alert's ``alert_created`` record."""
    rows = client.query(
        "SELECT c.subject, c.s, c.rid, e.alert_id = '' AS gone FROM (SELECT subject, "
        f"argMax(payload, seq) AS p, max(seq) AS s, argMax(record_id, seq) AS rid FROM {database}.audit_log "
        f"WHERE kind = '{Kind.ALERT_CREATED}' GROUP BY subject HAVING JSONHas(p, 'evidence_sha256')) AS c "
        f"LEFT JOIN (SELECT alert_id, {EVIDENCE_DIGEST_SQL} AS d FROM {database}.evidence FINAL) AS e "
        "ON e.alert_id = c.subject "
        "WHERE e.alert_id = '' OR e.d != JSONExtractString(c.p, 'evidence_sha256') "
        f"ORDER BY c.s LIMIT {int(limit)}").result_rows
    out = []
    for alert_id, seq, rid, gone in rows:
        what = "removed" if gone else "modified"
        out.append(Problem(what, int(seq), rid, (
            f"{what}: the evidence bundle of alert {alert_id} in {database}.evidence "
            f"{'is gone' if gone else 'differs from the digest'} chained at seq {seq} (record_id {rid})")))
    return out
