"""The sample alert ``tickets test`` sends: realistic shape, obviously a test, a fresh id each time.

A fresh id matters: trackers that deduplicate (PagerDuty ``dedup_key``, Opsgenie ``alias``,
webhook receivers) would otherwise swallow a second test.
"""

from __future__ import annotations

import json
import time
import uuid

from pipeline.records import Alert


def sample_alert(now_ms: int | None = None) -> Alert:
    now = int(time.time() * 1000) if now_ms is None else now_ms
    alert_id = "test" + uuid.uuid4().hex[:28]
    details = {"transfer_id": "0" * 64 + ":0", "role": "receiver",
               "values": {"amount_usd": 250000.0, "symbol": "USDT", "test": True}}
    return Alert(alert_id, now, now, 0, "0" * 64, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "tickets_test", "test",
                 "info", 0.0, "confirmed", "block", "Test ticket from tronrisk (configuration check, ignore)",
                 ("test",), json.dumps(details))
