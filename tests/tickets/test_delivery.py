"""End to end: outbox rows in real chDB, a real worker, a real tracker server on 127.0.0.1."""

from __future__ import annotations

import time

from pipeline.tickets import DeliveryWorker, outbox_rows
from pipeline.tickets.outbox import COLUMNS
from pipeline.tickets.store import OutboxStore
from tests.tickets.conftest import make_alert, make_routing


def enqueue(client, alerts, routing) -> int:
    rows = outbox_rows(alerts, routing)
    client.insert(f"{client.database}.ticket_outbox", rows, column_names=COLUMNS["ticket_outbox"])
    return len(rows)


def drain(worker: DeliveryWorker, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        worker.run_once()
        if not worker.store.open_items(1000):
            return
        time.sleep(0.02)
    raise AssertionError(f"outbox not drained: {worker.store.open_items(1000)}")


def test_webhook_smoke(tracker, storage):
    routing = make_routing(tracker.url, "hook")
    assert enqueue(storage, [make_alert(i) for i in range(3)], routing) == 3
    worker = DeliveryWorker(lambda: storage, routing)
    drain(worker)
    assert len(tracker.webhooks) == 3
    states = OutboxStore(storage, storage.database).counts()
    assert states == {("hook", "delivered"): 3}
