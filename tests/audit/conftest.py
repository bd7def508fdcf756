"""Audit fixtures: a migrated database on the session's chDB, and alerts to chain."""

from __future__ import annotations

import pytest

from pipeline.records import Alert
from pipeline.storage.clickhouse import open_storage

ADDR = "TXYZabcdefghijkmnopqrstuvwxyz12345"
OTHER = "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE"


def make_alert(i: int, status: str = "confirmed", address: str = ADDR, ts: int = 1_700_000_000_000) -> Alert:
    return Alert(f"alert{i:04d}", ts + i, ts + i + 5, 100 + i, f"tx{i:04d}", address, "r.fan_in", "v1",
                 "high", 80.0, status, "block", "Fan-in", ("structuring",), '{"transfer_id":"tx:0"}')


@pytest.fixture
def store(chdb_dsn):
    client, dsn = open_storage(chdb_dsn)
    yield client, dsn.database
    client.close()
