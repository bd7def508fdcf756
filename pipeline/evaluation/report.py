"""Render an evaluation :class:`Report` as a readable fixed-width table."""

from __future__ import annotations

from pipeline.evaluation.metrics import Line, Report, Score


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cells(s: Score | None) -> str:
    if s is None:
        return f"{'n/a':>5} {'':>5} {'':>5} {'':>14}"
    counts = f"{s.tp}/{s.predicted}/{s.labelled}"
    return f"{_f(s.precision):>5} {_f(s.recall):>5} {_f(s.f1):>5} {counts:>14}"


def _row(line: Line, width: int) -> str:
    per_1k = "-" if line.per_1k is None else f"{line.per_1k:.2f}"
    return f"{line.name:<{width}} {line.alerts:>7} {per_1k:>7} | {_cells(line.address)} | {_cells(line.tx)}"


def format_report(report: Report, title: str = "") -> str:
    width = max([24] + [len(x.name) for x in report.typologies + report.rules])
    head = (f"{'':<{width}} {'alerts':>7} {'/1k tx':>7} | {'addr P':>5} {'R':>5} {'F1':>5} {'tp/pred/lab':>14}"
            f" | {'tx P':>5} {'R':>5} {'F1':>5} {'tp/pred/lab':>14}")
    rule = "-" * len(head)
    per_1k = "-" if report.overall.per_1k is None else f"{report.overall.per_1k:.2f}"
    lines = []
    if title:
        lines.append(title)
    lines.append(f"{report.alerts:,} alerts over {report.tx_count:,} transactions ({per_1k} per 1,000)")
    lines += ["", head, rule]
    lines += [_row(t, width) for t in report.typologies]
    lines.append(rule)
    lines.append(_row(report.overall, width))
    for m in report.macro:
        lines.append(f"{'macro avg (' + m.level + ')':<{width}} {'':>7} {'':>7}   "
                     f"P {_f(m.precision)}  R {_f(m.recall)}  F1 {_f(m.f1)}")
    if report.episodes:
        lines += ["", "episode recall (found by an alert of its typology / by any alert naming one of its addresses)"]
        lines += [f"  {e.typology:<{width - 2}} {e.found:>4}/{e.episodes:<4} {_f(e.recall):>5}   any: "
                  f"{e.found_any:>4}/{e.episodes:<4} {_f(e.recall_any):>5}" for e in report.episodes]
    if report.rules:
        lines += ["", f"{'per rule':<{width}}", rule]
        lines += [_row(r, width) for r in report.rules]
    lines += ["", "P/R/F1: precision, recall, F1; tp/pred/lab: true positives / predicted / labelled. "
              "Definitions: pipeline/evaluation/metrics.py."]
    return "\n".join(lines)
