"""``address``: one address's profile -- lists, stored transfers, alerts and feature history.

``address T… [--history N] [--alerts N] [--json]``: the lists it is on (from the watchlist
directory in force), what it sent and received in the stored transfers, its newest alerts, and
its feature snapshots from ``address_features`` (newest first) -- the numbers the rules and models
saw, so an analyst can tell why it scored as it did and since when.

With the embedded chDB this needs the pipeline stopped (one process per data directory); with a
ClickHouse server it works while it runs.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pipeline.address_profile import HISTORY_COLUMNS
from pipeline.cli.cmd_alerts import _common, _time


def _at_least_one(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("address", help="one address: lists, transfers, alerts, feature history",
                              description="Everything stored about one address: the watchlists it is on, "
                                          "what it sent and received, its alerts, and its feature "
                                          "snapshots (why it scored as it did), newest first.")
    p.add_argument("address", help="base58 (T…) or 21-byte hex (41…)")
    p.add_argument("--history", type=_at_least_one, default=20, metavar="N",
                   help="feature snapshots to show, newest first (default 20)")
    p.add_argument("--alerts", type=_at_least_one, default=20, metavar="N",
                   help="alerts to show, newest first (default 20)")
    p.add_argument("--json", action="store_true", help="one JSON document instead of text")
    _common(p)
    p.set_defaults(func=cmd_address)


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return str(value)


def cmd_address(args: argparse.Namespace) -> int:
    from pipeline.address_profile import profile
    from pipeline.cli.cmd_rules import _table
    from pipeline.config import load_settings
    from pipeline.storage.clickhouse import open_storage
    from pipeline.watchlists import load_watchlists

    settings = load_settings(args.config, overrides={"clickhouse.dsn": args.clickhouse})
    lists = load_watchlists(settings.analytics.watchlists, strict=False)
    client, dsn = open_storage(settings.clickhouse.dsn)
    info = profile(client, dsn.database, args.address, lists, args.history, args.alerts)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0

    print(f"address {info['address']}")
    listed = ", ".join(f"{e['list']} ({e['label']}, {e['severity']})" for e in info["lists"])
    print(f"  lists: {listed or 'none'}")
    for name in ("sent", "received"):
        s = info[name]
        span = f", {_time(s['first_ts'])} .. {_time(s['last_ts'])} UTC" if s["transfers"] else ""
        print(f"  {name}: {s['transfers']:,} transfers ({s['transfers'] - s['succeeded']:,} failed), "
              f"${s['usd']:,.2f} moved, {s['counterparties']:,} counterparties{span}")
    a = info["alerts"]
    print(f"alerts: {a['total']:,} ({a['high_or_critical']:,} high or critical; reorged ones left out)"
          + (f", newest {len(a['newest'])}:" if a["newest"] else ""))
    if a["newest"]:
        print(_table([[r["alert_id"], _time(r["ts"]), r["severity"], f"{r['risk_score']:.0f}", r["status"],
                       r["rule_id"]] for r in a["newest"]],
                     ["alert_id", "time (UTC)", "severity", "risk", "status", "rule"]))
    f = info["features"]
    if not f["snapshots"]:
        print("features: no snapshots stored (not seen in the stored blocks, or write_features = false)")
        return 0
    print(f"features: {f['snapshots']:,} snapshots, {_time(f['first_ts'])} .. {_time(f['last_ts'])} UTC; "
          f"latest (block {f['latest']['block_number']}):")
    latest = {k: v for k, v in f["latest"].items() if k not in ("ts", "block_number")}
    print(_table([[k, _num(v)] for k, v in latest.items()], ["feature", "value"]))
    print(f"history (newest {len(f['history'])}; "
          f"{', '.join(f'{short} = {c}' for c, short in HISTORY_COLUMNS.items() if short != c)}):")
    print(_table([[_time(h["ts"]), h["block_number"], *(_num(h[c]) for c in HISTORY_COLUMNS)]
                  for h in f["history"]],
                 ["time (UTC)", "block", *HISTORY_COLUMNS.values()]))
    return 0
