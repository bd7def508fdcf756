"""Alerts -> ticket outbox rows: the pure, stateless step the dataflow runs after scoring.

The dataflow never talks to a tracker. It only writes what must be delivered, as rows of
``ticket_outbox``, in the same sink flush as the alerts themselves; the delivery worker
(:mod:`pipeline.tickets.worker`) sends them later. So a tracker that is down for an hour never
blocks or slows the dataflow, and nothing is lost on a crash: the outbox is durable.

Everything here is a function of the alert and the routing only (no state, no wall clock), so a
replay produces rows with the same keys, which the table collapses (ReplacingMergeTree keyed by
``item_key``; only the alert's own wall-clock ``detected_at`` may differ in the payload). Rows are inserted with version 0, so a replayed
``pending`` row never overrides a state the worker recorded later.

Grouping by subject uses tumbling event-time windows: ``group_id = hash(route, address,
floor(ts / window))``; every alert of the same address in the same window goes to one ticket,
the first creating it and later ones appended. No state is needed to know the group.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import NamedTuple

import orjson

from pipeline.records import Alert
from pipeline.tickets.routing import Route, Routing

OUTBOX_COLUMNS: tuple[str, ...] = (
    "item_key", "destination", "route", "group_id", "alert_id", "ts", "address", "severity", "payload",
    "state", "attempts", "next_attempt_at", "last_error", "external_id", "external_url", "updated_at",
    "version",
)
TICKET_COLUMNS: tuple[str, ...] = (
    "attempted_at", "item_key", "destination", "group_id", "alert_id", "action", "attempt", "outcome",
    "http_status", "error", "external_id", "external_url", "duration_ms",
)
# Merge these into pipeline.sinks.rows.COLUMNS (or pass as ClickHouseWriter(columns=...)).
COLUMNS: dict[str, tuple[str, ...]] = {"ticket_outbox": OUTBOX_COLUMNS, "tickets": TICKET_COLUMNS}

# Outbox states. Final: delivered, dead, disabled. The worker picks up the others.
PENDING, SENDING, RETRY, DELIVERED, DEAD, DISABLED = "pending", "sending", "retry", "delivered", "dead", "disabled"
OPEN_STATES = (PENDING, SENDING, RETRY)


class OutboxItem(NamedTuple):
    """One row of ``ticket_outbox``; ``payload`` is the alert as JSON."""

    item_key: str
    destination: str
    route: str
    group_id: str
    alert_id: str
    ts: int
    address: str
    severity: str
    payload: str
    state: str
    attempts: int
    next_attempt_at: int
    last_error: str
    external_id: str
    external_url: str
    updated_at: int
    version: int

    def alert(self) -> Alert:
        d = orjson.loads(self.payload)
        d["tags"] = tuple(d["tags"])
        return Alert(**d)


def _hash(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def group_id(route: Route, alert: Alert) -> str:
    """The alert id for per-alert routes; a hash of route, subject and window for grouped ones."""
    if route.group == "alert":
        return alert.alert_id
    window = alert.ts // (route.window_s * 1000)
    return _hash(route.name, alert.address, str(window))


def item_key(destination: str, alert_id: str) -> str:
    return _hash(destination, alert_id)


def alert_json(alert: Alert) -> str:
    return orjson.dumps(alert._asdict()).decode()


def outbox_rows(alerts: Iterable[Alert], routing: Routing) -> list[tuple]:
    """One ``ticket_outbox`` row (``OUTBOX_COLUMNS`` order) per (matching destination, alert).

    Disabled destinations get no rows (so enabling one later does not flood it with history).
    """
    out: list[tuple] = []
    dests = routing.destinations
    for alert in alerts:
        taken: set[str] = set()
        payload = ""
        for route in routing.routes:
            if not route.match(alert, routing.ticket_rules):
                continue
            gid = group_id(route, alert)
            for name in route.destinations:
                if name in taken or not dests[name].enabled:
                    continue
                taken.add(name)
                payload = payload or alert_json(alert)
                out.append((item_key(name, alert.alert_id), name, route.name, gid, alert.alert_id, alert.ts,
                            alert.address, alert.severity, payload, PENDING, 0, 0, "", "", "",
                            alert.detected_at, 0))
            if route.stop:
                break
    return out
