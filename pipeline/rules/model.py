"""The compiled form of a rule and of its embedded test cases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from pipeline.records import Kind
from pipeline.rules.compiler import Compiled

# Documented in rules/README.md; the same points as pipeline.anomaly.risk.SEVERITY_POINTS, which
# combines them with anomaly evidence downstream.
RISK_SCORES = {"info": 10.0, "low": 25.0, "medium": 50.0, "high": 75.0, "critical": 95.0}

TYPOLOGY_TAGS = (
    "fan_in", "fan_out", "scatter_gather", "gather_scatter", "cycle", "stack", "peel_chain",
    "mule_pass_through", "address_poisoning", "approval_phishing", "sanctioned_exposure",
    "permission_takeover",
)
KNOWN_TAGS = TYPOLOGY_TAGS + (
    "large_transfer", "blacklist", "failed_burst", "watchlist", "dust", "new_address",
)
ROLES = ("sender", "receiver")  # what "any" means: the two sides of a transfer
# "member": on a cycle the transfer closed, neither side of it; only rules that ask for it
WHEN_ROLES = (*ROLES, "member")
SUBJECTS = ("self", "counterparty", "caller", "from", "to")
ACTIONS = ("alert", "ticket")
EXPECTS = ("hit", "no_hit", "error")
KIND_GROUPS = {"value": tuple(sorted(Kind.VALUE_MOVEMENTS)), "any": Kind.ALL}

_SUBJECT_GETTERS: dict[str, Callable[[Any], str]] = {
    "self": lambda u: u[0],
    "counterparty": lambda u: u[2],
    "caller": lambda u: u[3].caller,
    "from": lambda u: u[3].from_address,
    "to": lambda u: u[3].to_address,
}


def subject_getter(subject: str) -> Callable[[Any], str]:
    return _SUBJECT_GETTERS[subject]


class Case(NamedTuple):
    """One embedded test case: context values in, expected outcome out."""

    name: str
    values: dict[str, Any]  # context names (fields, features, role...) -> value
    lists: dict[str, tuple[str, ...]]  # address or context name ('counterparty') -> list names
    expect: str  # hit | no_hit | error
    line: int


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule ready to run: condition compiled, version derived from its content."""

    id: str
    title: str
    description: str
    tags: tuple[str, ...]
    severity: str
    enabled: bool
    kinds: tuple[str, ...]
    roles: tuple[str, ...]
    condition: str
    compiled: Compiled
    cooldown_s: int
    subject: str
    actions: tuple[str, ...]
    risk_score: float
    version: str
    cases: tuple[Case, ...]
    path: str
    line: int
    # which other parties of the triggering transfer the alert names as members (SUBJECTS names)
    members: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"
