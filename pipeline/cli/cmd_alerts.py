"""``alerts``: the analyst's view — list, show (with evidence), ack and close alerts.

* ``alerts list [--status S] [--severity S] [--rule R] [--address A] [--limit N]``: newest first,
  with the latest review next to each alert (``--status`` takes a lifecycle status
  pending|confirmed|dropped or a review state open|acked|closed).
* ``alerts show ALERT_ID``: the alert, its details JSON, the triggering transfers, the subject's
  features at detection time, the evidence bundle, the review history and the audit records.
* ``alerts ack ALERT_ID --by NAME [--note TEXT]`` and
  ``alerts close ALERT_ID --disposition true_positive|false_positive|needs_review --by NAME --note TEXT``:
  recorded in the audit chain and in ``dispositions`` (history kept, latest wins).

With the embedded chDB these need the pipeline stopped (one process per data directory); with a
ClickHouse server they work while it runs.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from pipeline.audit.dispositions import ALERT_STATUSES, DISPOSITIONS, REVIEW_STATES


def _storage(args: argparse.Namespace) -> tuple[Any, str]:
    from pipeline.config import load_settings
    from pipeline.storage.clickhouse import open_storage

    settings = load_settings(args.config, overrides={"clickhouse.dsn": args.clickhouse})
    client, dsn = open_storage(settings.clickhouse.dsn)
    return client, dsn.database


def _signing(args: argparse.Namespace):
    """The audit key that signs the chain's head after an analyst action ([audit] settings)."""
    from pipeline.audit.keys import signing_for
    from pipeline.config import load_settings

    settings = load_settings(args.config, overrides={"clickhouse.dsn": args.clickhouse})
    return signing_for(settings.audit, settings.clickhouse.dsn)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clickhouse", metavar="DSN",
                   help="chdb://PATH (default from settings, chdb://./data/chdb) or http(s)://user:pw@host:port/db")
    p.add_argument("--config", metavar="FILE", help="TOML settings file (default ./tronrisk.toml if present)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("alerts", help="list, show, acknowledge and close alerts",
                              description="Review alerts: list, show with evidence, ack, close with a disposition.")
    sub = p.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)

    ls = sub.add_parser("list", help="newest alerts with their review state",
                        description="Newest alerts first, with the latest review next to each.")
    ls.add_argument("--status", choices=ALERT_STATUSES + REVIEW_STATES,
                    help="lifecycle status (pending|confirmed|dropped) or review state (open|acked|closed)")
    ls.add_argument("--severity", help="info|low|medium|high|critical")
    ls.add_argument("--rule", help="rule id (anomaly models: anomaly.NAME)")
    ls.add_argument("--address", help="subject address (base58)")
    ls.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    ls.add_argument("--json", action="store_true", help="JSON Lines instead of a table")
    _common(ls)
    ls.set_defaults(func=cmd_list)

    sh = sub.add_parser("show", help="one alert with its evidence",
                        description="The alert, its evidence (details, triggering transfers, features at "
                                    "detection time, neighbourhood), review history and audit records.")
    sh.add_argument("alert_id")
    sh.add_argument("--json", action="store_true", help="one JSON document instead of text")
    sh.add_argument("--neighbourhood", type=int, default=20, metavar="N",
                    help="print at most N neighbourhood transfers (default 20; --json prints all)")
    _common(sh)
    sh.set_defaults(func=cmd_show)

    ack = sub.add_parser("ack", help="acknowledge an alert", description="Record that NAME took the alert.")
    ack.add_argument("alert_id")
    ack.add_argument("--by", required=True, metavar="NAME", help="the analyst")
    ack.add_argument("--note", default="", metavar="TEXT")
    _common(ack)
    ack.set_defaults(func=cmd_ack)

    close = sub.add_parser("close", help="close an alert with a disposition",
                           description="Record the analyst's disposition; kept in the audit chain.")
    close.add_argument("alert_id")
    close.add_argument("--disposition", required=True, choices=DISPOSITIONS)
    close.add_argument("--by", required=True, metavar="NAME", help="the analyst")
    close.add_argument("--note", required=True, metavar="TEXT", help="why (kept in the audit trail)")
    _common(close)
    close.set_defaults(func=cmd_close)


