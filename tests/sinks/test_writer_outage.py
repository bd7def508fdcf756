"""Storage outages: the writer holds its batch, retries with backoff, and loses nothing.

ClickHouse is the real embedded engine; an outage is injected in front of it (the first N
inserts fail the way a stopped server fails, then calls pass through to chDB), since a server
cannot be stopped here and root ignores a read-only data directory.
"""

import logging

import pytest

from pipeline.errors import StorageError
from pipeline.sinks.writer import ClickHouseWriter
from pipeline.storage.clickhouse import open_storage


class Outage:
    """Wraps a real client: the first ``failures`` inserts raise ``error``; the rest go through."""

    def __init__(self, client, failures, error):
        self.client, self.failures, self.error, self.attempts = client, failures, error, 0
        self.tokens = []

    def insert(self, *args, **kwargs):
        self.attempts += 1
        self.tokens.append(kwargs["settings"]["insert_deduplication_token"])
        if self.attempts <= self.failures:
            raise self.error
        return self.client.insert(*args, **kwargs)


def _rows(n, start=0):
    return [(f"src{i}", i, f"b{i}", 1_700_000_000_000 + i, 1_700_000_000_000) for i in range(start, start + n)]


def test_an_outage_is_waited_out_and_the_batch_lands_exactly_once(chdb_dsn, caplog):
    client, dsn = open_storage(chdb_dsn)
    outage = Outage(client, 3, ConnectionRefusedError("[Errno 111] Connection refused"))
    writer = ClickHouseWriter(outage, dsn.database, retry_budget_s=30)
    writer.add("checkpoints", _rows(500))
    with caplog.at_level(logging.WARNING, logger="pipeline.storage.retry"):
        assert writer.flush() == {"checkpoints": 500}
    assert outage.attempts == 4 and len(set(outage.tokens)) == 1  # one token, reused by every retry
    assert writer.pending == 0
    waits = [r.getMessage() for r in caplog.records if "waiting for ClickHouse" in r.getMessage()]
    assert len(waits) == 3 and "insert of 500 rows into" in waits[0] and "checkpoints held" in waits[0] and "Connection refused" in waits[0]
    assert any("ClickHouse is back" in r.getMessage() for r in caplog.records)
    assert client.query("SELECT count() FROM checkpoints").result_rows == [(500,)]


def test_a_failed_flush_keeps_its_rows_for_the_next_one_and_memory_is_one_batch(chdb_dsn):
    client, dsn = open_storage(chdb_dsn)
    outage = Outage(client, 2, ConnectionResetError("Connection reset by peer"))
    writer = ClickHouseWriter(outage, dsn.database, retry_budget_s=0.4)  # gives up after one retry
    writer.add("checkpoints", _rows(100))
    with pytest.raises(StorageError, match=r"insert of 100 rows into .*checkpoints failed: Connection reset by peer"):
        writer.flush()
    assert writer.pending == 100  # nothing dropped
    writer.add("checkpoints", _rows(50, start=100))
    assert writer.flush() == {"checkpoints": 150}
    assert client.query("SELECT count(), uniqExact(source) FROM checkpoints").result_rows == [(150, 150)]


def test_schema_errors_are_not_retried(chdb_dsn, caplog):
    """A column the table lacks fails the same way forever: raised at once, not waited out (it
    used to be retried for the whole budget, because the client rejects it before sending)."""
    client, dsn = open_storage(chdb_dsn)
    writer = ClickHouseWriter(client, dsn.database, retry_budget_s=30,
                              columns={"checkpoints": ("source", "no_such_column")})
    writer.add("checkpoints", [("a", 1)])
    with caplog.at_level("WARNING", logger="pipeline.storage.retry"), \
            pytest.raises(StorageError, match="no_such_column|NO_SUCH_COLUMN|Unknown"):
        writer.flush()
    assert not [r for r in caplog.records if "waiting for ClickHouse" in r.getMessage()]
