"""``rules``: validate, test and backtest YAML rule files without touching Python.

* ``rules validate [PATHS] [--allow DIR]`` compiles every rule, checks the allow lists against
  them, and prints every problem as ``file:line: ...``.
* ``rules test [PATHS]`` runs the cases embedded in the rules and prints a table; exit 1 on a
  failing case.
* ``rules backtest --input PATH [--labels FILE]`` replays recorded blocks through decode and
  features offline, counts alerts per rule and, with labels, prints precision/recall per rule and
  per typology, and what the allow lists (``--allow``) suppressed. Nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.allowlists import EMPTY as EMPTY_ALLOW
from pipeline.allowlists import AllowSet, load_allowlists
from pipeline.errors import InputError
from pipeline.rules.backtest import load_labels, offline_updates, run_backtest
from pipeline.rules.cases import run_cases
from pipeline.rules.engine import RuleSet
from pipeline.rules.loader import RuleSetError, load_rules
from pipeline.rules.model import Rule
from pipeline.rules.names import Env, MemoryWatchlists, Watchlists

DEFAULT_PATHS = ["rules"]
DEFAULT_LISTS = "rules/lists"
DEFAULT_ALLOW = "rules/allow"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "rules", help="validate, test and backtest YAML rules",
        description="Work with the YAML rule files (default: the rules/ directory).")
    sub = p.add_subparsers(dest="rules_command", metavar="ACTION", required=True)

    v = sub.add_parser("validate", help="compile rule files and report every problem",
                       description="Compile rule files; print each problem as file:line and exit 1 if any.")
    v.add_argument("paths", nargs="*", metavar="PATH", help="rule files or directories (default: rules)")
    v.add_argument("--allow", default=DEFAULT_ALLOW, metavar="DIR",
                   help=f"allow-list directory to check against the rules (default: {DEFAULT_ALLOW}; "
                        "'' for none)")
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
    b.add_argument("--allow", default=DEFAULT_ALLOW, metavar="DIR",
                   help=f"allow lists that suppress alerts, as in the pipeline (default: {DEFAULT_ALLOW}; "
                        "'' for none)")
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
    allow = _allowlists(args.allow, {r.id for r in rules})
    if allow is None:
        return 1
    enabled = sum(r.enabled for r in rules)
    lists = f"; {allow.size} allow-list entries in {len(allow.lists)} list(s)" if allow.lists else ""
    print(f"ok: {len(rules)} rules ({enabled} enabled), "
          f"{sum(len(r.cases) for r in rules)} embedded test cases{lists}")
    return 0


def _allowlists(directory: str, rule_ids: set[str]) -> AllowSet | None:
    """The allow lists of ``directory`` checked against ``rule_ids`` (empty when ''/the default is
    absent), or None after printing every problem (one per line) to stderr."""
    if not directory or not Path(directory).is_dir():
        if directory and directory != DEFAULT_ALLOW:
            raise InputError(f"--allow {directory}: no such directory")
        return EMPTY_ALLOW
    allow = load_allowlists(directory, strict=False, known_rules=rule_ids)
    if allow.problems:
        for line in allow.problems:
            print(line, file=sys.stderr)
        print(f"{len(allow.problems)} problem(s) in allow lists", file=sys.stderr)
        return None
    return allow


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
    allow = _allowlists(args.allow, {r.id for r in rules})
    if allow is None:
        return 1
    env.allow = allow
    ruleset = RuleSet(rules, env)
    labels = load_labels(args.labels) if args.labels else None
    graph_watchlist = frozenset(lists) if not isinstance(lists, MemoryWatchlists) else frozenset()
    report = run_backtest(ruleset, offline_updates(args.input, graph_watchlist))
    header = ["rule", "alerts", "subjects", "errors"] + (["suppressed"] if allow.size else []) + (
        ["precision"] if labels else [])
    rows = [[r["rule"], r["alerts"], r["subjects"], r["errors"]] + ([r["suppressed"]] if allow.size else [])
            + ([_pct(r["precision"])] if labels else []) for r in report.rule_rows(ruleset, labels)]
    suppressed = sum(report.suppressed.values())
    print(f"{report.updates} address updates, {sum(report.alerts.values())} alerts"
          + (f", {suppressed} suppressed by allow lists" if allow.size else ""))
    print(_table(rows, header))
    if report.suppressed:
        print()
        print(_table([[rule, name, n] for (rule, name), n in sorted(report.suppressed.items())],
                     ["rule", "allow list", "suppressed"]))
    if labels:
        trows = [[t["typology"], t["labelled"], t["alerted"], _pct(t["precision"]), _pct(t["recall"]),
                  _pct(t["episodes"])] for t in report.typology_rows(ruleset, labels)]
        print()
        print(_table(trows, ["typology", "labelled", "alerted", "precision", "recall", "episodes"]))
    return 0