def _time(ms: Any) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _review(r: dict[str, Any] | None) -> str:
    if not r or not r.get("action"):
        return "open"
    state = "closed" if r["action"] == "close" else "acked"
    return f"{state}{' ' + r['disposition'] if r.get('disposition') else ''} by {r['analyst']}"


def cmd_list(args: argparse.Namespace) -> int:
    from pipeline.audit.dispositions import list_alerts
    from pipeline.cli.cmd_rules import _table

    client, db = _storage(args)
    rows = list_alerts(client, db, args.status, args.severity, args.rule, args.address, args.limit)
    if args.json:
        for r in rows:
            print(json.dumps(r, default=str))
        return 0
    if not rows:
        print("no alerts match")
        return 0
    table = [[r["alert_id"], _time(r["ts"]), r["severity"], f"{r['risk_score']:.0f}", r["status"],
              r["rule_id"], r["address"], _review(r)] for r in rows]
    print(_table(table, ["alert_id", "time (UTC)", "severity", "risk", "status", "rule", "address", "review"]))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from pipeline.audit.dispositions import show_alert

    client, db = _storage(args)
    info = show_alert(client, db, args.alert_id)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    a = info["alert"]
    print(f"alert {a['alert_id']}  {a['severity']}  risk {a['risk_score']:.0f}  {a['status']}  ({a['source']})")
    print(f"  {a['title']}")
    print(f"  rule {a['rule_id']} version {a['rule_version']}  subject {a['address']}")
    print(f"  event time {_time(a['ts'])} UTC  block {a['block_number']}  tx {a['tx_id']}")
    print(f"  review: {_review(info['review'])}")
    print("details:")
    print(_indent(json.dumps(a["details"], indent=2, sort_keys=True, default=str)))
    print(f"triggering transfers ({len(info['transfers'])}):")
    for t in info["transfers"]:
        print(f"  {t['id']}  {t['kind']}  {t['from_address']} -> {t['to_address']}  {t['amount']} "
              f"{t['symbol']}  (${t['amount_usd']:,.2f})  {'ok' if t['success'] else 'FAILED'}")
    f = info["features"]
    print("features at detection time:" if f else "features at detection time: none stored")
    if f:
        print(_indent(json.dumps(f, indent=2, default=str)))
    ev = info["evidence"]
    if ev is None:
        print("evidence bundle: none stored (alert raised before the audit trail was enabled)")
    else:
        print(f"evidence bundle (written {_time(ev['created_at'])} UTC):")
        print("  definition:")
        print(_indent(json.dumps(ev["definition"], indent=2, sort_keys=True, default=str), 4))
        print(f"  neighbourhood: {ev['neighbourhood_rows']} transfers in the window"
              f"{f' (first {args.neighbourhood})' if ev['neighbourhood_rows'] > args.neighbourhood else ''}")
        for t in ev["neighbourhood"][:args.neighbourhood]:
            print(f"    hop {t.get('hop', 1)}  {_time(t['ts'])}  {t['from_address']} -> {t['to_address']}  "
                  f"{t['amount']} {t['symbol']}")
    print(f"review history ({len(info['history'])}):")
    for h in info["history"]:
        print(f"  {_time(h['at'])}  {h['action']}  {h['disposition'] or '-'}  by {h['analyst']}: {h['note']}")
    print(f"audit records ({len(info['audit'])}):")
    for r in info["audit"]:
        print(f"  seq {r['seq']}  {_time(r['ts'])}  {r['kind']}  by {r['actor']}")
    return 0


def _indent(text: str, n: int = 2) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def cmd_ack(args: argparse.Namespace) -> int:
    from pipeline.audit.dispositions import record_action

    client, db = _storage(args)
    r = record_action(client, db, args.alert_id, "ack", args.by, note=args.note, signing=_signing(args))
    print(f"acked {r['alert_id']} by {r['analyst']} (audit seq {r['seq']})")
    return 0


def cmd_close(args: argparse.Namespace) -> int:
    from pipeline.audit.dispositions import record_action

    client, db = _storage(args)
    r = record_action(client, db, args.alert_id, "close", args.by, args.disposition, args.note,
                      signing=_signing(args))
    print(f"closed {r['alert_id']} as {r['disposition']} by {r['analyst']} (audit seq {r['seq']})")
    return 0
