"""What a loaded routing file is: destinations, routes and their match, the delivery policy.

Frozen values built once by :mod:`pipeline.tickets.routing` (which validates the file) and read by
the outbox step and the delivery worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.records import SEVERITIES, Alert
from pipeline.tickets.secrets import Secret


@dataclass(frozen=True)
class Destination:
    """One configured tracker or webhook endpoint; ``secrets`` values never reach a log."""

    name: str
    kind: str
    options: Mapping[str, Any]
    secrets: Mapping[str, tuple[Secret, ...]]
    enabled: bool = True
    timeout_s: float = 10.0
    where: str = ""

    @property
    def url(self) -> str:
        return str(self.options["url"]).rstrip("/")

    def secret(self, name: str) -> str:
        """The (first) secret called ``name``, revealed; '' when not configured."""
        values = self.secrets.get(name, ())
        return values[0].reveal() if values else ""


@dataclass(frozen=True)
class Match:
    """All given conditions must hold; within a list, any value matches."""

    min_severity: str = ""
    severities: frozenset[str] = frozenset()
    rules: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    min_risk_score: float = 0.0
    rule_action: bool = False  # the rule itself declares ``actions: [..., ticket]``
    statuses: frozenset[str] = frozenset({"pending", "confirmed"})
    sources: frozenset[str] = frozenset()

    def __call__(self, alert: Alert, ticket_rules: frozenset[str]) -> bool:
        if self.min_severity and _rank(alert.severity) < _rank(self.min_severity):
            return False
        if self.severities and alert.severity not in self.severities:
            return False
        if self.rules and alert.rule_id not in self.rules:
            return False
        if self.tags and not self.tags.intersection(alert.tags):
            return False
        if alert.risk_score < self.min_risk_score:
            return False
        if self.rule_action and alert.rule_id not in ticket_rules:
            return False
        if alert.status not in self.statuses:
            return False
        return not self.sources or alert.source in self.sources


@dataclass(frozen=True)
class Route:
    name: str
    match: Match
    destinations: tuple[str, ...]
    group: str = "alert"  # alert: one ticket per alert; subject: one per address and window
    window_s: int = 3600
    stop: bool = True
    where: str = ""


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 12
    base_delay_s: float = 2.0
    max_delay_s: float = 600.0
    max_age_s: float = 86400.0  # an item older than this (since first queued) goes dead
    poll_interval_s: float = 1.0
    batch: int = 200


@dataclass(frozen=True)
class Routing:
    routes: tuple[Route, ...]
    destinations: Mapping[str, Destination]
    dashboard_url: str = "http://localhost:3000/d/tronrisk-alert?var-alert_id={alert_id}"
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    ticket_rules: frozenset[str] = frozenset()  # rule ids declaring ``actions: [ticket]``
    source: str = "<string>"
    allowed_hosts: tuple[str, ...] = ()  # checked again on every request (tickets.allowed_hosts)

    def with_ticket_rules(self, rule_ids: frozenset[str]) -> Routing:
        """The same routing knowing which rules declare the ``ticket`` action
        (``RuleSet.ticket_rule_ids``)."""
        from dataclasses import replace

        return replace(self, ticket_rules=frozenset(rule_ids))

    def link(self, alert_id: str) -> str:
        return self.dashboard_url.replace("{alert_id}", alert_id)


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1
