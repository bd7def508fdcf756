"""What an allow list is once loaded, and the one function through which it takes effect.

:class:`AllowSet` is an immutable snapshot of every list (the loader hands out a new one on each
good reload); :func:`suppress` splits alerts into those kept and those an entry in force at their
event time suppresses. See :mod:`pipeline.allowlists` for the file format and where it is used.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from pipeline.records import Alert

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)

COLUMNS: dict[str, tuple[str, ...]] = {
    "suppressed_alerts": ("alert_id", "ts", "detected_at", "block_number", "tx_id", "address", "rule_id",
                          "rule_version", "severity", "source", "list_name", "category", "reason",
                          "expires_at"),
}


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """One address on one allow list, for the rules in ``scope`` until ``expires_ms`` (event time)."""

    list_name: str
    address: str
    scope: tuple[str, ...]  # ("*",) or exact ids and prefixes ending in "*"
    expires_ms: int | None  # ms since epoch UTC; None = never
    reason: str
    category: str
    where: str  # file:line

    def covers(self, rule_id: str) -> bool:
        for item in self.scope:
            if item == "*" or item == rule_id or (item[-1] == "*" and rule_id.startswith(item[:-1])):
                return True
        return False

    def in_force(self, ts: int) -> bool:
        return self.expires_ms is None or ts < self.expires_ms


@dataclass(frozen=True, slots=True)
class AllowListInfo:
    name: str
    path: str
    entries: int
    sha256: str  # of the entries as loaded: the version chained in the audit trail
    meta: Mapping[str, object] = field(default_factory=dict)


class AllowSet:
    """Immutable snapshot of every allow list; implements ``pipeline.rules.names.Allowlists``.

    Lookups cost one dict probe for an address on no list, the common case.
    """

    def __init__(self, entries: Mapping[str, Sequence[AllowEntry]], lists: Mapping[str, AllowListInfo],
                 problems: Sequence[str] = ()) -> None:
        self._entries = {a: tuple(es) for a, es in entries.items()}
        self.lists = dict(lists)
        self.problems = tuple(problems)
        self._expired_seen: set[str] = set()  # entries already logged as expired (by where)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, address: object) -> bool:
        return address in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    @property
    def size(self) -> int:
        """Entries on all lists (an address may have several)."""
        return sum(len(es) for es in self._entries.values())

    def entries_of(self, address: str) -> tuple[AllowEntry, ...]:
        return self._entries.get(address, ())

    def match(self, rule_id: str, address: str, ts: int) -> AllowEntry | None:
        """The entry that suppresses ``rule_id``'s alert about ``address`` at event time ``ts``."""
        entries = self._entries.get(address)
        if entries is None:
            return None
        for e in entries:
            if e.covers(rule_id):
                if e.in_force(ts):
                    return e
                self._expired(e, ts)
        return None

    def allowed(self, address: str, ts: int) -> bool:
        """``address`` has an entry in force at ``ts``, whatever its scope (a known service)."""
        return self._any(address, ts, None)

    def allowed_as(self, address: str, category: str, ts: int) -> bool:
        """As :meth:`allowed`, for entries of ``category`` (case-insensitive)."""
        return self._any(address, ts, category.lower())

    def _any(self, address: str, ts: int, category: str | None) -> bool:
        for e in self._entries.get(address, ()):
            if category is None or e.category == category:
                if e.in_force(ts):
                    return True
                self._expired(e, ts)
        return False

    def _expired(self, e: AllowEntry, ts: int) -> None:
        if e.where in self._expired_seen:
            return
        self._expired_seen.add(e.where)  # a set add under the GIL: at worst logged twice, never lost
        log.info("allow list %s: the entry for %s expired at %s and is ignored from event time %s on (%s)",
                 e.list_name, e.address, iso(e.expires_ms), iso(ts), e.where)


EMPTY = AllowSet({}, {})


class Suppression(NamedTuple):
    alert: Alert
    entry: AllowEntry


def suppress(alerts: Sequence[Alert], allow: Any) -> tuple[list[Alert], list[Suppression]]:
    """Split ``alerts`` into those to keep and those an allow list suppresses at their event time.

    ``allow`` is an :class:`AllowSet` (or anything with its ``match``); None suppresses nothing.
    """
    if allow is None or not alerts:
        return list(alerts), []
    kept: list[Alert] = []
    dropped: list[Suppression] = []
    for a in alerts:
        entry = allow.match(a.rule_id, a.address, a.ts)
        if entry is None:
            kept.append(a)
        else:
            dropped.append(Suppression(a, entry))
    return kept, dropped


def suppressed_rows(suppressions: Sequence[Suppression]) -> list[tuple]:
    """Rows of ``suppressed_alerts`` (columns in :data:`COLUMNS`)."""
    return [(a.alert_id, a.ts, a.detected_at, a.block_number, a.tx_id, a.address, a.rule_id, a.rule_version,
             a.severity, a.source, e.list_name, e.category, e.reason, e.expires_ms)
            for a, e in suppressions]


def count(suppressions: Sequence[Suppression], counts: Counter[tuple[str, str]]) -> None:
    """Add ``suppressions`` to ``counts`` keyed by (rule id, list name)."""
    for a, e in suppressions:
        counts[(a.rule_id, e.list_name)] += 1


def describe(counts: Mapping[tuple[str, str], int], top: int = 8) -> str:
    """``"12 alerts (large_transfer/exchanges 10, anomaly.iforest/exchanges 2)"``: for log lines."""
    total = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    parts = [f"{rule}/{name} {n}" for (rule, name), n in ordered]
    more = f", +{len(parts) - top} more" if len(parts) > top else ""
    return f"{total} alert{'s' if total != 1 else ''} ({', '.join(parts[:top])}{more})"



def iso(ms: int | None) -> str:
    """``2024-04-26T00:00:00Z`` for ms since epoch; ``never`` for None."""
    return "never" if ms is None else (EPOCH + ms * MS).isoformat().replace("+00:00", "Z")
