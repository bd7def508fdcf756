"""``run_pipeline.py evaluate``: score the ``alerts`` table against ground-truth labels."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import orjson

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="precision/recall/F1 of the stored alerts against labels, per typology and rule",
        description="Read the alerts table (FINAL, dropped alerts excluded) and the transaction count, and "
                    "report per typology and overall address-level and transaction-level precision, recall "
                    "and F1, alerts per 1,000 transactions, and each rule's own figures. Per typology T: "
                    "precision over alerts tagged T, recall over addresses/txs labelled T; overall: every "
                    "alert against every label. Full definitions: pipeline/evaluation/metrics.py.")
    p.add_argument("--labels", required=True, metavar="FILE|DIR",
                   help="labels.csv (address,typology,episode_id,role) or its directory; labelled_txs.csv "
                        "(tx_id,typology,episode_id) beside it enables the transaction-level figures")
    p.add_argument("--clickhouse", metavar="DSN",
                   help="chdb://PATH (default from settings, chdb://./data/chdb) or http(s)://user:pw@host:port/db")
    p.add_argument("--config", metavar="FILE", help="TOML settings file (default ./tronrisk.toml if present)")
    p.add_argument("--json", metavar="OUT", help="also write the report as JSON to OUT ('-' for stdout)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.config import load_settings
    from pipeline.evaluation import evaluate, format_report, load_labels
    from pipeline.evaluation.store import count_transactions, read_alerts
    from pipeline.storage.clickhouse import open_storage

    labels = load_labels(args.labels)  # fail on a bad labels file before opening storage
    settings = load_settings(args.config, overrides={"clickhouse.dsn": args.clickhouse})
    client, dsn = open_storage(settings.clickhouse.dsn)
    report = evaluate(read_alerts(client), labels, count_transactions(client))
    n_addr = len({a for group in labels.addresses.values() for a in group})
    n_tx = "no" if labels.txs is None else f"{len({t for g in labels.txs.values() for t in g}):,}"
    title = f"Evaluation of {dsn.redacted()} against {args.labels} ({n_addr:,} labelled addresses, {n_tx} labelled txs)"
    if args.json == "-":
        print(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
        return 0
    print(format_report(report, title))
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2))
        print(f"JSON report written to {args.json}")
    return 0
