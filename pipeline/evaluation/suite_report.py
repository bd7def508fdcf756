"""Pool a split's chains into one figure per metric, hold it against the issue's floors, print it.

Pure functions over :class:`~pipeline.evaluation.metrics.Report` objects, so the summary is tested
without running a chain. Pooling adds counts across chains (episodes found, address true
positives, predictions and labels, alerts, transactions) before dividing, so a chain with more
episodes weighs more, as it should; chains never share episode addresses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from pipeline.evaluation.metrics import TYPOLOGIES, EpisodeRecall, Report, Score


@dataclass(frozen=True)
class Floors:
    """The issue's floors (issue 20, "Done when"); the aim is recall >= 0.9 at precision >= 0.8."""

    episode_recall: float = 0.7  # every typology
    precision: float = 0.5  # overall, address level
    macro_f1: float = 0.6  # address level, mean over typologies
    alerts_per_1k: float = 2.0  # at most
    amlsim_f1: float = 0.4  # node level
    amlsim_precision: float = 0.3


FLOORS = Floors()


class ChainResult(NamedTuple):
    name: str
    split: str
    report: Report
    seconds: float


class SplitSummary(NamedTuple):
    split: str
    chains: tuple[str, ...]
    tx_count: int
    alerts: int
    episodes: tuple[EpisodeRecall, ...]
    typologies: dict[str, Score]
    overall: Score

    @property
    def per_1k(self) -> float | None:
        return self.alerts * 1000.0 / self.tx_count if self.tx_count else None

    @property
    def macro_f1(self) -> float | None:
        f1s = [s.f1 for s in self.typologies.values() if s.labelled]
        vals = [f for f in f1s if f is not None]
        return sum(vals) / len(vals) if vals else None

    @property
    def min_episode_recall(self) -> tuple[str, float | None]:
        rows = [(e.typology, e.recall) for e in self.episodes if e.episodes]
        if not rows:
            return ("-", None)
        return min(rows, key=lambda r: (r[1] if r[1] is not None else -1.0))

    def as_dict(self) -> dict[str, Any]:
        worst, value = self.min_episode_recall
        return {"split": self.split, "chains": list(self.chains), "tx_count": self.tx_count, "alerts": self.alerts,
                "alerts_per_1k_tx": self.per_1k, "macro_f1": self.macro_f1,
                "min_episode_recall": value, "min_episode_recall_typology": worst,
                "overall": self.overall.as_dict(), "episodes": [e.as_dict() for e in self.episodes],
                "typologies": {t: s.as_dict() for t, s in self.typologies.items()}}


def _add(a: Score, b: Score) -> Score:
    return Score(a.predicted + b.predicted, a.labelled + b.labelled, a.tp + b.tp, a.tp_any + b.tp_any)


def pool(split: str, results: list[ChainResult]) -> SplitSummary:
    """Add the chains' counts together (see the module docstring)."""
    zero = Score(0, 0, 0, 0)
    episodes: dict[str, list[int]] = {}
    typologies: dict[str, Score] = {}
    overall, tx_count, alerts = zero, 0, 0
    for r in results:
        tx_count += r.report.tx_count
        alerts += r.report.alerts
        overall = _add(overall, r.report.overall.address)
        for line in r.report.typologies:
            if line.name in TYPOLOGIES:
                typologies[line.name] = _add(typologies.get(line.name, zero), line.address)
        for e in r.report.episodes:
            c = episodes.setdefault(e.typology, [0, 0, 0])
            c[0], c[1], c[2] = c[0] + e.episodes, c[1] + e.found, c[2] + e.found_any
    eps = tuple(EpisodeRecall(t, *episodes[t]) for t in TYPOLOGIES if t in episodes)
    typ = {t: typologies[t] for t in TYPOLOGIES if t in typologies}
    return SplitSummary(split, tuple(r.name for r in results), tx_count, alerts, eps, typ, overall)


class Check(NamedTuple):
    name: str
    value: float | None
    floor: str
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


