"""End to end: outbox rows in real chDB, a real worker, a real tracker server on 127.0.0.1."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from pipeline.tickets import DeliveryWorker, load_routing_text, outbox_rows
from pipeline.tickets.outbox import COLUMNS
from pipeline.tickets.store import OutboxStore
from tests.tickets.conftest import ENV, make_alert, make_routing, routing_yaml


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


def tickets_of(tracker, dest: str) -> dict:
    """What the tracker holds, as ticket -> how many times it was created or triggered."""
    if dest == "hook":
        return {k: len(v) for k, v in tracker.webhooks.items()}  # receivers deduplicate on webhook-id
    if dest == "jira":
        return {k: 1 for k in tracker.jira}
    if dest == "gh":
        return {k: 1 for k in tracker.github}
    if dest == "snow":
        return {k: 1 for k in tracker.snow}
    if dest == "pd":
        return {k: len(v) for k, v in tracker.pd.items()}
    return {k: v["count"] for k, v in tracker.og.items()}


DESTS = ["hook", "jira", "gh", "snow", "pd", "og"]


@pytest.mark.parametrize("dest", DESTS)
def test_outage_ends_with_exactly_one_ticket_per_alert(tracker, storage, dest):
    """500, a timeout whose request did reach the tracker, 429 + Retry-After, 503: then it recovers."""
    routing = make_routing(tracker.url, dest, timeout=0.5)
    alerts = [make_alert(i, address=f"TAddr{i}") for i in range(3)]
    enqueue(storage, alerts, routing)
    tracker.faults.extend([("status", 500), ("slow", 1.0), ("status", 429, {"Retry-After": "1"}), ("status", 503)])
    drain(DeliveryWorker(lambda: storage, routing), seconds=20)
    assert len(tickets_of(tracker, dest)) == 3  # exactly one ticket per alert
    store = OutboxStore(storage, storage.database)
    assert store.counts() == {(dest, "delivered"): 3}
    mutating = [r for r in tracker.requests if r["method"] in ("POST", "PATCH") and "/search/" not in r["path"]]
    i = next(i for i, r in enumerate(mutating) if r["fault"] and r["fault"][1] == 429)
    assert mutating[i + 1]["at"] - mutating[i]["at"] >= 0.95  # Retry-After: 1 holds the whole destination
    outcomes = [r[7] for a in alerts for r in store.attempts(a.alert_id)]
    assert outcomes.count("retry") == 4 and outcomes.count("delivered") + outcomes.count("recovered") == 3
    if dest in ("jira", "gh", "snow"):  # no server-side dedup: the timed-out create was found, not repeated
        assert outcomes.count("recovered") == 1


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the worker catches it."""


def crash_once(after: int = 1):
    seen = []

    def hook(item, response) -> None:
        seen.append(item.alert_id)
        if len(seen) == after:
            raise Crash(item.alert_id)

    return hook


@pytest.mark.parametrize("dest", DESTS)
def test_crash_between_send_and_ack_makes_no_second_ticket(tracker, storage, dest):
    routing = make_routing(tracker.url, dest)
    alert = make_alert(5)
    enqueue(storage, [alert], routing)
    with pytest.raises(Crash):
        DeliveryWorker(lambda: storage, routing, after_send=crash_once()).run_once()
    store = OutboxStore(storage, storage.database)
    (item,) = store.find(alert.alert_id)
    if dest in ("jira", "gh", "snow"):  # marked before the request: the next worker must look it up
        assert item.state == "sending" and item.attempts == 1
    else:  # the tracker deduplicates: nothing needed recording, the item is simply still pending
        assert item.state == "pending" and item.attempts == 0
    assert len(tickets_of(tracker, dest)) == 1
    drain(DeliveryWorker(lambda: storage, routing))  # the restarted process
    assert len(tickets_of(tracker, dest)) == 1
    (item,) = store.find(alert.alert_id)
    assert item.state == "delivered" and item.external_id
    outcomes = [r[7] for r in store.attempts(alert.alert_id)]
    if dest in ("jira", "gh", "snow"):
        assert outcomes == ["recovered"]  # looked up, not re-created
        assert len([r for r in tracker.posts("/") if "search" not in r["path"]]) == 1  # one create
    else:
        assert outcomes == ["delivered"]  # resent with the same id; the tracker deduplicated
        assert list(tickets_of(tracker, dest).values()) == [2]


