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

from pipeline.errors import ConfigError, InputError
from pipeline.rules.backtest import load_labels, offline_updates, run_backtest
from pipeline.rules.cases import run_cases
from pipeline.rules.engine import RuleSet
from pipeline.rules.loader import RuleSetError, load_rules
from pipeline.rules.names import Env, MemoryWatchlists

DEFAULT_PATHS = ["rules"]


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
    b.add_argument("--list", action="append", default=[], metavar="NAME=FILE",
                   help="a watchlist for listed()/listed_on(): one base58 address per line "
                        "(repeatable), e.g. ofac=shared/data/lists/ofac_sdn_trx.txt")
    b.set_defaults(func=cmd_backtest)


def _load(paths: Sequence[str], env: Env) -> list:
    try:
        return load_rules(paths or DEFAULT_PATHS, env)
    except RuleSetError as err:
        for line in err.errors:
            print(line, file=sys.stderr)
        print(f"{len(err.errors)} problem(s) in rule files", file=sys.stderr)
        raise SystemExit(1) from None


def cmd_validate(args: argparse.Namespace) -> int:
    rules = _load(args.paths, Env())
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


def _watchlists(specs: Sequence[str]) -> MemoryWatchlists:
    lists: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--list {spec!r}: expected NAME=FILE")
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise InputError(f"--list {name}: cannot read {path}: {err}") from None
        lists[name] = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    return MemoryWatchlists(lists, {n: ("critical" if n in ("ofac", "sanctions") else "high") for n in lists})


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def cmd_backtest(args: argparse.Namespace) -> int:
    env = Env(_watchlists(args.list))
    ruleset = RuleSet(_load(args.rules, env), env)
    labels = load_labels(args.labels) if args.labels else None
    report = run_backtest(ruleset, offline_updates(args.input))
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
