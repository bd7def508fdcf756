"""With the pipeline's own sink writer: alerts and outbox rows in one flush, delivered in the background."""

from __future__ import annotations

import time

from pipeline.sinks.writer import ClickHouseWriter
from pipeline.tickets import outbox_rows
from pipeline.tickets.outbox import COLUMNS
from pipeline.tickets.service import start_delivery
from pipeline.tickets.store import OutboxStore
from tests.tickets.conftest import make_alert, make_routing


def test_sink_flush_then_background_delivery(tracker, storage, chdb_dir):
    routing = make_routing(tracker.url, "hook, pd", group="subject")
    alerts = [make_alert(i, address=f"TAddr{i % 2}") for i in range(6)]
    writer = ClickHouseWriter(storage, storage.database, columns=COLUMNS)
    writer.add("alerts", alerts)
    writer.add("ticket_outbox", outbox_rows(alerts, routing))
    assert writer.flush() == {"alerts": 6, "ticket_outbox": 12}
    worker = start_delivery(f"chdb://{chdb_dir}?database={storage.database}", routing)
    try:
        store = OutboxStore(storage, storage.database)
        deadline = time.monotonic() + 10
        while store.open_items(1) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert store.counts() == {("hook", "delivered"): 6, ("pd", "delivered"): 6}
    assert len(tracker.webhooks) == 6 and len(tracker.pd) == 2  # two addresses: two PagerDuty alerts
    # The same alerts flushed again (a replay) change nothing.
    writer.add("ticket_outbox", outbox_rows(alerts, routing))
    writer.flush()
    assert store.counts() == {("hook", "delivered"): 6, ("pd", "delivered"): 6} and not store.open_items(1)
