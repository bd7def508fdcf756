"""Ticket delivery costs: outbox_rows per alert, and worker throughput against a local tracker.

    /tmp/venv/bin/python -m tests.tickets.bench_tickets [N_ALERTS]

Uses its own chDB directory under /tmp (run it outside pytest: one chDB path per process).
"""

from __future__ import annotations

import sys
import tempfile
import time

from pipeline.storage.clickhouse import open_storage
from pipeline.tickets import DeliveryWorker, outbox_rows
from pipeline.tickets.outbox import COLUMNS
from tests.tickets.conftest import make_alert, make_routing
from tests.tickets.trackers import Tracker


def main(n: int) -> None:
    tracker = Tracker().start()
    client, _ = open_storage(f"chdb://{tempfile.mkdtemp(prefix='tickets-bench-')}")
    alerts = [make_alert(i, address=f"TAddr{i % 50}") for i in range(n)]
    for dests, group in (("hook", "alert"), ("jira", "subject"), ("pd", "alert")):
        routing = make_routing(tracker.url, dests, group=group)
        t = time.perf_counter()
        for _ in range(20):
            rows = outbox_rows(alerts, routing)
        per_alert_us = (time.perf_counter() - t) / 20 / n * 1e6
        client.command(f"TRUNCATE TABLE {client.database}.ticket_outbox")
        client.insert(f"{client.database}.ticket_outbox", rows, column_names=COLUMNS["ticket_outbox"])
        worker = DeliveryWorker(lambda: client, routing)
        t = time.perf_counter()
        totals = worker.drain(120)
        took = time.perf_counter() - t
        print(f"{dests:5} group={group:7} outbox_rows {per_alert_us:5.1f} us/alert; delivered {n} in {took:5.2f} s "
              f"({n / took:5.0f} items/s) {totals}")
    tracker.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
