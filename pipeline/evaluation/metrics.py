"""Precision, recall and F1 of alerts against ground-truth labels: pure functions over plain rows.

Definitions (what ``evaluate`` reports; the README and ``--help`` point here):

* **Addresses an alert names.** Its subject (``address``) plus the other members of the structure
  it found (``details.members``: the sources of a fan-in, the hops of a peel chain), so a detector
  that names a whole ring is credited for every member it names, and charged for every wrong one.
* **Typology T, address level.** Predicted = distinct addresses named by alerts tagged ``T``;
  labelled = addresses labelled ``T``; TP = both. Precision = TP / predicted, recall = TP /
  labelled, F1 their harmonic mean (0 when recall is 0: a typology nothing was predicted for
  counts as missed, it does not drop out of the macro average). An alert tagged ``fan_in`` on an address labelled only
  ``fan_out`` counts against fan_in's precision (``precision_any`` shows it did hit *some*
  labelled address).
* **Typology T, transaction level.** The same over distinct non-empty ``tx_id`` of alerts tagged
  ``T`` against the transactions labelled ``T`` (``labelled_txs.csv``).
* **Overall.** Every alert, tagged or not (anomaly detectors tag none), against every labelled
  address / transaction of any typology: "did we flag the bad actors at all".
* **Macro average.** Mean precision, recall and F1 over the typologies that have labels.
* **Per rule.** A rule's predicted set is its own alerts' addresses / txs; its target is the union
  of the typologies it tags, or every label when it tags none (``anomaly.<name>`` detectors).
* **Alerts per 1,000 transactions.** Alerts (distinct ``alert_id``) / transactions x 1000.
* **Episode recall** (needs ``episode_id`` in the labels). An episode of typology T is *found* when
  an alert tagged T names any of the episode's addresses; *found (lenient)* when any alert at all
  names one. Recall = found episodes / episodes, per typology. It says whether an analyst would
  have been pointed at the scheme, whatever share of its addresses the alerts covered.

``dropped`` alerts (a pending transaction that never landed) are excluded; a pending alert that
was confirmed is one alert (same id). Undefined ratios (0/0) are ``None``, printed as ``-``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

TYPOLOGIES: tuple[str, ...] = (
    "fan_in", "fan_out", "scatter_gather", "gather_scatter", "cycle", "stack", "peel_chain",
    "mule_pass_through", "address_poisoning", "approval_phishing", "sanctioned_exposure",
    "permission_takeover",
)


class AlertRow(NamedTuple):
    """The columns of the ``alerts`` table that evaluation needs."""

    alert_id: str
    address: str
    tx_id: str
    rule_id: str
    tags: tuple[str, ...]
    status: str = "confirmed"
    members: tuple[str, ...] = ()  # ``details.members``: other addresses of the structure found

    def named(self) -> set[str]:
        """The subject and the members: every address this alert predicts for its tags."""
        out = {m for m in self.members if m}
        if self.address:
            out.add(self.address)
        return out


class LabelledEpisode(NamedTuple):
    typology: str
    addresses: frozenset[str]


class Labels(NamedTuple):
    """Ground truth: typology -> labelled addresses, and typology -> labelled tx ids (or None)."""

    addresses: Mapping[str, frozenset[str]]
    txs: Mapping[str, frozenset[str]] | None
    episodes: Mapping[str, LabelledEpisode] | None = None  # episode_id -> its typology and addresses


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


class Score(NamedTuple):
    predicted: int
    labelled: int
    tp: int
    tp_any: int  # predicted items carrying any label at all

    @property
    def precision(self) -> float | None:
        return _ratio(self.tp, self.predicted)

    @property
    def recall(self) -> float | None:
        return _ratio(self.tp, self.labelled)

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if r == 0.0:
            return 0.0
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"predicted": self.predicted, "labelled": self.labelled, "tp": self.tp,
                "precision": self.precision, "recall": self.recall, "f1": self.f1,
                "precision_any": _ratio(self.tp_any, self.predicted)}


def score(predicted: set[str], labelled: frozenset[str] | set[str], any_label: frozenset[str] | set[str]) -> Score:
    return Score(len(predicted), len(labelled), len(predicted & labelled), len(predicted & any_label))


class Line(NamedTuple):
    """One row of the report: a typology, the overall figure, or a rule."""

    name: str
    alerts: int
    per_1k: float | None
    address: Score
    tx: Score | None


class Macro(NamedTuple):
    level: str
    precision: float | None
    recall: float | None
    f1: float | None


class EpisodeRecall(NamedTuple):
    """Per typology: labelled episodes, found by an alert of its typology, found by any alert."""

    typology: str
    episodes: int
    found: int
    found_any: int

    @property
    def recall(self) -> float | None:
        return _ratio(self.found, self.episodes)

    @property
    def recall_any(self) -> float | None:
        return _ratio(self.found_any, self.episodes)

    def as_dict(self) -> dict[str, Any]:
        return {"typology": self.typology, "episodes": self.episodes, "found": self.found,
                "found_any": self.found_any, "recall": self.recall, "recall_any": self.recall_any}


class Report(NamedTuple):
    tx_count: int
    alerts: int
    typologies: list[Line]
    overall: Line
    macro: list[Macro]
    rules: list[Line]
    episodes: tuple[EpisodeRecall, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        def line(item: Line) -> dict[str, Any]:
            return {"name": item.name, "alerts": item.alerts, "alerts_per_1k_tx": item.per_1k,
                    "address": item.address.as_dict(), "tx": item.tx.as_dict() if item.tx else None}
        return {"tx_count": self.tx_count, "alerts": self.alerts,
                "alerts_per_1k_tx": _per_1k(self.alerts, self.tx_count),
                "overall": line(self.overall), "typologies": [line(t) for t in self.typologies],
                "macro": [m._asdict() for m in self.macro], "rules": [line(r) for r in self.rules],
                "episodes": [e.as_dict() for e in self.episodes]}


def _per_1k(alerts: int, tx_count: int) -> float | None:
    return alerts * 1000.0 / tx_count if tx_count > 0 else None


def _union(groups: Iterable[frozenset[str]]) -> frozenset[str]:
    out: set[str] = set()
    for g in groups:
        out |= g
    return frozenset(out)


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def evaluate(alerts: Iterable[AlertRow], labels: Labels, tx_count: int) -> Report:
    """Score alerts against labels (definitions in the module docstring)."""
    kept: dict[str, AlertRow] = {}
    for a in alerts:
        if a.status != "dropped":
            kept[a.alert_id] = a
    rows = list(kept.values())
    addr_labels, tx_labels = labels.addresses, labels.txs
    all_addr = _union(addr_labels.values())
    all_tx = _union(tx_labels.values()) if tx_labels is not None else frozenset()

    def line(name: str, group: list[AlertRow], target_addr: frozenset[str],
             target_tx: frozenset[str] | None) -> Line:
        addrs: set[str] = set()
        for a in group:
            addrs |= a.named()
        txs = {a.tx_id for a in group if a.tx_id}
        return Line(name, len(group), _per_1k(len(group), tx_count), score(addrs, target_addr, all_addr),
                    score(txs, target_tx, all_tx) if target_tx is not None else None)

    seen_tags = {t for a in rows for t in a.tags}
    names = [t for t in TYPOLOGIES if t in addr_labels or t in seen_tags or (tx_labels and t in tx_labels)]
    names += sorted((set(addr_labels) | seen_tags | set(tx_labels or ())) - set(TYPOLOGIES))
    typologies = []
    for t in names:
        group = [a for a in rows if t in a.tags]
        typologies.append(line(t, group, addr_labels.get(t, frozenset()),
                               tx_labels.get(t, frozenset()) if tx_labels is not None else None))
    overall = line("overall", rows, all_addr, all_tx if tx_labels is not None else None)

    labelled_lines = [t for t in typologies if t.address.labelled]
    macro = [Macro("address", _mean([t.address.precision for t in labelled_lines]),
                   _mean([t.address.recall for t in labelled_lines]),
                   _mean([t.address.f1 for t in labelled_lines]))]
    if tx_labels is not None:
        tx_lines = [t for t in typologies if t.tx is not None and t.tx.labelled]
        macro.append(Macro("tx", _mean([t.tx.precision for t in tx_lines if t.tx]),
                           _mean([t.tx.recall for t in tx_lines if t.tx]),
                           _mean([t.tx.f1 for t in tx_lines if t.tx])))

    by_rule: dict[str, list[AlertRow]] = {}
    for a in rows:
        by_rule.setdefault(a.rule_id, []).append(a)
    rules = []
    for rule_id in sorted(by_rule):
        group = by_rule[rule_id]
        tags = {t for a in group for t in a.tags}
        if tags:
            target_addr = _union(addr_labels.get(t, frozenset()) for t in tags)
            target_tx = _union(tx_labels.get(t, frozenset()) for t in tags) if tx_labels is not None else None
        else:
            target_addr, target_tx = all_addr, (all_tx if tx_labels is not None else None)
        rules.append(line(rule_id, group, target_addr, target_tx))
    episodes = episode_recall(rows, labels.episodes) if labels.episodes is not None else ()
    return Report(tx_count, len(rows), typologies, overall, macro, rules, episodes)


def episode_recall(alerts: Iterable[AlertRow], episodes: Mapping[str, LabelledEpisode]) -> tuple[EpisodeRecall, ...]:
    """Per typology, how many labelled episodes an alert pointed at (definitions in the module docstring)."""
    named_by_tag: dict[str, set[str]] = {}
    named_any: set[str] = set()
    for a in alerts:
        if a.status == "dropped":
            continue
        named = a.named()
        named_any |= named
        for t in a.tags:
            named_by_tag.setdefault(t, set()).update(named)
    counts: dict[str, list[int]] = {}
    for ep in episodes.values():
        c = counts.setdefault(ep.typology, [0, 0, 0])
        c[0] += 1
        c[1] += not ep.addresses.isdisjoint(named_by_tag.get(ep.typology, ()))
        c[2] += not ep.addresses.isdisjoint(named_any)
    order = [t for t in TYPOLOGIES if t in counts] + sorted(set(counts) - set(TYPOLOGIES))
    return tuple(EpisodeRecall(t, *counts[t]) for t in order)
