"""Starting ticket delivery next to a running dataflow: the runner's two calls.

The worker runs in the process that owns ClickHouse (with chDB, the only process that can open
the data directory), on a client of its own: chDB serves several clients of one path in one
process, so the sink's inserts and the worker's polls do not share a connection object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.tickets.policy import DestinationPolicy
from pipeline.tickets.routing import Routing, load_routing
from pipeline.tickets.worker import DeliveryWorker

log = logging.getLogger(__name__)


def routing_for(settings: Any, ticket_rule_ids: frozenset[str] = frozenset()) -> Routing:
    """Load ``settings.tickets.routing`` under the settings' destination policy, telling it which
    rules declare ``actions: [ticket]``."""
    policy = DestinationPolicy.from_settings(settings)
    return load_routing(settings.tickets.routing, policy=policy).with_ticket_rules(ticket_rule_ids)


def start_delivery(dsn: str, routing: Routing,
                   audit: Callable[[list], object] | None = None) -> DeliveryWorker:
    """A started background worker delivering the outbox of ``dsn`` (stop it with ``.stop()``);
    ``audit`` chains each delivery (the run's audit hook ``record``)."""
    from pipeline.storage.clickhouse import open_storage

    def client() -> object:
        return open_storage(dsn)[0]

    enabled = [d.name for d in routing.destinations.values() if d.enabled]
    log.info("ticket delivery started for %s", ", ".join(enabled) or "no enabled destination")
    return DeliveryWorker(client, routing, audit=audit).start()
