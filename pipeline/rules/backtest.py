"""Backtest a rule set over recorded input: alert counts per rule, precision/recall with labels.

Nothing is written anywhere: alerts are counted and dropped. Updates come from
``pipeline.offline.iter_updates`` (decode + graph + features run offline, in batches), so a
backtest sees exactly what the live rules would see, cooldowns and allow lists included: the
rule set's ``env.allow`` suppresses alerts with the same function as the flow
(:func:`pipeline.allowlists.suppress`), and what it suppressed is counted per rule and list.

Labels are per address (the simulator's ground truth, or AMLSim-style account labels): a CSV
with a header or JSON Lines, with an ``address`` column (base58 or 41-hex), an optional
``typology`` and an optional ``episode``. Addresses not in the file are negatives.
"""

from __future__ import annotations

import csv
import importlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.allowlists import count, suppress
from pipeline.errors import AddressError, ConfigError, InputError
from pipeline.records import AddressUpdate
from pipeline.rules.engine import RuleSet
from pipeline.tron.address import hex_to_base58

_NEGATIVE = {"", "0", "false", "no", "none", "normal", "benign"}


@dataclass
class Labels:
    """Positive addresses with their typologies and episodes."""

    typologies: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    episodes: dict[str, tuple[str, set[str]]] = field(default_factory=dict)  # id -> (typology, addrs)

    @property
    def addresses(self) -> set[str]:
        return set(self.typologies)


def _address(raw: str, where: str) -> str:
    raw = raw.strip()
    if len(raw) == 42 and raw[:2] == "41":
        try:
            return hex_to_base58(raw)
        except AddressError as err:
            raise InputError(f"{where}: {err}") from None
    return raw


def load_labels(path: str | Path) -> Labels:
    """Read a labels file (CSV with header, or JSONL); errors name the file and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise InputError(f"{p}: cannot read labels: {err}") from None
    rows: Iterable[tuple[int, dict]]
    if text.lstrip().startswith("{"):
        def _jsonl() -> Iterator[tuple[int, dict]]:
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        yield n, json.loads(line)
                    except json.JSONDecodeError as err:
                        raise InputError(f"{p}:{n}: invalid JSON: {err.msg}") from None
        rows = _jsonl()
    else:
        rows = ((n + 2, r) for n, r in enumerate(csv.DictReader(text.splitlines())))
    labels = Labels()
    for line, row in rows:
        if "address" not in row:
            raise InputError(f"{p}:{line}: a labels row needs an 'address' field, got {sorted(row)}")
        flag = str(row.get("label", row.get("is_fraud", row.get("isFraud", "1")))).strip().lower()
        if flag in _NEGATIVE:
            continue
        address = _address(str(row["address"]), f"{p}:{line}")
        typology = str(row.get("typology") or "unlabelled")
        labels.typologies[address].add(typology)
        episode = row.get("episode") or row.get("episode_id")
        if episode:
            labels.episodes.setdefault(str(episode), (typology, set()))[1].add(address)
    return labels


@dataclass
class BacktestReport:
    updates: int = 0
    alerts: Counter = field(default_factory=Counter)  # rule id -> alerts
    subjects: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # rule -> addrs
    errors: Counter = field(default_factory=Counter)
    suppressed: Counter = field(default_factory=Counter)  # (rule id, allow list) -> alerts suppressed

    def rule_rows(self, ruleset: RuleSet, labels: Labels | None) -> list[dict]:
        """Per rule: alerts, distinct subjects and, with labels, precision over subjects."""
        out = []
        positives = labels.addresses if labels else set()
        for rule in ruleset.enabled:
            subjects = self.subjects.get(rule.id, set())
            row = {"rule": rule.id, "alerts": self.alerts.get(rule.id, 0), "subjects": len(subjects),
                   "errors": self.errors.get(rule.id, 0),
                   "suppressed": sum(n for (r, _), n in self.suppressed.items() if r == rule.id)}
            if labels is not None:
                row["precision"] = len(subjects & positives) / len(subjects) if subjects else None
            out.append(row)
        return out

    def typology_rows(self, ruleset: RuleSet, labels: Labels) -> list[dict]:
        """Per typology T: precision/recall of the rules tagged T against addresses labelled T.

        ``episodes`` is the share of T's episodes with at least one address alerted by a T rule.
        """
        by_tag: dict[str, set[str]] = defaultdict(set)
        for rule in ruleset.enabled:
            for tag in rule.tags:
                by_tag[tag] |= self.subjects.get(rule.id, set())
        truth: dict[str, set[str]] = defaultdict(set)
        for address, typologies in labels.typologies.items():
            for t in typologies:
                truth[t].add(address)
        episodes: dict[str, list[bool]] = defaultdict(list)
        for typology, members in labels.episodes.values():
            episodes[typology].append(bool(members & by_tag.get(typology, set())))
        rows = []
        for t in sorted(set(truth) | {tag for tag in by_tag if tag in truth}):
            alerted, labelled = by_tag.get(t, set()), truth[t]
            hit = len(alerted & labelled)
            rows.append({
                "typology": t,
                "labelled": len(labelled),
                "alerted": len(alerted),
                "precision": hit / len(alerted) if alerted else None,
                "recall": hit / len(labelled) if labelled else None,
                "episodes": (sum(episodes[t]) / len(episodes[t])) if episodes.get(t) else None,
            })
        return rows


def run_backtest(ruleset: RuleSet, batches: Iterable[list[AddressUpdate]]) -> BacktestReport:
    """Evaluate every batch; count alerts and alerted subjects per rule, and what allow lists suppressed."""
    report = BacktestReport()
    for batch in batches:
        report.updates += len(batch)
        alerts, suppressed = suppress(ruleset.evaluate(batch), ruleset.env.allow)
        count(suppressed, report.suppressed)
        for alert in alerts:
            report.alerts[alert.rule_id] += 1
            report.subjects[alert.rule_id].add(alert.address)
    report.errors.update(ruleset.errors)
    return report


def offline_updates(input_path: str, watchlist: frozenset[str] | None = None) -> Iterator[list[AddressUpdate]]:
    """``pipeline.offline.iter_updates(input_path)``, or a clear error while it does not exist."""
    try:
        offline = importlib.import_module("pipeline.offline")
        iter_updates = offline.iter_updates
    except (ImportError, AttributeError) as err:
        raise ConfigError(
            "rules backtest needs pipeline.offline.iter_updates (offline decode + features), "
            f"which is not available in this build: {err}") from None
    return iter_updates(input_path, watchlist=watchlist)
