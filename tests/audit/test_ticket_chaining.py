"""Ticket deliveries are chained in the audit trail, once each, through the pipeline's hook."""

from __future__ import annotations

import orjson

from pipeline.audit.chain import Kind
from pipeline.audit.check import verify_clickhouse
from pipeline.audit.hook import AuditHook
from pipeline.audit.keys import generate_keypair, load_public
from pipeline.config import AuditSettings
from pipeline.tickets import DeliveryWorker, outbox_rows
from pipeline.tickets.outbox import COLUMNS
from tests.tickets.conftest import make_alert, make_routing
from tests.tickets.trackers import Tracker


def test_each_delivery_is_chained_once_with_the_tracker_ticket(store, chdb_dsn, tmp_path):
    client, db = store
    private, public, _ = generate_keypair(tmp_path / "keys")
    hook = AuditHook(chdb_dsn, evidence=False, audit=AuditSettings(signing_key_file=str(private)))
    tracker = Tracker().start()
    try:
        routing = make_routing(tracker.url, "hook, gh")
        alerts = [make_alert(i) for i in range(3)]
        client.insert(f"{db}.ticket_outbox", outbox_rows(alerts, routing), column_names=COLUMNS["ticket_outbox"])
        worker = DeliveryWorker(lambda: client, routing, database=db, audit=hook.record)
        worker.drain(10.0)
        worker.run_once()  # nothing left: nothing chained twice
    finally:
        tracker.stop()
    rows = client.query(f"SELECT subject, payload, address FROM {db}.audit_log WHERE kind = %(k)s ORDER BY seq",
                        parameters={"k": Kind.TICKET_DELIVERED}).result_rows
    got = sorted((s, orjson.loads(p)["endpoint"]) for s, p, _ in rows)
    assert got == sorted((a.alert_id, d) for a in alerts for d in ("gh", "hook"))
    for _, p, address in rows:
        payload = orjson.loads(p)
        assert 200 <= payload["status"] < 300 and payload["attempts"] == 1 and address == alerts[0].address
        assert "http" not in p  # the destination's name, never its URL (it may carry a token)
    assert {orjson.loads(p).get("external_id", "") != "" for s, p, _ in rows if orjson.loads(p)["endpoint"] == "gh"} == {True}
    hook.close()
    assert verify_clickhouse(client, db, load_public(public), None).ok
