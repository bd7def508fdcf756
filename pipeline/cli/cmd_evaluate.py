"""``run_pipeline.py evaluate``: score the ``alerts`` table against ground-truth labels, or run the
scenario suite (``--suite``: tuning and validation chains plus AMLSim, each replayed from scratch)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import orjson

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="precision/recall/F1 of the stored alerts against labels, or the scenario suite (--suite)",
        description="With --labels: read the alerts table (FINAL, dropped alerts excluded) and the transaction "
                    "count, and report per typology and overall address-level and transaction-level precision, "
                    "recall and F1, episode recall, alerts per 1,000 transactions, and each rule's own figures. "
                    "An alert names its subject and the addresses in details.members. With --suite: generate "
                    "(or reuse) the suite's chains, replay each through the full default pipeline into a fresh "
                    "embedded database (one process per chain), and report per split and chain episode recall, "
                    "address precision/recall/F1 per typology, macro F1 and alert rows per 1,000 tx, then AMLSim "
                    "node-level figures, and a PASS/FAIL summary against the issue's floors. The validation "
                    "split is never used to choose a threshold or a feature. Definitions: "
                    "pipeline/evaluation/metrics.py; the suite: pipeline/evaluation/suite.py.")
    p.add_argument("--labels", metavar="FILE|DIR",
                   help="labels.csv (address,typology,episode_id,role) or its directory; labelled_txs.csv "
                        "(tx_id,typology,episode_id) beside it enables the transaction-level figures")
    p.add_argument("--clickhouse", metavar="DSN",
                   help="chdb://PATH (default from settings, chdb://./data/chdb) or http(s)://user:pw@host:port/db")
    p.add_argument("--config", metavar="FILE", help="TOML settings file (default ./tronrisk.toml if present)")
    p.add_argument("--json", metavar="OUT", help="also write the report as JSON to OUT ('-' for stdout)")
    suite = p.add_argument_group("scenario suite")
    suite.add_argument("--suite", action="store_true", help="run the scenario suite instead of reading --labels")
    suite.add_argument("--split", default="all", choices=("tuning", "validation", "all"),
                       help="which split to replay (default all; tune on 'tuning' only)")
    suite.add_argument("--cache", default="data/suite", metavar="DIR",
                       help="where generated chains are kept, by a key of profile, seed and generator code "
                            "(default data/suite)")
    suite.add_argument("--jobs", type=int, default=1, metavar="N", help="chains replayed at once (default 1)")
    suite.add_argument("--amlsim", metavar="DIR", help="AMLSim sample folder (default ../shared/data/amlsim/"
                                                       "20K_fanin200 beside the repository)")
    suite.add_argument("--no-amlsim", action="store_true", help="skip the AMLSim sample")
    suite.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.suite:
        return run_suite_command(args)
    if not args.labels:
        from pipeline.errors import ConfigError

        raise ConfigError("evaluate: give --labels FILE|DIR (score the stored alerts) or --suite")
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


def run_suite_command(args: argparse.Namespace) -> int:
    from pipeline.errors import ConfigError
    from pipeline.evaluation.suite import DEFAULT_AMLSIM, AmlsimSample
    from pipeline.evaluation.suite_run import SuiteError, run_suite

    if args.labels or args.clickhouse:
        raise ConfigError("evaluate --suite replays its own chains: --labels and --clickhouse do not apply")
    if args.config and not Path(args.config).is_file():
        raise ConfigError(f"{args.config}: config file not found")
    amlsim = None if args.no_amlsim else AmlsimSample("amlsim-fanin200", Path(args.amlsim) if args.amlsim
                                                      else DEFAULT_AMLSIM)
    say = (lambda text: print(text, file=sys.stderr)) if args.json == "-" else print  # keep stdout pure JSON
    doc = run_suite(args.split, Path(args.cache), args.config, args.jobs, amlsim, progress=not args.no_progress,
                    say=say)
    if args.json:
        data = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
        if args.json == "-":
            print(data.decode())
        else:
            Path(args.json).write_bytes(data)
            print(f"JSON report written to {args.json}")
    if doc["failures"]:
        raise SuiteError(f"{len(doc['failures'])} replay(s) failed: " + "; ".join(doc["failures"]))
    return 0