def split_checks(s: SplitSummary, floors: Floors = FLOORS) -> list[Check]:
    worst, recall = s.min_episode_recall
    per_1k, macro, precision = s.per_1k, s.macro_f1, s.overall.precision
    return [
        Check(f"min episode recall ({worst})", recall, f">= {floors.episode_recall:g}",
              recall is not None and recall >= floors.episode_recall),
        Check("address precision (overall)", precision, f">= {floors.precision:g}",
              precision is not None and precision >= floors.precision),
        Check("macro F1 (address)", macro, f">= {floors.macro_f1:g}", macro is not None and macro >= floors.macro_f1),
        Check("alert rows per 1,000 tx", per_1k, f"<= {floors.alerts_per_1k:g}",
              per_1k is not None and per_1k <= floors.alerts_per_1k),
    ]


def amlsim_checks(report: Report, floors: Floors = FLOORS) -> list[Check]:
    node = report.overall.address
    return [Check("AMLSim node F1", node.f1, f">= {floors.amlsim_f1:g}", node.f1 is not None and node.f1 >= floors.amlsim_f1),
            Check("AMLSim node precision", node.precision, f">= {floors.amlsim_precision:g}",
                  node.precision is not None and node.precision >= floors.amlsim_precision)]


def _f(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def format_typology_table(episodes: tuple[EpisodeRecall, ...], typologies: dict[str, Score], tx_count: int,
                          alerts: int, overall: Score, macro_f1: float | None, title: str) -> str:
    """Per typology: episode recall (tagged, lenient), address P/R/F1; then overall and macro."""
    eps = {e.typology: e for e in episodes}
    head = (f"  {'typology':<20} {'episodes':>8} {'ep R':>5} {'ep R*':>5} | {'addr P':>6} {'R':>5} {'F1':>5} "
            f"{'tp/pred/lab':>14}")
    lines = [title, head, "  " + "-" * (len(head) - 2)]
    for t in TYPOLOGIES:
        if t not in eps and t not in typologies:
            continue
        e = eps.get(t, EpisodeRecall(t, 0, 0, 0))
        s = typologies.get(t, Score(0, 0, 0, 0))
        lines.append(f"  {t:<20} {e.episodes:>8} {_f(e.recall):>5} {_f(e.recall_any):>5} | {_f(s.precision):>6} "
                     f"{_f(s.recall):>5} {_f(s.f1):>5} {f'{s.tp}/{s.predicted}/{s.labelled}':>14}")
    per_1k = alerts * 1000.0 / tx_count if tx_count else None
    lines.append(f"  overall: address P {_f(overall.precision)} R {_f(overall.recall)} F1 {_f(overall.f1)} "
                 f"({overall.tp}/{overall.predicted}/{overall.labelled}); macro F1 {_f(macro_f1)}; "
                 f"{alerts:,} alert rows over {tx_count:,} tx = {_f(per_1k)} per 1,000")
    return "\n".join(lines)


def format_chain(r: ChainResult) -> str:
    rep = r.report
    typ = {line.name: line.address for line in rep.typologies if line.name in TYPOLOGIES}
    macro = next((m.f1 for m in rep.macro if m.level == "address"), None)
    return format_typology_table(rep.episodes, typ, rep.tx_count, rep.alerts, rep.overall.address, macro,
                                 f"{r.name} ({r.split}; replayed in {r.seconds:.0f} s)")


def format_split(s: SplitSummary) -> str:
    return format_typology_table(s.episodes, s.typologies, s.tx_count, s.alerts, s.overall, s.macro_f1,
                                 f"{s.split} split, {len(s.chains)} chains pooled ({', '.join(s.chains)})")


def format_amlsim(name: str, report: Report, seconds: float) -> str:
    node = report.overall.address
    lines = [f"{name} (AMLSim, node level; replayed in {seconds:.0f} s)",
             (f"  every alert vs the isFraud accounts: P {_f(node.precision)} R {_f(node.recall)} F1 {_f(node.f1)} "
              f"({node.tp}/{node.predicted}/{node.labelled}); {report.alerts:,} alert rows over "
              f"{report.tx_count:,} tx = {_f(report.overall.per_1k)} per 1,000")]
    for line in report.typologies:
        if line.address.labelled:
            s = line.address
            lines.append(f"  alerts tagged {line.name}: P {_f(s.precision)} R {_f(s.recall)} F1 {_f(s.f1)} "
                         f"({s.tp}/{s.predicted}/{s.labelled})")
    return "\n".join(lines)


def format_checks(title: str, checks: list[Check]) -> str:
    lines = [title]
    for c in checks:
        lines.append(f"  {c.name:<40} {_f(c.value):>7}  {c.floor:<8} {'PASS' if c.passed else 'FAIL'}")
    return "\n".join(lines)