@pytest.mark.parametrize("dest,found", [("og", False), ("snow", False), ("jira", True), ("gh", True)])
def test_crash_while_appending(tracker, storage, dest, found):
    """Appends: found again where the tracker can be asked, else the possible duplicate is recorded."""
    routing = make_routing(tracker.url, dest, group="subject")
    alerts = [make_alert(1), make_alert(2)]
    enqueue(storage, alerts, routing)
    with pytest.raises(Crash):
        DeliveryWorker(lambda: storage, routing, after_send=crash_once(after=2)).run_once()
    drain(DeliveryWorker(lambda: storage, routing))
    store = OutboxStore(storage, storage.database)
    outcomes = [r[7] for r in store.attempts(alerts[1].alert_id)]
    appends = {"og": lambda: tracker.og[next(iter(tracker.og))]["notes"],
               "snow": lambda: tracker.snow[next(iter(tracker.snow))]["work_notes"],
               "jira": lambda: tracker.jira["RISK-1"]["comments"],
               "gh": lambda: tracker.github[1]["comments"]}[dest]()
    if found:
        assert outcomes == ["recovered"] and len(appends) == 1
    else:
        assert outcomes == ["ambiguous", "delivered"] and len(appends) == 2
    assert len(tickets_of(tracker, dest)) == 1


def test_410_disables_the_destination(tracker, storage):
    routing = make_routing(tracker.url, "hook")
    enqueue(storage, [make_alert(1), make_alert(2, address="TOther")], routing)
    tracker.faults.append(("status", 410))
    drain(DeliveryWorker(lambda: storage, routing))
    store = OutboxStore(storage, storage.database)
    assert store.counts() == {("hook", "disabled"): 2}
    assert len(tracker.posts("/hook")) == 1  # the second alert was not sent to a gone endpoint


def test_rejected_request_is_dead_with_the_error(tracker, storage):
    routing = make_routing(tracker.url, "pd")
    alert = make_alert(1)
    enqueue(storage, [alert], routing)
    tracker.faults.append(("status", 400))
    drain(DeliveryWorker(lambda: storage, routing))
    (item,) = OutboxStore(storage, storage.database).find(alert.alert_id)
    assert item.state == "dead" and item.last_error.startswith("HTTP 400:") and item.attempts == 1


def test_retry_budget_ends_in_dead_letter(tracker, storage):
    routing = make_routing(tracker.url, "hook")
    routing = replace(routing, delivery=replace(routing.delivery, max_attempts=3))
    alert = make_alert(1)
    enqueue(storage, [alert], routing)
    tracker.faults.extend([("status", 502)] * 3)
    drain(DeliveryWorker(lambda: storage, routing))
    store = OutboxStore(storage, storage.database)
    (item,) = store.find(alert.alert_id)
    assert item.state == "dead" and item.attempts == 3
    assert item.last_error.startswith("gave up after 3 attempts: HTTP 502")
    assert [r[7] for r in store.attempts(alert.alert_id)] == ["retry", "retry", "dead"]
    assert not tracker.webhooks


def test_replayed_pending_row_never_overrides_delivered(tracker, storage):
    routing = make_routing(tracker.url, "jira")
    alerts = [make_alert(i) for i in range(2)]
    enqueue(storage, alerts, routing)
    worker = DeliveryWorker(lambda: storage, routing)
    drain(worker)
    enqueue(storage, alerts, routing)  # a replay of the same input: same keys, version 0
    storage.command(f"OPTIMIZE TABLE {storage.database}.ticket_outbox FINAL")
    assert worker.store.open_items(10) == []
    assert worker.run_once() == {}
    assert len(tracker.jira) == 2


def test_background_thread_delivers_and_stops(tracker, storage):
    routing = make_routing(tracker.url, "gh")
    worker = DeliveryWorker(lambda: storage, routing).start()
    try:
        enqueue(storage, [make_alert(1)], routing)
        deadline = time.monotonic() + 5
        while not tracker.github and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
    assert len(tracker.github) == 1 and worker.error is None


def test_drain_does_not_wait_for_destinations_missing_from_the_routing(tracker, storage):
    enqueue(storage, [make_alert(1)], make_routing(tracker.url, "gh"))
    text = routing_yaml(tracker.url).replace("DESTS", "hook").replace("  gh: {kind:", "  gh: {enabled: false, kind:")
    worker = DeliveryWorker(lambda: storage, load_routing_text(text, "routing.yaml", ENV))
    started = time.monotonic()
    assert worker.drain(5) == {"skipped": 1}
    assert time.monotonic() - started < 2
    assert [i.state for i in worker.store.open_items(10)] == ["pending"]  # kept for when gh is configured
