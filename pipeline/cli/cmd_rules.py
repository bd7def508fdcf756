"""``rules``: validate, test and backtest YAML rule files without touching Python.

* ``rules validate [PATHS]`` compiles every rule and prints every problem as ``file:line: ...``.
* ``rules test [PATHS]`` runs the cases embedded in the rules and prints a table; exit 1 on a
  failing case.
* ``rules backtest --input PATH [--labels FILE]`` replays recorded blocks through decode and
  features offline, counts alerts per rule and, with labels, prints precision/recall per rule and
  per typology. Nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import InputError
from pipeline.rules.backtest import load_labels, offline_updates, run_backtest
from pipeline.rules.cases import run_cases
from pipeline.rules.engine import RuleSet
from pipeline.rules.loader import RuleSetError, load_rules
from pipeline.rules.model import Rule
from pipeline.rules.names import Env, MemoryWatchlists, Watchlists

DEFAULT_PATHS = ["rules"]
DEFAULT_LISTS = "rules/lists"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "rules", help="validate, test and backtest YAML rules",
        description="Work with the YAML rule files (default: the rules/ directory).")
    sub = p.add_subparsers(dest="rules_command", metavar="ACTION", required=True)

    v = sub.add_parser("validate", help="compile rule files and report every problem",
                       description="Compile rule files; print each problem as file:line and exit 1 if any.")
    v.add_argument("paths", nargs="*", metavar="PATH", help="rule files or directories (default: rules)")
    v.set_defaults(func=cmd_validate)

    t = sub.add_parser("test", help="run the test cases embedded in rule files",
                       description="Run every embedded test case; print a table; exit 1 on any failure.")
    t.add_argument("paths", nargs="*", metavar="PATH", help="rule files or directories (default: rules)")
    t.add_argument("--failures-only", action="store_true", help="print only failing cases")
    t.set_defaults(func=cmd_test)

    b = sub.add_parser("backtest", help="count alerts per rule over recorded blocks",
                       description="Replay recorded blocks offline through decode, graph and features, "
                                   "evaluate the rules and report alert counts (and precision/recall with "
                                   "--labels). Writes nothing.")
    b.add_argument("--input", "-i", required=True, metavar="PATH", help="replay file or directory")
    b.add_argument("--labels", metavar="FILE",
                   help="CSV or JSONL with address[,typology][,episode] of known-bad addresses")
    b.add_argument("--rules", nargs="+", default=DEFAULT_PATHS, metavar="PATH",
                   help="rule files or directories (default: rules)")
    b.add_argument("--lists", default=DEFAULT_LISTS, metavar="DIR",
                   help="watchlist directory for listed()/list_severity() and graph exposure "
                        f"(default: {DEFAULT_LISTS}; '' for none)")
    b.set_defaults(func=cmd_backtest)


def _load(paths: Sequence[str], env: Env) -> list[Rule] | None:
    """The compiled rules, or None after printing every problem (one per line) to stderr."""
    try:
        return load_rules(paths or DEFAULT_PATHS, env)
    except RuleSetError as err:
        for line in err.errors:
            print(line, file=sys.stderr)
        print(f"{len(err.errors)} problem(s) in rule files", file=sys.stderr)
        return None


def cmd_validate(args: argparse.Namespace) -> int:
    rules = _load(args.paths, Env())
    if rules is None:
        return 1
    enabled = sum(r.enabled for r in rules)
    print(f"ok: {len(rules)} rules ({enabled} enabled), "
          f"{sum(len(r.cases) for r in rules)} embedded test cases")
    return 0


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*map(str, r)) for r in rows]
    lines = [ln.rstrip() for ln in lines]
    return "\n".join(lines)


def cmd_test(args: argparse.Namespace) -> int:
    env = Env()
    rules = _load(args.paths, env)
    if rules is None:
        return 1
    results = run_cases(rules, env)
    failed = [r for r in results if not r.ok]
    shown = failed if args.failures_only else results
    if shown:
        rows = [[("ok" if r.ok else "FAIL"), r.rule_id, r.case, r.expect, r.got,
                 r.where if not r.ok else ""] for r in shown]
        print(_table(rows, ["result", "rule", "case", "expect", "got", "where"]))
        for r in failed:
            if r.detail:
                print(f"{r.where}: {r.rule_id} / {r.case}: {r.detail}")
    untested = [r.id for r in rules if not r.cases]
    print(f"{len(results) - len(failed)}/{len(results)} cases passed over {len(rules)} rules"
          + (f"; rules without cases: {', '.join(untested)}" if untested else ""))
    return 1 if failed else 0


def _watchlists(directory: str) -> Watchlists:
    """The watchlists of ``directory`` (pipeline.watchlists), or none when it is ''/absent."""
    if not directory or not Path(directory).is_dir():
        if directory and directory != DEFAULT_LISTS:
            raise InputError(f"--lists {directory}: no such directory")
        return MemoryWatchlists()
    from pipeline.watchlists import load_watchlists

    return load_watchlists(directory)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def cmd_backtest(args: argparse.Namespace) -> int:
    lists = _watchlists(args.lists)
    env = Env(lists)
    rules = _load(args.rules, env)
    if rules is None:
        return 1
    ruleset = RuleSet(rules, env)
    labels = load_labels(args.labels) if args.labels else None
    graph_watchlist = frozenset(lists) if not isinstance(lists, MemoryWatchlists) else frozenset()
    report = run_backtest(ruleset, offline_updates(args.input, graph_watchlist))
    header = ["rule", "alerts", "subjects", "errors"] + (["precision"] if labels else [])
    rows = [[r["rule"], r["alerts"], r["subjects"], r["errors"]] + ([_pct(r["precision"])] if labels else [])
            for r in report.rule_rows(ruleset, labels)]
    print(f"{report.updates} address updates, {sum(report.alerts.values())} alerts")
    print(_table(rows, header))
    if labels:
        trows = [[t["typology"], t["labelled"], t["alerted"], _pct(t["precision"]), _pct(t["recall"]),
                  _pct(t["episodes"])] for t in report.typology_rows(ruleset, labels)]
        print()
        print(_table(trows, ["typology", "labelled", "alerted", "precision", "recall", "episodes"]))
    return 0
