"""One risk per subject, and an alert budget: how many alert rows an analyst team is sent.

Why: a chain we did not tune on can make any detector noisy, and every alert row becomes a
ticket, a dashboard count and an analyst's minutes. Two pure mechanisms, in event time:

* **Correlation.** Alerts about one subject within ``window_ms`` are one risk: the first is
  the subject's open alert; later ones (another rule, the anomaly model, the same structure seen
  again) are folded into it -- its ``details.correlated`` lists each one's rule, transaction and
  risk, its tags are the union, and its risk combines them (noisy-or: two independent pieces of
  evidence at 60 make 84) -- and it is emitted again under its own id, which the
  ``ReplacingMergeTree`` keeps as one row.
* **Budget.** New rows are admitted against a token bucket filled at ``per_1k`` rows per 1,000
  transactions (capped at what ``burst_tx`` transactions earn). Higher risk goes first, in a way
  that does not depend on how blocks are batched: a row costs one token, but a lower-risk row
  needs more left in the bucket to pass (up to a quarter of the bucket for risk <= ``low_risk``;
  none extra at >= ``high_risk``), so when alerts crowd in, the weak ones wait for a quieter stretch
  and the strong ones still pass. ``critical`` alerts (a sanctioned counterparty, a drained
  allowance) are never held back, but they spend tokens like the rest. What the budget holds
  back is counted per rule (``held``), never silently lost from the numbers.

State: the open alert of each subject within the window (bounded by the window's alerts) and two
numbers. Deterministic: the scoring stage calls :meth:`AlertGovernor.admit` once per block, in
block order, so the same chain gives the same rows however its blocks were batched.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import orjson

from pipeline.errors import ConfigError
from pipeline.records import Alert

MAX_CORRELATED = 12  # evidence entries kept on one alert


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    per_1k: float = 2.0  # alert rows per 1,000 transactions; 0 = no budget
    burst_tx: int = 100_000  # the bucket holds what this many transactions earn
    window_ms: int = 3_600_000  # alerts about one subject within this are one risk; 0 = off
    high_risk: float = 85.0  # from this risk on, a row needs only its own token
    low_risk: float = 30.0  # at or below this risk, a row needs a quarter of the bucket left

    def __post_init__(self) -> None:
        if self.per_1k < 0 or self.burst_tx < 1 or self.window_ms < 0:
            raise ConfigError("alert budget: need per_1k >= 0, burst_tx >= 1, window_ms >= 0")


def combine(risks: list[float]) -> float:
    """Noisy-or of independent pieces of evidence, each a 0-100 risk."""
    miss = 1.0
    for r in risks:
        miss *= 1.0 - min(max(r, 0.0), 100.0) / 100.0
    return round(100.0 * (1.0 - miss), 2)


class AlertGovernor:
    """Correlates alerts per subject and admits new rows within the budget. Picklable."""

    def __init__(self, config: BudgetConfig | None = None) -> None:
        self.config = config or BudgetConfig()
        self.tokens = 0.0
        self.open: dict[str, tuple[Alert, list[float], int]] = {}  # subject -> (alert, risks, until)
        self.held: Counter[str] = Counter()  # rule id -> rows the budget held back
        self.merged = 0  # alerts folded into a subject's open alert
        self._swept = 0

    def admit(self, alerts: list[Alert], tx_count: int) -> list[Alert]:
        """The rows to write for one block's ``alerts``, whose ``tx_count`` transactions fill the bucket."""
        cfg = self.config
        cap = cfg.per_1k * cfg.burst_tx / 1000.0
        self.tokens = min(cap, self.tokens + cfg.per_1k * tx_count / 1000.0)
        if not alerts:
            return []
        out: dict[str, Alert] = {}
        fresh: list[Alert] = []
        for a in sorted(alerts, key=lambda a: (a.ts, -a.risk_score, a.alert_id)):
            opened = self.open.get(a.address) if cfg.window_ms else None
            if opened is not None and opened[2] > a.ts:
                merged = self._fold(opened, a)
                if merged is not None:
                    out[merged.alert_id] = merged
                continue
            fresh.append(a)
        budget = cfg.per_1k > 0
        span = max(cfg.high_risk - cfg.low_risk, 1e-9)
        for a in sorted(fresh, key=lambda a: (-a.risk_score, a.ts, a.alert_id)):
            reserve = 0.25 * (cap - 1.0) * min(1.0, max(0.0, (cfg.high_risk - a.risk_score) / span))
            if budget and a.severity != "critical" and self.tokens < 1.0 + reserve:
                self.held[a.rule_id] += 1
                continue
            self.tokens -= 1.0 if budget else 0.0
            if cfg.window_ms:
                self.open[a.address] = (a, [a.risk_score], a.ts + cfg.window_ms)
            out[a.alert_id] = a
        self._sweep(max(a.ts for a in alerts))
        return list(out.values())

    def _fold(self, opened: tuple[Alert, list[float], int], a: Alert) -> Alert | None:
        first, risks, until = opened
        if a.alert_id == first.alert_id:  # the same alert grown (a structure gained members)
            base = a
        else:
            self.merged += 1
            if len(risks) >= MAX_CORRELATED:
                return None
            base = first
        risks = risks + [a.risk_score] if a.alert_id != first.alert_id else risks
        details = orjson.loads(base.details) if base.details else {}
        if base is a and first.details:  # keep what was folded into the earlier version
            earlier = orjson.loads(first.details).get("correlated")
            if earlier:
                details["correlated"] = earlier
        if a.alert_id != first.alert_id:
            details.setdefault("correlated", []).append(
                {"rule_id": a.rule_id, "tx_id": a.tx_id, "risk": a.risk_score, "title": a.title})
            _union_members(details, orjson.loads(a.details) if a.details else {}, first.address)
        tags = tuple(dict.fromkeys(first.tags + a.tags))
        merged = base._replace(alert_id=first.alert_id, address=first.address, tags=tags,
                               risk_score=max(combine(risks), base.risk_score),
                               severity=_higher(first.severity, a.severity),
                               details=orjson.dumps(details, option=orjson.OPT_SORT_KEYS).decode())
        if base is first:
            merged = merged._replace(ts=first.ts, block_number=first.block_number, tx_id=first.tx_id,
                                     rule_id=first.rule_id, rule_version=first.rule_version, title=first.title)
        self.open[first.address] = (merged, risks, until)
        return merged

    def _sweep(self, now: int) -> None:
        if now - self._swept < self.config.window_ms // 4:
            return
        self._swept = now
        self.open = {s: v for s, v in self.open.items() if v[2] > now}


def _union_members(into: dict, other: dict, subject: str) -> None:
    """The members another alert named join the subject's alert (with their roles), so one row
    names everyone any piece of evidence implicated."""
    theirs = other.get("members") or []
    if not isinstance(theirs, list) or not theirs:
        return
    roles = other.get("member_roles") or []
    have = list(into.get("members") or [])
    have_roles = list(into.get("member_roles") or [""] * len(have))
    for i, m in enumerate(theirs):
        if isinstance(m, str) and m != subject and m not in have:
            have.append(m)
            have_roles.append(roles[i] if i < len(roles) and isinstance(roles[i], str) else "")
    into["members"], into["member_roles"] = have, have_roles


_ORDER = ("info", "low", "medium", "high", "critical")


def _higher(a: str, b: str) -> str:
    return a if _ORDER.index(a) >= _ORDER.index(b) else b
