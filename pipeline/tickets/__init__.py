"""Automated tickets: routing of alerts to trackers through a durable outbox.

* :func:`load_routing` - ``rules/tickets/routing.yaml``: which alerts open tickets, grouped how,
  delivered where (validated at load, ``file:line`` errors);
* :func:`outbox_rows` - the pure step the dataflow runs on each batch of alerts, giving rows of
  ``ticket_outbox`` written in the same sink flush as the alerts;
* :class:`DeliveryWorker` - the thread that delivers the outbox (retries, backoff, dead letters,
  exactly one ticket per alert or group) and logs every attempt to ``tickets``.

Format and operations: ``docs/tickets.md``.
"""

from __future__ import annotations

from pipeline.tickets.outbox import COLUMNS, OutboxItem, outbox_rows
from pipeline.tickets.routing import Destination, Route, Routing, load_routing, load_routing_text


def __getattr__(name: str):
    if name == "DeliveryWorker":
        from pipeline.tickets.worker import DeliveryWorker

        return DeliveryWorker
    raise AttributeError(name)

__all__ = ["COLUMNS", "DeliveryWorker", "Destination", "OutboxItem", "Route", "Routing", "load_routing",
           "load_routing_text", "outbox_rows"]
