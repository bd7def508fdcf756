"""Evaluate a compiled rule set over batches of address updates and emit alerts.

Rules are indexed by ``(role, kind)`` once, so an update only meets the rules that can apply to
it; a condition is a closure that reads the update tuple directly, so no context object is built
per update; evidence and JSON are only built for the rare hit. Cooldown state holds one expiry
per (rule, subject) and is swept in event time, so it is bounded by the alerts of the longest
cooldown window, never by stream length.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import RuleError
from pipeline.records import AddressUpdate, Alert
from pipeline.rules.loader import load_rules
from pipeline.rules.model import Rule, subject_getter
from pipeline.rules.names import Env, Watchlists
from pipeline.yamlsafe import MAX_BYTES

log = logging.getLogger(__name__)

_SWEEP_MIN_ENTRIES = 4096


from pipeline.records import alert_id  # noqa: E402,F401 - the contract lives with the Alert record


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Slot:
    """What the hot loop needs of one rule, flattened into attributes."""

    __slots__ = ("cooldown_ms", "fn", "key", "members", "rule", "subject")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.fn = rule.compiled.fn
        self.subject = subject_getter(rule.subject)
        self.members = tuple((name, subject_getter(name)) for name in rule.members)
        self.cooldown_ms = rule.cooldown_s * 1000
        self.key = rule.id


class RuleSet:
    """A loaded, compiled set of rules plus its cooldown state and counters.

    ``evaluate`` is the only hot method. ``env`` holds the watchlists that ``listed(...)`` and
    friends read; swap them with :meth:`set_watchlists` without recompiling.
    """

    def __init__(self, rules: Sequence[Rule], env: Env | None = None) -> None:
        self.env = env or Env()
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.enabled: tuple[Rule, ...] = tuple(r for r in rules if r.enabled)
        self.ticket_rule_ids = frozenset(r.id for r in self.enabled if "ticket" in r.actions)
        index: dict[str, dict[str, list[_Slot]]] = {}
        for rule in self.enabled:
            slot = _Slot(rule)
            for role in rule.roles:
                for kind in rule.kinds:
                    index.setdefault(role, {}).setdefault(kind, []).append(slot)
        self._index = {role: {k: tuple(v) for k, v in kinds.items()} for role, kinds in index.items()}
        self._max_cooldown_ms = max((r.cooldown_s * 1000 for r in self.enabled), default=0)
        self._expiry: dict[tuple[str, str], int] = {}
        self._swept_at = 0
        self._sweep_size = _SWEEP_MIN_ENTRIES
        self.hits: Counter[str] = Counter()
        self.suppressed: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self.enabled)

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def set_watchlists(self, lists: Watchlists) -> None:
        self.env.lists = lists

    def adopt_state(self, old: RuleSet) -> None:
        """Keep cooldowns of rules that survive a reload, so a reload does not re-alert."""
        ids = {r.id for r in self.enabled if r.cooldown_s}
        self._expiry = {k: v for k, v in old._expiry.items() if k[0] in ids}

    def export_state(self) -> dict[tuple[str, str], int]:
        """Cooldown expiries, plain and picklable, for a Bytewax snapshot (closures are not)."""
        return dict(self._expiry)

    def import_state(self, state: dict[tuple[str, str], int]) -> None:
        """Restore :meth:`export_state` after a resume; entries of unknown rules are dropped."""
        ids = {r.id for r in self.enabled if r.cooldown_s}
        self._expiry = {k: v for k, v in state.items() if k[0] in ids}

    @property
    def cooldown_entries(self) -> int:
        return len(self._expiry)

    def evaluate(self, updates: Sequence[AddressUpdate]) -> list[Alert]:
        """Alerts raised by this batch, in update order, after cooldown suppression."""
        alerts: list[Alert] = []
        index = self._index
        fired: set[str] | None = None
        for u in updates:
            by_kind = index.get(u[1])
            if by_kind is None:
                continue
            slots = by_kind.get(u[3][1])
            if not slots:
                continue
            for slot in slots:
                try:
                    hit = slot.fn(u)
                except Exception as err:  # noqa: BLE001 - a rule must never stop the stream
                    self._eval_error(slot.rule, u, err)
                    continue
                if hit:
                    if fired is None:
                        fired = set()
                    alert = self._fire(slot, u, fired)
                    if alert is not None:
                        alerts.append(alert)
        if updates:
            self._maybe_sweep(max(updates[0][3][5], updates[-1][3][5]))
        return alerts

    def _fire(self, slot: _Slot, u: AddressUpdate, fired: set[str]) -> Alert | None:
        rule, t = slot.rule, u[3]
        subject = slot.subject(u)
        # An allow-listed subject's alert is suppressed downstream (pipeline.allowlists.suppress) and
        # must not hold the cooldown: the first alert after its entry expires or is removed counts.
        if slot.cooldown_ms and self.env.allow.match(rule.id, subject, t.ts) is None:
            key = (slot.key, subject)
            expiry = self._expiry.get(key)
            if expiry is not None and t.ts < expiry:
                self.suppressed[rule.id] += 1
                return None
            self._expiry[key] = t.ts + slot.cooldown_ms
        aid = alert_id(rule.id, subject, t.tx_id)
        if aid in fired:  # e.g. subject 'caller' seen from both the sender and receiver update
            return None
        fired.add(aid)
        self.hits[rule.id] += 1
        values = {k: _jsonable(v) for k, v in rule.compiled.evidence(u).items()}
        evidence: dict[str, object] = {"transfer_id": t.id, "role": u.role, "values": values}
        if slot.members:  # the other parties of the transfer, as the rule names them
            named: dict[str, str] = {}
            for name, get in slot.members:
                a = get(u)
                if a and a != subject:
                    named.setdefault(a, name)
            evidence["members"], evidence["member_roles"] = list(named), list(named.values())
        details = json.dumps(evidence, separators=(",", ":"), sort_keys=True, default=str)
        return Alert(
            alert_id=aid,
            ts=t.ts,
            detected_at=time.time_ns() // 1_000_000,
            block_number=t.block_number,
            tx_id=t.tx_id,
            address=subject,
            rule_id=rule.id,
            rule_version=rule.version,
            severity=rule.severity,
            risk_score=rule.risk_score,
            status="pending" if t.source == "mempool" else "confirmed",
            source=t.source,
            title=rule.title,
            tags=rule.tags,
            details=details,
        )

    def _eval_error(self, rule: Rule, u: AddressUpdate, err: Exception) -> None:
        self.errors[rule.id] += 1
        n = self.errors[rule.id]
        if n == 1 or n % 10_000 == 0:
            log.warning("%s: rule %r failed on %s (%d so far): %s: %s",
                        rule.where, rule.id, u[3].id, n, type(err).__name__, err)

    def _maybe_sweep(self, watermark: int) -> None:
        """Drop expired cooldowns: at most once per longest cooldown, or when the map doubles."""
        if not self._expiry:
            return
        if watermark - self._swept_at < self._max_cooldown_ms and len(self._expiry) < self._sweep_size:
            return
        self._expiry = {k: v for k, v in self._expiry.items() if v > watermark}
        self._swept_at = watermark
        self._sweep_size = max(_SWEEP_MIN_ENTRIES, 2 * len(self._expiry))


def load_ruleset(paths: Sequence[str | Path], watchlists: Watchlists | None = None, *,
                 max_bytes: int = MAX_BYTES) -> RuleSet:
    """Load and compile the rule files in ``paths`` (raises :class:`RuleError` naming file:line)."""
    env = Env(watchlists)
    return RuleSet(load_rules(paths, env, max_bytes=max_bytes), env)


def reload_ruleset(current: RuleSet, paths: Sequence[str | Path], *,
                   max_bytes: int = MAX_BYTES) -> tuple[RuleSet, list[str]]:
    """Load ``paths`` again; on any error keep ``current`` and return the errors.

    The new set shares the current watchlists and keeps the cooldowns of the rules it still has,
    so a hot reload neither forgets suppressions nor needs the lists reloaded.
    """
    try:
        new = RuleSet(load_rules(paths, current.env, max_bytes=max_bytes), current.env)
    except RuleError as err:
        errors = list(getattr(err, "errors", [str(err)]))
        log.error("rule reload failed, keeping %d rules in force: %s", len(current), "; ".join(errors))
        return current, errors
    new.adopt_state(current)
    log.info("rules reloaded: %d enabled (was %d)", len(new), len(current))
    return new, []
